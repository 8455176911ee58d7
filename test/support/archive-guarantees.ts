/**
 * The guarantees every archive run owes its users, checked against the real database and bucket:
 * no row lost, none archived twice, no orphan object, lease released. Plus an ObjectStore wrapper that
 * injects upload / verification faults, and a seeded events table the fault and concurrency tests share.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { expect } from 'vitest';
import type {
  BucketCheck,
  ObjectStore,
  StoredObject,
  VerifyMode,
} from '../../functions/adapters/archive-store.ts';
import { type LedgerObject, ledgerObjects, readArchivedRows } from './archive.ts';
import type { Services } from './fixture.ts';
import { listAllKeys } from './s3.ts';

/** Identity of a row as text, so keys from PostgreSQL (text) and from Parquet (bigint, string...) compare. */
export type RowKeyOf = (row: Record<string, unknown>) => string;

export interface ArchiveScope {
  readonly pool: pg.Pool;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly policy: string;
  /** A query returning one text column `k`: the key of every row now in the table. */
  readonly tableKeysSql: string;
  /** The same key, computed from an archived (Parquet) row. */
  readonly keyOf: RowKeyOf;
}

/** The guarantees' scope of a policy archiving `public.<table>`, whose rows are known by their `id`. */
export function idKeyedScope(
  { db, s3, bucket }: Pick<Services, 'db' | 's3' | 'bucket'>,
  policy: string,
  table: string,
): ArchiveScope {
  return {
    pool: db.pool,
    s3,
    bucket,
    policy,
    tableKeysSql: `SELECT id::text AS k FROM public.${table}`,
    keyOf: (row) => String(row.id),
  };
}

export interface ArchiveState {
  /** Ledger-listed objects of the policy (all runs). */
  readonly objects: LedgerObject[];
  /** Every row of every ledger-listed object, read back from S3 (SHA-256 and row count checked). */
  readonly archived: Array<Record<string, unknown>>;
  readonly archivedKeys: string[];
  readonly remainingKeys: string[];
  /** Everything in S3 under `archive/<policy>/`. */
  readonly s3Keys: string[];
  /** Lease rows still held by the policy. */
  readonly leases: number;
  /** Keys announced for upload by the policy's runs and still pending (neither listed nor cleaned up). */
  readonly pending: string[];
}

export async function tableKeys(pool: pg.Pool, sql: string): Promise<string[]> {
  const { rows } = await pool.query<{ k: string }>(sql);
  return rows.map((r) => r.k);
}

export async function readArchiveState(scope: ArchiveScope): Promise<ArchiveState> {
  const prefix = `archive/${scope.policy}/`;
  const objects = (await ledgerObjects(scope.pool)).filter((o) => o.key.startsWith(prefix));
  const archived = await readArchivedRows(scope.s3, scope.bucket, objects);
  const leases = await scope.pool.query('SELECT 1 FROM lifecycle.leases WHERE policy = $1', [scope.policy]);
  const pending = await scope.pool.query<{ key: string }>(
    `SELECT p.key FROM lifecycle.pending_objects p JOIN lifecycle.runs r USING (run_id) WHERE r.policy = $1`,
    [scope.policy],
  );
  return {
    objects,
    archived,
    archivedKeys: archived.map(scope.keyOf),
    remainingKeys: await tableKeys(scope.pool, scope.tableKeysSql),
    s3Keys: await listAllKeys(scope.s3, scope.bucket, prefix),
    leases: leases.rowCount ?? 0,
    pending: pending.rows.map((r) => r.key),
  };
}

export function duplicatesOf(keys: readonly string[]): string[] {
  const seen = new Set<string>();
  const duplicates = new Set<string>();
  for (const key of keys) {
    if (seen.has(key)) duplicates.add(key);
    seen.add(key);
  }
  return [...duplicates].sort();
}

const sorted = (keys: readonly string[]) => [...keys].sort();

/**
 * Asserts, after a run ended (successfully or not):
 * - no duplicate: each archived key appears exactly once across all ledger-listed objects;
 * - no row lost, none invented: rows before = rows still in the table + rows in ledger-listed objects;
 * - no orphan: S3 under the policy prefix holds exactly the ledger-listed objects;
 * - the policy's lease is released and no announced upload is left pending.
 */
export async function expectArchiveGuarantees(
  scope: ArchiveScope,
  before: readonly string[],
): Promise<ArchiveState> {
  const state = await readArchiveState(scope);
  expect(duplicatesOf(state.archivedKeys), 'keys archived more than once').toEqual([]);
  expect(
    state.archivedKeys.filter((k) => state.remainingKeys.includes(k)),
    'keys both archived and in the table',
  ).toEqual([]);
  expect(
    state.remainingKeys.length + state.archivedKeys.length,
    'rows before = rows after + rows archived',
  ).toBe(before.length);
  expect(
    sorted([...state.remainingKeys, ...state.archivedKeys]),
    'every row is in the table or archived',
  ).toEqual(sorted(before));
  expect(sorted(state.s3Keys), 'S3 holds exactly the ledger-listed objects').toEqual(
    sorted(state.objects.map((o) => o.key)),
  );
  expect(state.leases, 'lease released').toBe(0);
  expect(state.pending, 'announced uploads neither listed nor cleaned up').toEqual([]);
  return state;
}

