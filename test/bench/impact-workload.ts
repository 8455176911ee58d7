/**
 * The OLTP workload of the impact benchmark, in a child process of its own, so that its timers and latencies
 * do not share the benchmark's event loop with the archive's CPU work (encode, SHA-256, state machine).
 *
 * `clients` connections (application_name `bench-oltp`) each run an open-loop schedule: statement k of client c
 * is due at t0 + (c / clients + k) / rate, whatever the previous ones took; a statement due while the client's
 * previous one still runs is sent when that one returns. Its latency is measured from when it was due to its
 * response (queueing included: no coordinated omission), its service time from when it was sent. Each client
 * cycles through the four kinds an application of the table would run, in this order: insert a new row
 * (created_at = now()), read a recent row by key, update a recent row by key, read the newest rows of the last
 * 10 minutes (created_at index). Recent keys: the table's newest 1000 ids at start (each client takes those
 * ≡ its number mod clients, so two clients never update one row) and the rows it inserts itself.
 *
 * A sampler connection (`bench-oltp-sampler`) reads pg_stat_activity for the clients' backends every
 * `samplerIntervalMs`: the wait event of each active one, and for a heavyweight-lock wait (wait_event_type
 * `Lock`) the lock's `pg_locks.waitstart` (exact start of the wait, PostgreSQL 14+) and `pg_blocking_pids()`
 * with their application names. A wait is then known from its exact start to the last sample that saw it: its
 * duration is a lower bound, short by less than the gap to the next sample.
 *
 * Protocol (lines of JSON): the parent writes the config; the child connects and answers `{ready, pids}`; the
 * parent writes `go`, later `stop`; the child finishes what is in flight and answers with the results.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const OLTP_APPLICATION = 'bench-oltp';
export const STATEMENT_KINDS = ['insert', 'read_key', 'update', 'read_recent'] as const;
export type StatementKind = (typeof STATEMENT_KINDS)[number];

export interface WorkloadConfig {
  readonly databaseUrl: string;
  readonly table: string;
  readonly clients: number;
  /** Statements per second per client. */
  readonly ratePerClient: number;
  readonly samplerIntervalMs: number;
}

/** A heavyweight-lock wait of a workload backend, as the sampler saw it (times: epoch ms). */
export interface LockWait {
  readonly pid: number;
  readonly waitStart: number;
  /** Server time of the last sample that saw the wait. */
  readonly lastSeen: number;
  /** Server time of the first sample after it that no longer saw it (undefined: still waiting at the end). */
  readonly goneBy: number | undefined;
  readonly lockType: string;
  readonly mode: string;
  readonly blockers: number[];
  /** application_name (or backend_type) of each blocker. */
  readonly blockerNames: string[];
  /** The waiting statement and each blocker's current (or last) statement, first 100 characters. */
  readonly query: string;
  readonly blockerQueries: string[];
}

export interface WorkloadResult {
  /** Per statement, same index in each array: when it was due (epoch ms), latency and service time (ms). */
  readonly due: number[];
  readonly latencyMs: number[];
  readonly serviceMs: number[];
  readonly kind: number[];
  readonly failed: number[];
  readonly inserted: number;
  readonly errors: string[];
  readonly lockWaits: LockWait[];
  /** Sample times (epoch ms, server clock) and, per sample, the state of each active workload backend. */
  readonly sampleAt: number[];
  /** `Lock:tuple`, `IO:DataFileRead`, `LWLock:WALWrite`… or `CPU` (active, no wait event). */
  readonly sampleEvents: string[][];
  readonly workloadPids: number[];
}

/** The parent's handle on a running workload child. */
export interface Workload {
  readonly pid: number;
  /** Backend pids of the workload's clients (its sampler excluded). */
  readonly backendPids: number[];
  /** Backend pid of the sampler connection. */
  readonly samplerPid: number;
  go(): void;
  stop(): Promise<WorkloadResult>;
  kill(): void;
}

/**
 * Starts the child, lets `beforeConnect` act on its pid first (pinning), and waits until its connections are
 * open. `go()` starts the schedule.
 */
export async function startWorkload(
  config: WorkloadConfig,
  beforeConnect: (pid: number) => void,
): Promise<Workload> {
  const entry = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', entry, '--child'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('workload child did not start');
  const lines = createInterface({ input: child.stdout as NonNullable<ChildProcess['stdout']> });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  try {
    beforeConnect(pid);
    child.stdin?.write(`${JSON.stringify(config)}\n`);
    const ready = (await nextLine(child, lines, 60_000)) as {
      ready: boolean;
      pids: number[];
      samplerPid: number;
    };
    return {
      pid,
      backendPids: ready.pids,
      samplerPid: ready.samplerPid,
      go: () => child.stdin?.write('go\n'),
      stop: async () => {
        child.stdin?.write('stop\n');
        const result = (await nextLine(child, lines, 60_000)) as WorkloadResult;
        child.stdin?.end();
        if (child.exitCode === null) await once(child, 'exit');
        return result;
      },
      kill,
    };
  } catch (error) {
    kill();
    throw error;
  }
}

