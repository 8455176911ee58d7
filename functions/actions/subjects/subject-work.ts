/**
 * One request's work in the database, inside the chunk's transaction. Erasure deletes (or masks) the subject's
 * rows table by table, children first, and counts them; export reads them as JSON (the only path by which row
 * values reach Node: they are the export) into one document. The key is compared as text cast to the key
 * column's type, so an index on it is used.
 */
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { type HashKey, PLACEHOLDER_KEY } from '../anonymize/hash-key.ts';
import { maskAssignments, pendingPredicate } from '../anonymize/masks.ts';
import { ParamList } from '../anonymize/param-list.ts';
import { readArchivedRows, type UnreadObject } from './archived-rows.ts';
import type { ResolvedSubjectTable } from './mapping.ts';

export interface TableOutcome {
  readonly table: string;
  readonly action: 'delete' | 'anonymize' | 'export';
  readonly rows: number;
  /**
   * Erasure: how it found and changed the rows (the key column's catalog name, the masks' config), so that a
   * restore of an older backup can do it again from the proof alone (erasure-replay.ts). Config, never values.
   */
  readonly keyColumn?: string;
  readonly columns?: Readonly<Record<string, unknown>>;
  /** Export: the subject's rows found in the table's archive objects, and how many objects were searched. */
  readonly archivedRows?: number;
  readonly objectsRead?: number;
  /** Export: archive objects in a cold storage class, not read (they need an S3 restore first). */
  readonly unread?: UnreadObject[];
  /** Export: listed archive objects S3 no longer has (expired by the bucket's rule): nothing of them to export. */
  readonly expired?: string[];
}

function keyMatch(t: ResolvedSubjectTable): string {
  return `${t.qualified}.${quoteIdent(t.keyColumn.name)} = $1::text::${t.keyColumn.typeName}`;
}

/** Deletes or masks the subject's rows in every mapped table (children first); rows per table. */
export async function eraseSubject(
  tx: Queryable,
  tables: readonly ResolvedSubjectTable[],
  subjectKey: string,
  key: HashKey | undefined,
): Promise<TableOutcome[]> {
  const outcomes: TableOutcome[] = [];
  for (const t of tables) {
    if (t.action === 'delete') {
      const { rowCount } = await tx.query(`DELETE FROM ${t.qualified} WHERE ${keyMatch(t)}`, [subjectKey]);
      outcomes.push({
        table: t.qualified,
        action: 'delete',
        rows: rowCount ?? 0,
        keyColumn: t.keyColumn.name,
      });
      continue;
    }
    const masks = t.masks;
    if (!masks) throw new Error(`${t.qualified}: action anonymize without masks`);
    const name = { schema: t.table.schema, table: t.table.table };
    const params = new ParamList(2);
    const set = maskAssignments(name, masks, params, key)
      .map((a) => `${quoteIdent(a.column)} = ${a.set}`)
      .join(', ');
    // Rows already masked are left alone: a retried request updates nothing twice.
    const { rowCount } = await tx.query(
      `UPDATE ${t.qualified} SET ${set} WHERE ${keyMatch(t)} AND ${pendingPredicate(name, masks, PLACEHOLDER_KEY)}`,
      [subjectKey, ...params.values],
    );
    outcomes.push({
      table: t.qualified,
      action: 'anonymize',
      rows: rowCount ?? 0,
      keyColumn: t.keyColumn.name,
      columns: Object.fromEntries(masks.columns.map((c) => [quoteIdent(c.column.name), c.strategy])),
    });
  }
  return outcomes;
}

export interface SubjectExport {
  readonly document: Buffer;
  readonly sha256: string;
  readonly tables: TableOutcome[];
}

/**
 * The subject's rows of every mapped table as one JSON document: `{ requestId, keyName, subjectHash,
 * generatedAt, tables: { "<schema.table>": [row objects…] }, archived: { "<schema.table>": [row objects…] } }`.
 * Live rows are as PostgreSQL's row_to_json writes them; archived rows (./archived-rows.ts, read from the
 * table's archive objects with `s3`, one object at a time) map each archived column to its PostgreSQL text or
 * null. Archive objects in a cold storage class are not read: the table's outcome lists them as `unread`.
 */
export async function exportSubject(
  tx: Queryable,
  tables: readonly ResolvedSubjectTable[],
  subjectKey: string,
  header: { requestId: string; keyName: string; subjectHash: string; generatedAt: string },
  s3?: S3Client,
): Promise<SubjectExport> {
  const outcomes: TableOutcome[] = [];
  const parts: string[] = [];
  const archivedParts: string[] = [];
  for (const t of tables) {
    const { rows } = await tx.query<{ rows: string; n: string }>(
      `SELECT coalesce(json_agg(row_to_json(s)), '[]')::text AS rows, count(*)::text AS n
         FROM (SELECT * FROM ${t.qualified} WHERE ${keyMatch(t)}) AS s`,
      [subjectKey],
    );
    const archived = await readArchivedRows(tx, s3, t, subjectKey);
    outcomes.push({
      table: t.qualified,
      action: 'export',
      rows: Number(rows[0]?.n ?? 0),
      archivedRows: archived.rows.length,
      objectsRead: archived.objectsRead,
      ...(archived.unread.length > 0 ? { unread: archived.unread } : {}),
      ...(archived.expired.length > 0 ? { expired: archived.expired } : {}),
    });
    parts.push(`${JSON.stringify(t.qualified)}: ${rows[0]?.rows ?? '[]'}`);
    archivedParts.push(`${JSON.stringify(t.qualified)}: ${JSON.stringify(archived.rows)}`);
  }
  const head = JSON.stringify(header).slice(0, -1);
  const document = Buffer.from(
    `${head}, "tables": {${parts.join(', ')}}, "archived": {${archivedParts.join(', ')}}}\n`,
    'utf8',
  );
  return { document, sha256: createHash('sha256').update(document).digest('hex'), tables: outcomes };
}
