/**
 * One archive object into the target, in one transaction: rows are COPYed (text format) into a temporary
 * staging table made of the target's archived columns, counted against the Parquet footer and the ledger, and
 * only then `INSERT … SELECT … [WHERE predicate] ON CONFLICT DO NOTHING` into the target; the object is
 * recorded in lifecycle.restored_objects before COMMIT. A count that does not add up rolls everything back.
 *
 * Restores into the same target are serialised by an advisory lock, and the ledger is read again under it:
 * two operators running the same restore at once restore each object once.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import { classifyDatabaseError, LifecycleError } from '../../core/errors.ts';
import { describeError, isPostgresError } from '../../core/redact-database-error.ts';
import { RestoreCountMismatchError, UnsafePredicateError } from './errors.ts';
import { alreadyRestored, type ListedObject, recordRestoredObject } from './ledger.ts';
import type { DecodedObject } from './parquet-decode.ts';
import { copyLine } from './pg-text-out.ts';
import type { RestoreTarget } from './target.ts';

const STAGE = 'pg_temp.pg_lifecycle_restore_stage';
/** Rows per chunk handed to COPY: bounds the text held at once beside the decoded rows. */
const COPY_BATCH_ROWS = 1000;

export interface LoadObjectProps {
  readonly db: pg.ClientBase;
  readonly restoreId: string;
  readonly policy: string;
  readonly object: ListedObject;
  readonly decoded: DecodedObject;
  readonly versionId: string | undefined;
  readonly etag: string | undefined;
  readonly target: RestoreTarget;
  readonly predicate: string | undefined;
  readonly lockTimeoutMs: number;
}

export type LoadOutcome =
  | { readonly status: 'skipped' }
  | {
      readonly status: 'restored';
      readonly rowsStaged: number;
      readonly rowsSelected: number;
      readonly rowsInserted: number;
    };

function* copyChunks(rows: DecodedObject['rows']): Generator<string> {
  for (let start = 0; start < rows.length; start += COPY_BATCH_ROWS) {
    let text = '';
    const end = Math.min(rows.length, start + COPY_BATCH_ROWS);
    for (let r = start; r < end; r++) text += copyLine(rows[r] as ReadonlyArray<string | null>);
    yield text;
  }
}

async function count(db: pg.ClientBase, sql: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(sql);
  return Number(rows[0]?.n ?? 0);
}

export async function loadObject(props: LoadObjectProps): Promise<LoadOutcome> {
  const { db, object, decoded, target, predicate } = props;
  const key = object.key;
  await db.query('BEGIN');
  try {
    await db.query(
      `SELECT set_config('statement_timeout', '0', true), set_config('lock_timeout', $1, true)`,
      [`${Math.trunc(props.lockTimeoutMs)}ms`],
    );
    await db.query(`SELECT pg_advisory_xact_lock(hashtext('pg-lifecycle:restore-archive'), hashtext($1))`, [
      target.qualifiedName,
    ]);
    if (await alreadyRestored(db, object, target.table, predicate)) {
      await db.query('ROLLBACK');
      return { status: 'skipped' };
    }
    const archived = decoded.columns.map((c) => c.name);
    const columnList = archived.map(quoteIdent).join(', ');
    // The archived columns with the target's types (and domains), without its constraints: a value is
    // parsed (and a domain CHECKed) on the way in, NOT NULL and keys are the target's business.
    await db.query(
      `CREATE TEMP TABLE pg_lifecycle_restore_stage ON COMMIT DROP AS
         SELECT ${columnList} FROM ${target.qualifiedName} WITH NO DATA`,
    );
    const copy = copyFrom(`COPY ${STAGE} (${columnList}) FROM STDIN`);
    await pipeline(Readable.from(copyChunks(decoded.rows)), db.query(copy));
    const staged = await count(db, `SELECT count(*)::text AS n FROM ${STAGE}`);
    if (staged !== decoded.rowCount || Number(copy.rowCount) !== staged || staged !== object.rows) {
      throw new RestoreCountMismatchError(
        `${key}: ${staged} rows staged, the Parquet footer says ${decoded.rowCount}, the ledger ${object.rows}; ` +
          'nothing of it was restored',
      );
    }
    // Aliased as the target, so a predicate may qualify columns with the table's name.
    const from = `${STAGE} AS ${quoteIdent(target.table.table)}${predicate ? ` WHERE (${predicate})` : ''}`;
    const rowsSelected = predicate
      ? await count(db, `SELECT count(*)::text AS n FROM ${from}`).catch((error: unknown) => {
          throw predicateError(error);
        })
      : staged;
    const insertable = archived.filter((name) => target.insertable.has(name)).map(quoteIdent);
    // Only a row whose key is already there is skipped: ON CONFLICT on the key, so a clash on any other unique
    // constraint fails (and rolls back) the object instead of dropping an archived row silently. Without an
    // archived key (--allow-no-key) every row is inserted: the ledger alone keeps objects from coming twice.
    const conflictKey = archivedKey(target, archived);
    const onConflict = conflictKey
      ? ` ON CONFLICT (${conflictKey.map(quoteIdent).join(', ')}) DO NOTHING`
      : '';
    const inserted = await db.query(
      `INSERT INTO ${target.qualifiedName} (${insertable.join(', ')}) OVERRIDING SYSTEM VALUE
       SELECT ${insertable.join(', ')} FROM ${from}${onConflict}`,
    );
    const rowsInserted = inserted.rowCount ?? 0;
    await recordRestoredObject(db, {
      restoreId: props.restoreId,
      policy: props.policy,
      object,
      versionId: props.versionId,
      etag: props.etag,
      target: target.qualifiedName,
      targetOid: target.table.oid,
      predicate,
      rowsStaged: staged,
      rowsSelected,
      rowsInserted,
    });
    await db.query('COMMIT');
    return { status: 'restored', rowsStaged: staged, rowsSelected, rowsInserted };
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    if (error instanceof LifecycleError) throw error;
    // COPY and INSERT errors quote the row value they choked on: through the redaction, named by key.
    if (isPostgresError(error)) {
      const classified = classifyDatabaseError(error);
      if (classified instanceof Error) classified.message = `${key}: ${classified.message}`;
      throw classified;
    }
    throw error;
  }
}

function predicateError(error: unknown): unknown {
  if (isPostgresError(error) && (error as { code?: string }).code?.startsWith('42'))
    return new UnsafePredicateError(`--where on the archived columns: ${describeError(error)}`);
  return error;
}

/** The target's primary key when every column of it is archived (so a restored row's key is its own), else none. */
export function archivedKey(target: RestoreTarget, archived: readonly string[]): string[] | undefined {
  const key = target.table.primaryKey.map((c) => c.name);
  return key.length > 0 && key.every((name) => archived.includes(name)) ? key : undefined;
}
