/**
 * No row value leaves the database in error text. Real PostgreSQL errors (casts, range checks, encodings,
 * key and check violations, RAISE) become text with their SQLSTATE and the names PostgreSQL gives, never
 * the values; a run whose filter fails on a row records, reports and logs the failure without that row's
 * value: in the ledger (lifecycle.runs.error_cause), in the failure the state machine hands on, in the step
 * logs, and in the real CLI's output (run as a child process).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { inject } from 'vitest';
import { classifyDatabaseError } from '../../functions/core/errors.ts';
import type { StepLogger } from '../../functions/run/dependencies.ts';
import { testConfig } from '../support/archive.ts';
import { cliEnvironment, runCli } from '../support/cli.ts';
import type { TestDatabase } from '../support/database.ts';
import { beforeAll, describe, expect, it } from '../support/fixture.ts';

/** The value that must never be printed. */
const ROW_VALUE = 'payload-1000';

/**
 * `payload` holds the row number as text, except row 150 (in time order), which holds ROW_VALUE: a filter
 * casting it to int passes Start's sample (the first 100 rows) and fails in the first chunk.
 */
const leaky = {
  name: 'leaky',
  table: 'public.leaky_events',
  action: 'archive' as const,
  timeColumn: 'created_at',
  retention: 'P30D',
  filter: 'payload::int >= 0',
  chunking: { initialRows: 500, minRows: 500, maxRows: 500 },
};

beforeAll(async ({ database: db }) => {
  await db.pool.query(`
    CREATE TABLE public.leaky_events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, payload text NOT NULL);
    INSERT INTO public.leaky_events
    SELECT g, timestamptz '2026-01-01' + g * interval '1 second', CASE WHEN g = 150 THEN '${ROW_VALUE}' ELSE g::text END
      FROM generate_series(1, 20000) g;
    CREATE INDEX ON public.leaky_events (created_at);
    ANALYZE public.leaky_events;
    CREATE TABLE public.secrets (note text NOT NULL, n int NOT NULL);
    INSERT INTO public.secrets VALUES ('secret-ssn-123-45-6789', 2);
    CREATE TABLE public.parents (id int PRIMARY KEY);
    CREATE TABLE public.children (id int PRIMARY KEY, parent_id int REFERENCES public.parents (id));
    CREATE TABLE public.checked (id int PRIMARY KEY, note text CONSTRAINT note_short CHECK (length(note) < 5),
                                 code text NOT NULL);
    INSERT INTO public.parents VALUES (424242);`);
});

interface ErrorCase {
  readonly title: string;
  readonly statement: string;
  readonly sqlstate: string;
  /** Text the description must keep (wording, identifiers). */
  readonly keeps: readonly string[];
  /** The data values it must not contain. */
  readonly hides: readonly string[];
}

const errorCases: ErrorCase[] = [
  {
    title: 'a cast of a text value',
    statement: `SELECT '${ROW_VALUE}'::int`,
    sqlstate: '22P02',
    keeps: ['invalid input syntax for type integer'],
    hides: [ROW_VALUE],
  },
  {
    title: 'a value with a quote inside it',
    statement: `SELECT 'a"secret-tail'::int`,
    sqlstate: '22P02',
    keeps: ['type integer'],
    hides: ['secret-tail'],
  },
  {
    title: 'a number out of range',
    statement: `SELECT '98765432109'::int`,
    sqlstate: '22003',
    keeps: ['out of range for type integer'],
    hides: ['98765432109'],
  },
  {
    title: 'a date out of range',
    statement: `SELECT '2024-13-45'::date`,
    sqlstate: '22008',
    keeps: ['date/time field value out of range'],
    hides: ['2024-13-45'],
  },
  {
    title: 'bytes that are not UTF-8',
    statement: `SELECT convert_from('\\xc328'::bytea, 'UTF8')`,
    sqlstate: '22021',
    keeps: ['invalid byte sequence for encoding "UTF8"'],
    hides: ['0xc3', '0x28'],
  },
  {
    title: 'a duplicate key',
    statement: 'INSERT INTO public.parents VALUES (424242)',
    sqlstate: '23505',
    keeps: ['unique constraint "parents_pkey"', 'Key (id)=(…) already exists', 'table public.parents'],
    hides: ['424242'],
  },
  {
    title: 'a missing referenced key',
    statement: 'INSERT INTO public.children VALUES (1, 737373)',
    sqlstate: '23503',
    keeps: ['foreign key constraint "children_parent_id_fkey"', 'is not present in table "parents"'],
    hides: ['737373'],
  },
  {
    title: 'a check constraint (whose DETAIL is the whole row)',
    statement: `INSERT INTO public.checked VALUES (1, 'too-long-secret', 'x')`,
    sqlstate: '23514',
    keeps: ['check constraint "note_short"', 'table public.checked'],
    hides: ['too-long-secret', 'Failing row'],
  },
  {
    title: 'a NOT NULL column',
    statement: `INSERT INTO public.checked VALUES (2, 'ok', NULL)`,
    sqlstate: '23502',
    keeps: ['column "code"', 'column code'],
    hides: ['Failing row'],
  },
  {
    title: 'RAISE in a function',
    statement: `DO $$ BEGIN RAISE EXCEPTION 'bad row %', 'raised-secret'; END $$`,
    sqlstate: 'P0001',
    keeps: ['raised by a database function'],
    hides: ['raised-secret'],
  },
  {
    // Raised while running, about a row's value: PostgreSQL quotes it as if it were a relation's name.
    title: "a row's value cast to regclass",
    statement: 'SELECT note::regclass FROM public.secrets',
    sqlstate: '42P01',
    keeps: ['relation "…" does not exist'],
    hides: ['secret-ssn'],
  },
  {
    title: "a date made of a row's numbers (reported unquoted)",
    statement: 'SELECT make_date(2000, n + 12, 1) FROM public.secrets',
    sqlstate: '22008',
    keeps: ['date field value out of range'],
    hides: ['2000-14-01', '14'],
  },
  {
    title: 'an index taken from a row (reported unquoted)',
    statement: `SELECT get_byte('\\x00'::bytea, n) FROM public.secrets`,
    sqlstate: '2202E',
    keeps: ['out of valid range'],
    hides: ['index 2'],
  },
  {
    title: 'an unknown relation in the SQL (a name the statement wrote: kept)',
    statement: 'SELECT * FROM public.no_such_relation',
    sqlstate: '42P01',
    keeps: ['relation "public.no_such_relation" does not exist'],
    hides: [],
  },
  {
    title: 'an unknown column (SQL, not data: kept whole)',
    statement: 'SELECT no_such_column FROM public.parents',
    sqlstate: '42703',
    keeps: ['column "no_such_column" does not exist'],
    hides: [],
  },
];

