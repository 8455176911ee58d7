/**
 * A restored backup must not bring an erased subject back. Before a restored table commits (after its content
 * checksum proved it equal to the backup), every erasure completed since the backup was taken (or whose live rows
 * are gone while its archive objects are still being rewritten) is done again on it, from the requests' proofs: the subject's rows deleted, or masked with the strategies the erasure used.
 * The ledger keeps no subject keys, only their keyed hashes, so rows are found by HMAC of the key column's text
 * (one pass over the restored table for all subjects at once: `encode(hmac, 'hex') = ANY(hashes)`).
 *
 * The requests are read from the database restored into (restore in place, drills): a restore into another
 * database needs its `lifecycle.subject_requests` copied there first, or it re-applies nothing (and says so).
 */

import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import { resolveTable } from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { HashKeyError } from '../../core/errors.ts';
import type { MaskStrategy } from '../anonymize/contract.ts';
import { type HashKey, hashKeyFrom, hmacSql } from '../anonymize/hash-key.ts';
import { maskAssignments, resolveMasks } from '../anonymize/masks.ts';
import { ParamList } from '../anonymize/param-list.ts';
import { hasSubjectRequests } from './requests.ts';

interface TableReplay {
  readonly keyColumn: string;
  readonly action: 'delete' | 'anonymize';
  readonly columns?: Readonly<Record<string, MaskStrategy>> | undefined;
  readonly hashes: string[];
}

export interface ErasureReplay {
  /**
   * By the table's quoted name as the erasure's proof (and the backup's manifest) names it; one entry per way the
   * erasures found and changed its rows (a mapping changed between two erasures gives two).
   */
  readonly tables: ReadonlyMap<string, readonly TableReplay[]>;
  readonly requests: number;
  readonly key: HashKey;
}

interface ProofTable {
  readonly table?: unknown;
  readonly action?: unknown;
  readonly keyColumn?: unknown;
  readonly columns?: unknown;
  /** The HMAC of the key's canonical text in this table's key type (subject-hash.ts). */
  readonly keyHash?: unknown;
}

/**
 * Erasures completed since `since` (an hour earlier, for clocks that disagree: doing one again is harmless), or
 * undefined when there are none (or no requests table).
 * @throws HashKeyError when there are some and no hash key to find their rows with
 */
export async function loadErasureReplay(
  db: Queryable,
  since: string,
  hashKey: string | undefined,
): Promise<ErasureReplay | undefined> {
  if (!(await hasSubjectRequests(db))) return undefined;
  // proof as text, parsed here: the CLI's connections read jsonb as text, a pool with type parsers would not.
  // Also erasures whose live rows are gone but whose archive walk is still under way (sql/013: it may wait days
  // for Glacier restores) or failed part-way (an object it could not rewrite): their live tables' outcome is in
  // progress.live until the proof is written.
  const { rows } = await db.query<{ subject_hash: string; proof: string | null }>(
    `SELECT subject_hash,
            CASE WHEN status = 'completed' THEN proof::text
                 ELSE jsonb_build_object('tables', to_jsonb(r)->'progress'->'live')::text END AS proof
       FROM lifecycle.subject_requests AS r
      WHERE kind = 'erase'
        AND ((status = 'completed' AND completed_at >= $1::timestamptz - interval '1 hour')
          OR (status IN ('pending', 'waiting', 'failed') AND to_jsonb(r)->'progress'->>'phase' = 'archives'))`,
    [since],
  );
  if (rows.length === 0) return undefined;
  if (!hashKey)
    throw new HashKeyError(
      `${rows.length} erasures completed since this backup was taken must be done again on the restored rows, ` +
        'which needs the hash key (PG_LIFECYCLE_HASH_KEY, or anonymization.hashKeySecretArn)',
    );
  const byWay = new Map<string, { table: string; replay: TableReplay }>();
  for (const row of rows) {
    const proof = row.proof === null ? null : (JSON.parse(row.proof) as { tables?: ProofTable[] });
    for (const t of proof?.tables ?? []) {
      if (typeof t.table !== 'string' || typeof t.keyColumn !== 'string') continue;
      if (t.action !== 'delete' && t.action !== 'anonymize') continue;
      const way = JSON.stringify([t.table, t.keyColumn, t.action, t.columns ?? null]);
      const entry = byWay.get(way) ?? {
        table: t.table,
        replay: {
          keyColumn: t.keyColumn,
          action: t.action,
          columns: t.columns as Record<string, MaskStrategy> | undefined,
          hashes: [],
        },
      };
      entry.replay.hashes.push(typeof t.keyHash === 'string' ? t.keyHash : row.subject_hash);
      byWay.set(way, entry);
    }
  }
  const tables = new Map<string, TableReplay[]>();
  for (const { table, replay } of byWay.values()) tables.set(table, [...(tables.get(table) ?? []), replay]);
  return { tables, requests: rows.length, key: hashKeyFrom(hashKey) };
}

/** Does the erasures again on `target` (restored from `table`); the rows deleted or masked. */
export async function replayErasures(
  db: Queryable,
  replay: ErasureReplay,
  table: string,
  target: string,
): Promise<number> {
  let changed = 0;
  for (const entry of replay.tables.get(table) ?? [])
    changed += await replayOne(db, replay.key, entry, target);
  return changed;
}

async function replayOne(db: Queryable, key: HashKey, entry: TableReplay, target: string): Promise<number> {
  const params = new ParamList(2);
  const match = `encode(${hmacSql(`${target}.${quoteIdent(entry.keyColumn)}::text`, params, key)}, 'hex') = ANY ($1::text[])`;
  if (entry.action === 'delete') {
    const { rowCount } = await db.query(`DELETE FROM ${target} WHERE ${match}`, [
      entry.hashes,
      ...params.values,
    ]);
    return rowCount ?? 0;
  }
  const resolved = await resolveTable(db, target);
  const masks = await resolveMasks(db, resolved, {
    name: 'erasure replay',
    anonymize: { columns: entry.columns ?? {} },
  });
  const set = maskAssignments({ schema: resolved.schema, table: resolved.table }, masks, params, key)
    .map((a) => `${quoteIdent(a.column)} = ${a.set}`)
    .join(', ');
  const { rowCount } = await db.query(`UPDATE ${target} SET ${set} WHERE ${match}`, [
    entry.hashes,
    ...params.values,
  ]);
  return rowCount ?? 0;
}
