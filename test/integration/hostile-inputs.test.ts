/**
 * Hostile inputs through the real CLI (a child process: `node --import tsx bin/pg-lifecycle.ts`) against a
 * real PostgreSQL and a real S3 API server, the audit of issue 12 kept as a suite. Each case asserts:
 * - the exit code, and a message naming the problem (not merely repeating the input);
 * - both databases of its lane (one with a ledger and history, one bare) and the bucket byte-identical
 *   afterwards (catalog definitions, every table's rows, sequences, roles, objects' SHA-256);
 * - no side effect: the victim table is there, the other sessions are alive, no CLI backend is left behind.
 *
 * Cases run three at a time, each in a lane of its own (see test/support/hostile-lanes.ts). One CLI run
 * costs about 2 s (refused while reading the config) to 6 s (`run`/`plan`: the CDK synth and Start) of
 * CPU on an idle machine; the file takes 4-8 minutes on two cores shared with other work.
 * `HOSTILE_INPUTS_REPORT=<file>` writes each case's exit code, duration and output there.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, inject, it } from 'vitest';
import { synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import { type CliResult, cliEnvironment, runCli } from '../support/cli.ts';
import { catalog, config, runtime, usage, verify } from '../support/hostile-command-cases.ts';
import {
  type CaseLane,
  filterGuard,
  filterScreen,
  type HostileCase,
  redaction,
  timeouts,
} from '../support/hostile-filter-cases.ts';
import {
  cliBackendsLeft,
  createLane,
  dropLane,
  endCliBackends,
  historyConfig,
  type Lane,
  LanePool,
  type Leftover,
  repairLane,
  seededEventsDigest,
} from '../support/hostile-lanes.ts';
import { testS3Client } from '../support/s3.ts';
import { snapshotBucket, snapshotDatabase } from '../support/snapshot.ts';

const CASES: readonly HostileCase[] = [
  ...filterGuard,
  ...filterScreen,
  ...timeouts,
  ...redaction,
  ...config,
  ...catalog,
  ...runtime,
  ...verify,
  ...usage,
];

/** A line of a JavaScript stack trace (`    at fn (file.ts:12:34)`). */
const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m;

/** See HostileCase.timeoutMs. */
const DEFAULT_CLI_TIMEOUT_MS = 120_000;

/** Lanes (cases running at once). Two cores: more would only make each CLI run slower. */
const LANES = 3;

let s3: S3Client;
let lanes: Lane[] = [];
let pool: LanePool;
let eventsDigest: string;
let configDir: string;
let closedPort: number;

/** Per case: what happened (for HOSTILE_INPUTS_REPORT=<file>: exit codes, timings, start of the output). */
const report: Array<{ title: string; code: number | null; durationMs: number; output: string }> = [];

/** A TCP port on 127.0.0.1 that nothing listens on (taken from the OS, then closed). */
async function findClosedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

beforeAll(async () => {
  s3 = testS3Client();
  configDir = mkdtempSync(path.join(tmpdir(), 'hinput-'));
  closedPort = await findClosedPort();
  const definition = await synthesizeDefinition(historyConfig());
  lanes = await Promise.all(Array.from({ length: LANES }, (_, index) => createLane(index, s3, definition)));
  pool = new LanePool([...lanes]);
  eventsDigest = (await seededEventsDigest(lanes[0] as Lane)) ?? '';
}, 300_000);

afterAll(async () => {
  await Promise.all(lanes.map(dropLane));
  s3?.destroy();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
  if (process.env.HOSTILE_INPUTS_REPORT)
    writeFileSync(process.env.HOSTILE_INPUTS_REPORT, JSON.stringify(report, null, 1));
});

/** Both databases of the lane and its bucket. */
async function snapshotLane(lane: Lane) {
  const [ledger, bare, bucket] = await Promise.all([
    snapshotDatabase(lane.ledger.url, { rolePrefix: lane.rolePrefix }),
    snapshotDatabase(lane.bare.url, { rolePrefix: lane.rolePrefix }),
    snapshotBucket(s3, lane.bucket),
  ]);
  return { ledger, bare, bucket };
}

/** The output with the case's own input taken out: what is left must name the problem. */
function withoutEcho(output: string, echoes: readonly string[]): string {
  const forms = echoes
    .filter((echo) => echo.length > 0)
    .flatMap((echo) => [JSON.stringify(echo), JSON.stringify(echo).slice(1, -1), echo])
    .sort((a, b) => b.length - a.length);
  return forms.reduce((text, form) => text.replaceAll(form, '«input»'), output);
}

