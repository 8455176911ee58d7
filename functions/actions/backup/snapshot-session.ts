/**
 * One Chunk step's view of the database for a backup, as pg_dump takes it: a holder connection opens a
 * REPEATABLE READ READ ONLY transaction, takes ACCESS SHARE locks on every table of the backup (failing
 * after lock_timeout rather than queueing behind an ACCESS EXCLUSIVE lock, which would stall every other
 * session behind the queue), and exports its snapshot; worker connections read parts in transactions that
 * import it (`SET TRANSACTION SNAPSHOT`). Every part read in this step sees the same database state, and no
 * table can be dropped or rewritten under the backup while it lasts.
 *
 * An exported snapshot lives only while the holder's transaction is open: it ends with the step. The next
 * step opens another, and the parts it reads are of a later state (the manifest says `per-part` for a table
 * whose parts span two). Holding one snapshot across invocations would need a process that outlives them
 * (docs/architecture.md: backups).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { TransientDatabaseError } from '../../core/errors.ts';
import { quoteLiteral } from './schema-names.ts';

export interface SnapshotSessionOptions {
  /** Opens a connection with the project's session settings (the step's `deps.connect`). */
  readonly connect: () => Promise<pg.Client>;
  /** `"schema"."table"` of every table the backup reads. */
  readonly tables: readonly string[];
  /** How long the locks may wait (chunking.lockTimeoutMs). */
  readonly lockTimeoutMs: number;
  /** How long the holder may sit idle in its transaction: the step's remaining time and a margin. */
  readonly holdMs: number;
}

export class SnapshotSession {
  /** Random per session: tells parts read under one snapshot from those of another (the manifest's consistency). */
  readonly tag = randomUUID();
  private readonly idle: pg.Client[] = [];
  private readonly all: pg.Client[] = [];

  private constructor(
    private readonly options: SnapshotSessionOptions,
    /** The holder: its transaction is the snapshot; catalog reads of the step run on it. */
    readonly holder: pg.Client,
    readonly snapshotId: string,
  ) {
    this.all.push(holder);
  }

  static async open(options: SnapshotSessionOptions): Promise<SnapshotSession> {
    const holder = await options.connect();
    try {
      // Session-level, before BEGIN: the connection's default would end the holder after two idle minutes.
      await holder.query(
        `SET idle_in_transaction_session_timeout = ${Math.max(1000, Math.ceil(options.holdMs))}`,
      );
      await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await holder.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(options.lockTimeoutMs))}`);
      // As pg_dump: a table whose row level security would hide rows from this role fails the read (42501)
      // instead of backing up only what the role may see.
      await holder.query('SET LOCAL row_security = off');
      if (options.tables.length > 0)
        await holder.query(`LOCK TABLE ${options.tables.join(', ')} IN ACCESS SHARE MODE`);
      const { rows } = await holder.query<{ id: string }>('SELECT pg_catalog.pg_export_snapshot() AS id');
      const id = rows[0]?.id;
      if (!id) throw new Error('pg_export_snapshot returned no snapshot');
      return new SnapshotSession(options, holder, id);
    } catch (error) {
      await holder.end().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Runs `work` in a worker transaction under this snapshot (READ ONLY). `statementTimeoutMs` bounds each of
   * its statements (a part's COPY may take longer than a chunk's statement timeout). Commits after `work`.
   */
  async inSnapshot<T>(statementTimeoutMs: number, work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = this.idle.pop() ?? (await this.openWorker());
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await client
        .query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(this.snapshotId)}`)
        .catch((error: unknown) => {
          // 22023: the snapshot is gone with its holder (connection killed, pg_terminate_backend): the step is
          // retried with a new one, not failed.
          if ((error as { code?: string }).code === '22023')
            throw new TransientDatabaseError(
              `the backup's exported snapshot ${this.snapshotId} is gone (its holder connection ended); retrying with a new one`,
            );
          throw error;
        });
      await client.query(`SET LOCAL statement_timeout = ${Math.max(1000, Math.floor(statementTimeoutMs))}`);
      await client.query('SET LOCAL row_security = off');
      const result = await work(client);
      await client.query('COMMIT');
      this.idle.push(client);
      return result;
    } catch (error) {
      // Not reused: a COPY cut short may leave the connection mid-protocol.
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end().catch(() => undefined);
      throw error;
    }
  }

  private async openWorker(): Promise<pg.Client> {
    const client = await this.options.connect();
    this.all.push(client);
    return client;
  }

  /** Ends the snapshot and every connection (the holder's transaction rolls back: it wrote nothing). */
  async close(): Promise<void> {
    await this.holder.query('ROLLBACK').catch(() => undefined);
    await Promise.all(this.all.map((client) => client.end().catch(() => undefined)));
  }
}