async function serverError(db: TestDatabase, statement: string): Promise<unknown> {
  try {
    await db.pool.query(statement);
  } catch (error) {
    return error;
  }
  throw new Error(`no error from ${statement}`);
}

describe('a PostgreSQL error as text', () => {
  it.for(errorCases)(
    'keeps the SQLSTATE and names but not the values: $title',
    async (testCase, { database: db }) => {
      // Prepare
      const raw = await serverError(db, testCase.statement);
      // Act
      const classified = classifyDatabaseError(raw) as Error & { sqlstate?: string; cause?: unknown };
      // Assess: the message, and everything a logger or serializer could print of the error (causes included).
      const everything = `${classified.message}\n${classified.stack}\n${inspect(classified, { depth: 5 })}\n${JSON.stringify(classified)}`;
      expect(classified.message.startsWith(`${testCase.sqlstate}: `)).toBe(true);
      for (const kept of testCase.keeps) expect(classified.message).toContain(kept);
      for (const hidden of testCase.hides) expect(everything).not.toContain(hidden);
    },
  );
});

describe('a run whose filter fails on a row', () => {
  it('records, reports and logs the failure without the row value', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare
    const lines: string[] = [];
    const record = (level: string) => (message: string, fields?: Record<string, unknown>) =>
      lines.push(JSON.stringify({ level, message, ...fields }));
    const log: StepLogger = { info: record('INFO'), warn: record('WARN'), error: record('ERROR') };
    // Act
    const result = await runPolicy(testConfig([leaky]), leaky.name, { definition, deps: { log } });
    // Assess
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('DatabaseError');
    expect(result.failure?.cause).toMatch(/^22P02: invalid input syntax for type integer: "…"/);
    const { rows } = await db.pool.query<{ error_name: string; error_cause: string }>(
      'SELECT error_name, error_cause FROM lifecycle.runs WHERE run_id = $1',
      [result.failure?.runId],
    );
    expect(rows[0]?.error_cause).toBe(result.failure?.cause);
    expect(lines.some((line) => line.includes('22P02'))).toBe(true);
    expect(lines.join('\n')).not.toContain(ROW_VALUE);
    expect(JSON.stringify(result)).not.toContain(ROW_VALUE);
  });

  it('fails at Start, when the sample meets the row, without the value either', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare: the bad row among the first 100 the sample reads.
    await db.pool.query(`UPDATE public.leaky_events SET payload = '${ROW_VALUE}' WHERE id = 50`);
    try {
      // Act
      const result = await runPolicy(testConfig([leaky]), leaky.name, { definition });
      // Assess
      expect(result.failure?.error).toBe('InvalidFilterError');
      expect(result.failure?.cause).toMatch(
        /fails on its rows: 22P02: invalid input syntax for type integer/,
      );
      expect(JSON.stringify(result)).not.toContain(ROW_VALUE);
    } finally {
      await db.pool.query(`UPDATE public.leaky_events SET payload = '50' WHERE id = 50`);
    }
  });
});

describe('the CLI', () => {
  let configFile: string;

  beforeAll(() => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pg-lifecycle-redaction-'));
    configFile = path.join(dir, 'lifecycle.config.json');
    writeFileSync(configFile, JSON.stringify({ sandbox: true, policies: [leaky] }));
  });

  it('prints a failed run without the row value, and no Node version notice', async ({
    database: db,
    bucket,
  }) => {
    // Act: on this machine's Node 20, the AWS SDK (the run's S3 client) would print NodeVersionSupportWarning.
    const result = await runCli(['run', '--config', configFile, '--policy', leaky.name, '--verbose'], {
      env: cliEnvironment({ databaseUrl: db.url, s3Endpoint: inject('s3Endpoint'), bucket }),
    });
    // Assess
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /leaky: FAILED DatabaseError: 22P02: invalid input syntax for type integer/,
    );
    expect(output).not.toContain(ROW_VALUE);
    expect(result.stderr).not.toMatch(/NodeVersionSupportWarning|node >=22|Node\.js/);
    const { rows } = await db.pool.query<{ error_cause: string }>(
      `SELECT error_cause FROM lifecycle.runs WHERE policy = $1 ORDER BY started_at DESC LIMIT 1`,
      [leaky.name],
    );
    expect(rows[0]?.error_cause).toMatch(/^22P02: /);
    expect(rows[0]?.error_cause).not.toContain(ROW_VALUE);
  });
});