interface CaseOutcome {
  readonly result: CliResult;
  readonly view: CaseLane;
  /** CLI backends still connected after the CLI ended (they were ended then). */
  readonly leftovers: Leftover[];
}

async function runCase(c: HostileCase, lane: Lane, index: number): Promise<CaseOutcome> {
  const view: CaseLane = {
    ...lane,
    db: c.target === 'bare' ? lane.bare : lane.ledger,
    policy: `case-${index}`,
    closedPort,
  };
  const args = c.args(view);
  if (c.config) {
    const file = path.join(configDir, `case-${index}.json`);
    const content = c.config(view);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    // First: the case's own arguments may end with an option missing its value.
    args.unshift('--config', file);
  }
  const env = {
    ...cliEnvironment({ databaseUrl: view.db.url, s3Endpoint: inject('s3Endpoint'), bucket: lane.bucket }),
    ...c.env?.(view),
  };
  const release = await c.hold?.(view);
  try {
    const result = await runCli(args, { env, timeoutMs: c.timeoutMs ?? DEFAULT_CLI_TIMEOUT_MS });
    // Counted, then ended before another session's lock goes: a backend still waiting on it must not act
    // once it is free (and must not change what the after-snapshot sees).
    const leftovers = await cliBackendsLeft(lane);
    if (leftovers.length > 0) await endCliBackends(lane);
    return { result, view, leftovers };
  } finally {
    await release?.();
  }
}

describe('hostile inputs through the CLI', () => {
  // [name, case] pairs titled '%s': a `$name` title would be cut at 40 characters.
  it.concurrent.for(CASES.map((c, index) => [`${c.section}: ${c.title}`, { ...c, index }] as const))(
    '%s',
    { timeout: 480_000 },
    async ([name, c], { expect }) => {
      const lane = await pool.acquire();
      try {
        // Prepare: the world as every case finds it, then its picture.
        await repairLane(lane, eventsDigest);
        const before = await snapshotLane(lane);

        // Act
        const { result, view, leftovers } = await runCase(c, lane, c.index);

        // Assess
        const raw = `${result.stdout}\n${result.stderr}`;
        const message = withoutEcho(raw, c.echo?.(view) ?? []);
        report.push({
          title: name,
          code: result.code,
          durationMs: result.durationMs,
          output: raw.trim().slice(0, 400),
        });
        expect
          .soft(
            result.timedOut,
            `the CLI ran past ${c.timeoutMs ?? DEFAULT_CLI_TIMEOUT_MS} ms and was killed`,
          )
          .toBe(false);
        expect.soft(result.code, `exit code; output:\n${raw}`).toBe(c.exit);
        expect.soft(message, 'a message naming the problem').toMatch(c.message);
        if (c.never) expect.soft(raw, 'nothing it must not print').not.toMatch(c.never);
        // A refusal is a sentence, not a crash; and no warning the user cannot act on (issue 12 §8).
        expect.soft(raw, 'no stack trace').not.toMatch(STACK_FRAME);
        expect.soft(raw, 'no Node-version notice of the AWS SDK').not.toMatch(/NodeVersionSupportWarning/);
        expect.soft(leftovers, 'CLI backends left behind').toEqual([]);
        expect
          .soft(await lane.ledger.bystander.isAlive(), 'bystander session (ledger database) alive')
          .toBe(true);
        expect
          .soft(await lane.bare.bystander.isAlive(), 'bystander session (bare database) alive')
          .toBe(true);
        const after = await snapshotLane(lane);
        expect.soft(after.ledger.tables['public.victim'], 'victim table (ledger database)').toBeDefined();
        expect.soft(after.bare.tables['public.victim'], 'victim table (bare database)').toBeDefined();
        expect
          .soft(after.ledger.tables['public.side_effects']?.rows, 'side effects through dblink')
          .toBe('0');
        expect.soft(after.bare.tables['public.side_effects']?.rows, 'side effects through dblink').toBe('0');
        expect.soft(after.bare.ledger, 'bare database still without a ledger').toBe(false);
        expect.soft(after.ledger, 'ledger database unchanged').toEqual(before.ledger);
        expect.soft(after.bare, 'bare database unchanged').toEqual(before.bare);
        expect.soft(after.bucket, 'bucket unchanged').toEqual(before.bucket);
      } finally {
        pool.release(lane);
      }
    },
  );
});