export interface RunRecord {
  status: string;
  rows: string;
  chunks: string;
  objects: string;
  orphans_removed: string;
  error_name: string | null;
  error_cause: string | null;
}

export async function runRecord(pool: pg.Pool, runId: string | undefined): Promise<RunRecord | undefined> {
  const { rows } = await pool.query<RunRecord>(
    `SELECT status, rows::text, chunks::text, objects::text, orphans_removed::text, error_name, error_cause
       FROM lifecycle.runs WHERE run_id = $1`,
    [runId ?? '00000000-0000-0000-0000-000000000000'],
  );
  return rows[0];
}

export async function runsOfPolicy(
  pool: pg.Pool,
  policy: string,
): Promise<Array<RunRecord & { run_id: string }>> {
  const { rows } = await pool.query<RunRecord & { run_id: string }>(
    `SELECT run_id::text, status, rows::text, chunks::text, objects::text, orphans_removed::text, error_name, error_cause
       FROM lifecycle.runs WHERE policy = $1 ORDER BY started_at`,
    [policy],
  );
  return rows;
}

/** Decides, from the 1-based call number and the key, whether a call fails (and with what). */
export type FaultPlan = (call: number, key: string) => Error | undefined;

/** Fails exactly the `nth` call with the error `make` builds. */
export function failOnce(nth: number, make: () => Error): FaultPlan {
  return (call) => (call === nth ? make() : undefined);
}

/** Fails the `nth` call and every call after it. */
export function failFrom(nth: number, make: () => Error): FaultPlan {
  return (call) => (call >= nth ? make() : undefined);
}

/**
 * Wraps a real store. `put` faults fire before anything is uploaded; `verify` faults fire after the real
 * upload succeeded (the object exists, its chunk will roll back: an orphan unless it is cleaned up).
 */
export class FaultInjectingStore implements ObjectStore {
  putCalls = 0;
  verifyCalls = 0;
  /** Keys whose put or verify was failed by a fault. */
  readonly faultedKeys: string[] = [];
  /** Keys the real store accepted. */
  readonly uploadedKeys: string[] = [];
  readonly deletedKeys: string[] = [];

  constructor(
    private readonly inner: ObjectStore,
    private readonly faults: { readonly put?: FaultPlan; readonly verify?: FaultPlan } = {},
  ) {}

  get bucket(): string {
    return this.inner.bucket;
  }

  checkBucket(check?: BucketCheck): Promise<void> {
    return this.inner.checkBucket(check);
  }

  async put(key: string, body: Uint8Array, sha256: string, metadata: Record<string, string>): Promise<void> {
    this.putCalls++;
    const fault = this.faults.put?.(this.putCalls, key);
    if (fault) {
      this.faultedKeys.push(key);
      throw fault;
    }
    await this.inner.put(key, body, sha256, metadata);
    this.uploadedKeys.push(key);
  }

  async verify(object: StoredObject, mode: VerifyMode): Promise<void> {
    this.verifyCalls++;
    const fault = this.faults.verify?.(this.verifyCalls, object.key);
    if (fault) {
      this.faultedKeys.push(object.key);
      throw fault;
    }
    await this.inner.verify(object, mode);
  }

  async delete(key: string): Promise<void> {
    this.deletedKeys.push(key);
    await this.inner.delete(key);
  }

  async deleteEveryVersion(key: string): Promise<number> {
    this.deletedKeys.push(key);
    return await this.inner.deleteEveryVersion(key);
  }
}

/**
 * `public.<table>`: `rows` events, one every 6 hours back from `now` (so ~15 months fall before a 90-day
 * cutoff, several Hive month partitions), with a `counter` the concurrency tests bump.
 */
export async function seedEvents(
  pool: pg.Pool,
  table: string,
  rows: number,
  now: Date,
  options: { readonly timeIndex?: boolean } = {},
): Promise<void> {
  const name = `public.${quoteIdentifier(table)}`;
  await pool.query(`DROP TABLE IF EXISTS ${name}`);
  await pool.query(`
    CREATE TABLE ${name} (
      id bigint PRIMARY KEY,
      created_at timestamptz NOT NULL,
      counter integer NOT NULL DEFAULT 0,
      payload text NOT NULL)`);
  await pool.query(
    `INSERT INTO ${name} (id, created_at, payload)
     SELECT g, $2::timestamptz - g * interval '6 hours' - (g % 997) * interval '1 microsecond', md5(g::text)
       FROM generate_series(1, $1) AS g`,
    [rows, now.toISOString()],
  );
  // With it, archive chunks are window DELETEs (an index range scan); without it, keyset slices.
  if (options.timeIndex) await pool.query(`CREATE INDEX ON ${name} (created_at)`);
}

/** Keys of the events rows that a policy with `retention` would archive at `now`. */
export async function eligibleEventIds(
  pool: pg.Pool,
  table: string,
  now: Date,
  retention: string,
): Promise<string[]> {
  const { rows } = await pool.query<{ k: string }>(
    `SELECT id::text AS k FROM public.${quoteIdentifier(table)} WHERE created_at < $1::timestamptz - $2::interval ORDER BY id`,
    [now.toISOString(), retention],
  );
  return rows.map((r) => r.k);
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
