/**
 * The keyed hash a restore finds an erased subject's rows by, per mapped table: HMAC-SHA-256 (the anonymize hash
 * key) of the key as the key column's type prints it — `'042'` for a numeric column is `42`, an upper-case uuid
 * is its lower-case text — because the restore compares it with the HMAC of each row's `key_column::text`, while
 * the erasure itself matched the key cast to the column's type. Hashing the request's text as typed would let
 * a restore bring back a subject asked for in another spelling. Computed in SQL (the key's pads as bind values).
 */
import type { Queryable } from '../../adapters/transactions.ts';
import { type HashKey, hmacSql } from '../anonymize/hash-key.ts';
import { ParamList } from '../anonymize/param-list.ts';
import type { ResolvedSubjectTable } from './mapping.ts';

/** Per table (quoted name) the hex HMAC of the key's canonical text in that table's key column type. */
export async function canonicalKeyHashes(
  tx: Queryable,
  tables: readonly ResolvedSubjectTable[],
  subjectKey: string,
  key: HashKey,
): Promise<Map<string, string>> {
  const byType = new Map<string, string>();
  const hashes = new Map<string, string>();
  for (const t of tables) {
    const type = t.keyColumn.typeName;
    let hash = byType.get(type);
    if (hash === undefined) {
      const params = new ParamList(2);
      const { rows } = await tx.query<{ hash: string }>(
        `SELECT encode(${hmacSql(`($1::text::${type})::text`, params, key)}, 'hex') AS hash`,
        [subjectKey, ...params.values],
      );
      hash = rows[0]?.hash ?? '';
      byType.set(type, hash);
    }
    hashes.set(t.qualified, hash);
  }
  return hashes;
}
