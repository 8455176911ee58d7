/**
 * A real `pg-lifecycle run` process frozen and then killed (SIGSTOP, SIGKILL) in the middle of an archive,
 * against a real PostgreSQL and S3: while the process lives, `unlock` refuses; once it is dead, the next run
 * is refused only because the (short) lease is still live, `unlock` proves the holder gone and releases it,
 * and the next run finishes the work with no row lost or archived twice.
 *
 * The CLI runs as a child process (spawnCli: the environment of runCli, nothing else of the test process's),
 * spawned asynchronously: a blocking spawn would freeze the in-process S3 server the child talks to (TOOLCHAIN).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inject } from 'vitest';
import { synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import { LEASE_TTL_SECONDS } from '../../lib/contracts/lease.ts';
import { expectArchiveGuarantees, runRecord } from '../support/archive-guarantees.ts';
import { cliEnvironment, spawnCli } from '../support/cli.ts';
import type { TestDatabase } from '../support/database.ts';
import { afterAll, eventArchivePolicy, it, YEAR_IN_CHUNKS_OF_100 } from '../support/event-archive.ts';
import { describe, expect } from '../support/fixture.ts';
import { leaseSecondsLeft, runCliInProcess } from '../support/leases.ts';

const POLICY = 'killed';

let child: ChildProcess | undefined;

afterAll(() => {
  child?.kill('SIGKILL');
});

/** The killed run's progress and lease, once the child has opened them. */
async function progress(
  db: TestDatabase,
): Promise<{ chunks: number; runId: string; pid: number } | undefined> {
  try {
    const { rows } = await db.pool.query<{ chunks: number; run_id: string; holder_pid: number }>(
      `SELECT r.chunks, r.run_id::text, l.holder_pid FROM lifecycle.runs r JOIN lifecycle.leases l USING (run_id)
        WHERE r.policy = $1 AND r.status = 'running'`,
      [POLICY],
    );
    const row = rows[0];
    return row ? { chunks: row.chunks, runId: row.run_id, pid: row.holder_pid } : undefined;
  } catch (error) {
    // Before the child's Start applied the migrations there is no ledger yet.
    if ((error as { code?: string }).code === '42P01') return undefined;
    throw error;
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    if (child?.exitCode !== null && child?.exitCode !== undefined)
      throw new Error(`the CLI exited (${child.exitCode}) while waiting for ${what}`);
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('a killed pg-lifecycle run', () => {
  it('blocks its policy only until unlock proves it gone; the next run loses and duplicates nothing', async ({
    database: db,
    bucket,
    runPolicy,
    events,
  }) => {
    // Prepare: 100-row chunks over ~7,000 eligible rows, so the run is still archiving when it is stopped.
    const { config, before, eligible, scope } = await events.prepare(POLICY, {
      table: 'events',
      rows: 8_000,
      ...YEAR_IN_CHUNKS_OF_100,
    });
    const dir = mkdtempSync(join(tmpdir(), 'pgl-kill-'));
    const configFile = join(dir, 'lifecycle.config.json');
    const policy = eventArchivePolicy(POLICY, 'events', YEAR_IN_CHUNKS_OF_100);
    writeFileSync(configFile, JSON.stringify({ sandbox: true, policies: [policy] }));
    // The in-process runs below use the same definition: synthesized while the child starts.
    const definition = synthesizeDefinition(config);
    const stderr: string[] = [];
    const spawned = spawnCli(
      ['run', '--config', configFile, '--policy', POLICY, '--bucket', bucket],
      cliEnvironment({ databaseUrl: db.url, s3Endpoint: inject('s3Endpoint') }),
    );
    child = spawned;
    // Only stderr is kept (for a failure message); stdout is drained so that its pipe never fills.
    spawned.stdout.resume();
    spawned.stderr.on('data', (chunk) => stderr.push(String(chunk)));
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child?.on('exit', (_code, signal) => resolve(signal)),
    );

    // Act: freeze the process once two chunks committed (it keeps its connections: a live, hung holder).
    const running = await waitFor('two committed chunks', async () => {
      const p = await progress(db);
      return p && p.chunks >= 2 ? p : undefined;
    }).catch((error: Error) => {
      throw new Error(`${error.message}\nCLI stderr:\n${stderr.join('')}`);
    });
    child.kill('SIGSTOP');
    const whileAlive = await runCliInProcess(db, ['unlock', '--policy', POLICY]);

    // Assess: a live holder is not released.
    expect(whileAlive.code).toBe(1);
    expect(whileAlive.stderr).toContain(`pid ${running.pid}`);
    expect(whileAlive.stderr).toContain('looks alive');

    // Act: kill it; PostgreSQL ends its backends as their sockets close.
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    await waitFor('the holder backend to go', async () => {
      const { rowCount } = await db.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [
        running.pid,
      ]);
      return rowCount === 0 ? true : undefined;
    });
    const refused = await runPolicy(config, POLICY, { definition: await definition });

    // Assess: the lease is still live (and short: minutes, not 20), so the next run is refused.
    expect(refused.failure?.error).toBe('LeaseHeldError');
    expect(refused.failure?.cause).toContain(`pg-lifecycle unlock --policy ${POLICY}`);
    const left = await leaseSecondsLeft(db, POLICY);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(LEASE_TTL_SECONDS);

    // Act: unlock proves the holder gone.
    const unlocked = await runCliInProcess(db, ['unlock', '--policy', POLICY, '--reason', 'runner killed']);

    // Assess
    expect(unlocked.code).toBe(0);
    expect(unlocked.stdout).toContain(`no database backend has pid ${running.pid}`);
    expect(await runRecord(db.pool, running.runId)).toMatchObject({
      status: 'failed',
      error_name: 'LeaseReleased',
    });

    // Act: the next run finishes the work.
    const next = await runPolicy(config, POLICY, { definition: await definition });

    // Assess: every row is in the table or in exactly one ledger-listed object; no orphan, no lease, no pending.
    expect(next.status).toBe('succeeded');
    const state = await expectArchiveGuarantees(scope, before);
    expect(state.archivedKeys.sort()).toEqual([...eligible].sort());
  }, 180_000);
});