async function nextLine(child: ChildProcess, lines: Interface, timeoutMs: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`workload child exited (${String(code)})`);
  });
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('workload child did not answer')), timeoutMs);
  });
  const line = once(lines, 'line').then(([text]) => JSON.parse(String(text)) as unknown);
  try {
    return await Promise.race([line, exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The child.

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

interface Client {
  readonly db: pg.Client;
  readonly pid: number;
  readonly keys: string[];
}

async function openClient(config: WorkloadConfig, application: string): Promise<pg.Client> {
  const db = new pg.Client({
    connectionString: config.databaseUrl,
    application_name: application,
    statement_timeout: 30_000,
  });
  await db.connect();
  return db;
}

async function runChild(): Promise<void> {
  const input = createInterface({ input: process.stdin });
  const commands: string[] = [];
  const waiters: Array<(line: string) => void> = [];
  input.on('line', (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line);
    else commands.push(line);
  });
  const nextCommand = () =>
    new Promise<string>((resolve) => {
      const queued = commands.shift();
      if (queued !== undefined) resolve(queued);
      else waiters.push(resolve);
    });
  const send = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

  const config = JSON.parse(await nextCommand()) as WorkloadConfig;
  const clients: Client[] = [];
  for (let c = 0; c < config.clients; c++) {
    const db = await openClient(config, OLTP_APPLICATION);
    const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    clients.push({ db, pid: Number(rows[0]?.pid), keys: [] });
  }
  const sampler = await openClient(config, `${OLTP_APPLICATION}-sampler`);
  // Not `id::text AS id … ORDER BY id`: ORDER BY would sort the text output column ('9999' > '10000').
  const recent = await sampler.query<{ key: string }>(
    `SELECT id::text AS key FROM ${config.table} ORDER BY id DESC LIMIT 1000`,
  );
  recent.rows.forEach((row, index) => {
    clients[index % config.clients]?.keys.push(row.key);
  });
  const pids = clients.map((client) => client.pid);
  const samplerPid = Number(
    (await sampler.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid,
  );
  send({ ready: true, pids, samplerPid });
  if ((await nextCommand()) !== 'go') throw new Error('expected go');

  const result = {
    due: [] as number[],
    latencyMs: [] as number[],
    serviceMs: [] as number[],
    kind: [] as number[],
    failed: [] as number[],
    inserted: 0,
    errors: [] as string[],
  };
  let stopping = false;
  const intervalMs = 1000 / config.ratePerClient;
  const t0 = now() + 20;

  const runClient = async (client: Client, c: number) => {
    for (let k = 0; !stopping; k++) {
      const due = t0 + (c / config.clients + k) * intervalMs;
      await sleep(due - now());
      if (stopping) break;
      const kindIndex = k % STATEMENT_KINDS.length;
      const key = client.keys[Math.floor(Math.random() * client.keys.length)] ?? '0';
      const sent = now();
      let failed = 0;
      try {
        switch (STATEMENT_KINDS[kindIndex]) {
          case 'insert': {
            const { rows } = await client.db.query<{ id: string }>({
              name: 'oltp-insert',
              text: `INSERT INTO ${config.table} (created_at, camera_id, kind, value, payload, flag)
                     VALUES (now(), $1, 'person', $2, jsonb_build_object('zone', $1::int % 16), false)
                     RETURNING id::text AS id`,
              values: [Math.floor(Math.random() * 500), (Math.random() * 1000).toFixed(4)],
            });
            const id = rows[0]?.id;
            if (id !== undefined) {
              client.keys.push(id);
              if (client.keys.length > 1000) client.keys.shift();
              result.inserted++;
            }
            break;
          }
          case 'read_key':
            await client.db.query({
              name: 'oltp-read-key',
              text: `SELECT * FROM ${config.table} WHERE id = $1`,
              values: [key],
            });
            break;
          case 'update':
            await client.db.query({
              name: 'oltp-update',
              text: `UPDATE ${config.table} SET value = $2, flag = NOT flag WHERE id = $1`,
              values: [key, (Math.random() * 1000).toFixed(4)],
            });
            break;
          default:
            await client.db.query({
              name: 'oltp-read-recent',
              text: `SELECT id, created_at, camera_id, kind, value FROM ${config.table}
                      WHERE created_at > now() - interval '10 minutes' ORDER BY created_at DESC LIMIT 10`,
            });
        }
      } catch (error) {
        failed = 1;
        if (result.errors.length < 20) result.errors.push(String((error as Error).message));
      }
      const done = now();
      result.due.push(round2(due));
      // A timer may fire up to a millisecond early (libuv's clock is in whole milliseconds): a statement sent
      // before it was due counts from when it was sent.
      result.latencyMs.push(round2(done - Math.min(due, sent)));
      result.serviceMs.push(round2(done - sent));
      result.kind.push(kindIndex);
      result.failed.push(failed);
    }
  };

  const sampleAt: number[] = [];
  const sampleEvents: string[][] = [];
  const waits = new Map<string, Omit<LockWait, 'goneBy'> & { goneBy: number | undefined }>();
  const open = new Set<string>();
  const runSampler = async () => {
    let next = now();
    while (!stopping) {
      const { rows } = await sampler.query<{
        pid: number;
        state: string | null;
        wtype: string | null;
        wevent: string | null;
        wait_start: number | null;
        locktype: string | null;
        mode: string | null;
        blockers: number[] | null;
        blocker_names: string[] | null;
        blocker_queries: string[] | null;
        query: string | null;
        at: number;
      }>({
        // Prepared once: 100 samples a second must not be planned 100 times.
        name: 'oltp-sampler',
        text: `SELECT a.pid, a.state, a.wait_event_type AS wtype, a.wait_event AS wevent,
                w.wait_start, w.locktype, w.mode, w.blockers, w.blocker_names, w.blocker_queries,
                CASE WHEN w.wait_start IS NOT NULL THEN left(a.query, 100) END AS query,
                (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS at
           FROM pg_stat_activity a
           LEFT JOIN LATERAL (
             SELECT (extract(epoch FROM l.waitstart) * 1000)::float8 AS wait_start, l.locktype, l.mode,
                    b.pids AS blockers,
                    ARRAY(SELECT coalesce(nullif(s.application_name, ''), s.backend_type)
                            FROM unnest(b.pids) AS p(pid) JOIN pg_stat_activity s ON s.pid = p.pid
                           ORDER BY p.pid) AS blocker_names,
                    ARRAY(SELECT left(s.query, 100)
                            FROM unnest(b.pids) AS p(pid) JOIN pg_stat_activity s ON s.pid = p.pid
                           ORDER BY p.pid) AS blocker_queries
               FROM pg_locks l, LATERAL (SELECT pg_blocking_pids(a.pid) AS pids) b
              WHERE a.wait_event_type = 'Lock' AND l.pid = a.pid AND NOT l.granted
              LIMIT 1) w ON true
          WHERE a.pid = ANY($1::int[])`,
        values: [pids],
      });
      const at = rows[0]?.at ?? Date.now();
      sampleAt.push(round2(at));
      sampleEvents.push(
        rows
          .filter((row) => row.state === 'active')
          .map((row) => (row.wtype ? `${row.wtype}:${row.wevent}` : 'CPU')),
      );
      const seen = new Set<string>();
      for (const row of rows) {
        if (row.wait_start === null) continue;
        const id = `${row.pid}@${row.wait_start}`;
        seen.add(id);
        const known = waits.get(id);
        const blockers = row.blockers ?? [];
        if (known) {
          waits.set(id, { ...known, lastSeen: at });
        } else {
          waits.set(id, {
            pid: row.pid,
            waitStart: row.wait_start,
            lastSeen: at,
            goneBy: undefined,
            lockType: row.locktype ?? '',
            mode: row.mode ?? '',
            blockers,
            blockerNames: row.blocker_names ?? [],
            query: (row.query ?? '').replace(/\s+/g, ' '),
            blockerQueries: (row.blocker_queries ?? []).map((text) => text.replace(/\s+/g, ' ')),
          });
        }
        open.add(id);
      }
      for (const id of open) {
        if (seen.has(id)) continue;
        open.delete(id);
        const known = waits.get(id);
        if (known) waits.set(id, { ...known, goneBy: at });
      }
      next += config.samplerIntervalMs;
      await sleep(next - now());
      if (now() - next > config.samplerIntervalMs) next = now();
    }
  };

  const running = [...clients.map((client, c) => runClient(client, c)), runSampler()];
  if ((await nextCommand()) !== 'stop') throw new Error('expected stop');
  stopping = true;
  await Promise.all(running);
  await Promise.all([...clients.map((client) => client.db.end()), sampler.end()]);
  send({
    ...result,
    lockWaits: [...waits.values()],
    sampleAt,
    sampleEvents,
    workloadPids: pids,
  } satisfies WorkloadResult);
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

if (process.argv.includes('--child')) {
  runChild().catch((error: unknown) => {
    process.stderr.write(`workload child failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
