/**
 * Hostile inputs through the real CLI against a real PostgreSQL and a real S3 API server, the audit of
 * issue 12 kept as a suite. Each case asserts:
 * - the exit code, and a message naming the problem (not merely repeating the input);
 * - both databases of its lane (one with a ledger and history, one bare) and the bucket byte-identical
 *   afterwards (catalog definitions, every table's rows, sequences, roles, objects' SHA-256);
 * - no side effect: the victim table is there, the other sessions are alive, no CLI backend is left behind.
 *
 * A few cases run the CLI as a child process (`node --import tsx bin/pg-lifecycle.ts`): the whole way from
 * the command line, and what only a process shows (a stack trace, a Node warning, backends it leaves). The
 * others call `main()` of bin/cli/main.ts in this process, one at a time (it reads process.env and writes to
 * process.stdout): the same code after argv, without 2-6 s of process start, module loading and CDK synth.
 *
 * Each case runs in a lane of its own (see test/support/hostile-lanes.ts): the in-process cases on one,
 * the child processes two at a time on the others. `HOSTILE_INPUTS_REPORT=<file>` writes each case's exit
 * code, duration and output there.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, inject, it, vi } from 'vitest';
import { synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import { type CliResult, cliEnvironment, runCli } from '../support/cli.ts';
import { catalog, config, runtime, usage, verify } from '../support/hostile-command-cases.ts';
import {
  type CaseLane,
  filterGuard,
  filterScreen,
  type HostileCase,
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
import { runCliInProcess } from '../support/leases.ts';
import { testS3Client } from '../support/s3.ts';
import { snapshotBucket, snapshotDatabase } from '../support/snapshot.ts';

const ALL_CASES: readonly HostileCase[] = [
  ...filterGuard,
  ...filterScreen,
  ...timeouts,
  ...config,
  ...catalog,
  ...runtime,
  ...verify,
  ...usage,
];

const isChild = (c: HostileCase) => c.runAs === 'child';

/**
 * Child processes first, then the in-process cases, interleaved: vitest starts a few concurrent tests at a
 * time (maxConcurrency), and a slot waiting for the in-process lane should not keep a child from starting.
 */
const CASES: readonly HostileCase[] = (() => {
  const children = ALL_CASES.filter(isChild);
  const inProcess = ALL_CASES.filter((c) => !isChild(c));
  const ordered: HostileCase[] = [];
  for (let i = 0; i < Math.max(children.length, inProcess.length); i++) {
    const child = children[i];
    const other = inProcess[i];
    if (child) ordered.push(child);
    if (other) ordered.push(other);
  }
  return ordered;
})();

/** A line of a JavaScript stack trace (`    at fn (file.ts:12:34)`). */
const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m;

/** See HostileCase.timeoutMs. */
const DEFAULT_CLI_TIMEOUT_MS = 120_000;

/** Lanes: one for the in-process cases, the rest for child processes. Two cores: more would only be slower. */
const LANES = 3;

let s3: S3Client;
let lanes: Lane[] = [];
/** Child processes, two at a time. */
let childLanes: LanePool;
/** In-process cases, one at a time: holding this lane is what serializes them. */
let inProcessLane: LanePool;
let eventsDigest: string;
let configDir: string;

/** Per case: what happened (for HOSTILE_INPUTS_REPORT=<file>: exit codes, timings, start of the output). */
const report: Array<{
  title: string;
  runAs: string;
  code: number | null;
  durationMs: number;
  output: string;
}> = [];

beforeAll(async () => {
  s3 = testS3Client();
  configDir = mkdtempSync(path.join(tmpdir(), 'hinput-'));
  const definition = await synthesizeDefinition(historyConfig());
  lanes = await Promise.all(Array.from({ length: LANES }, (_, index) => createLane(index, s3, definition)));
  inProcessLane = new LanePool(lanes.slice(0, 1));
  childLanes = new LanePool(lanes.slice(1));
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

/** `main(args)` in this process, with the environment a child would get (the caller holds the in-process lane). */
async function runInProcess(view: CaseLane, args: string[], env: Record<string, string>): Promise<CliResult> {
  // runCliInProcess sets the database and S3 variables itself and unstubs every variable when main returns.
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  const started = performance.now();
  const outcome = await runCliInProcess(view.db.db, args);
  return {
    code: outcome.code,
    signal: null,
    stdout: outcome.stdout,
    stderr: outcome.stderr,
    durationMs: Math.round(performance.now() - started),
    timedOut: false,
  };
}

async function runCase(c: HostileCase, lane: Lane, index: number): Promise<CaseOutcome> {
  const view: CaseLane = {
    ...lane,
    db: c.target === 'bare' ? lane.bare : lane.ledger,
    policy: `case-${index}`,
  };
  const args = c.args(view);
  if (c.config) {
    const file = path.join(configDir, `case-${index}.json`);
    const content = c.config(view);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    // First: the case's own arguments may end with an option missing its value.
    args.unshift('--config', file);
  }
  const base = cliEnvironment({
    databaseUrl: view.db.url,
    s3Endpoint: inject('s3Endpoint'),
    bucket: lane.bucket,
  });
  const release = await c.hold?.(view);
  try {
    let result: CliResult;
    if (isChild(c)) {
      const env = { ...base, ...c.env?.(view) };
      result = await runCli(args, { env, timeoutMs: c.timeoutMs ?? DEFAULT_CLI_TIMEOUT_MS });
    } else {
      if (c.env) throw new Error(`${c.title}: an in-process case takes no env (runCliInProcess sets it)`);
      result = await runInProcess(view, args, base);
    }
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
  it.concurrent.for(
    CASES.map(
      (c, index) => [`${c.section}: ${c.title} (${c.runAs ?? 'in-process'})`, { ...c, index }] as const,
    ),
  )('%s', { timeout: 480_000 }, async ([name, c], { expect }) => {
    const pool = isChild(c) ? childLanes : inProcessLane;
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
        runAs: c.runAs ?? 'in-process',
        code: result.code,
        durationMs: result.durationMs,
        output: raw.trim().slice(0, 400),
      });
      expect
        .soft(result.timedOut, `the CLI ran past ${c.timeoutMs ?? DEFAULT_CLI_TIMEOUT_MS} ms and was killed`)
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
      expect.soft(await lane.bare.bystander.isAlive(), 'bystander session (bare database) alive').toBe(true);
      const after = await snapshotLane(lane);
      expect.soft(after.ledger.tables['public.victim'], 'victim table (ledger database)').toBeDefined();
      expect.soft(after.bare.tables['public.victim'], 'victim table (bare database)').toBeDefined();
      expect.soft(after.ledger.tables['public.side_effects']?.rows, 'side effects through dblink').toBe('0');
      expect.soft(after.bare.tables['public.side_effects']?.rows, 'side effects through dblink').toBe('0');
      expect.soft(after.bare.ledger, 'bare database still without a ledger').toBe(false);
      expect.soft(after.ledger, 'ledger database unchanged').toEqual(before.ledger);
      expect.soft(after.bare, 'bare database unchanged').toEqual(before.bare);
      expect.soft(after.bucket, 'bucket unchanged').toEqual(before.bucket);
    } finally {
      pool.release(lane);
    }
  });
});
