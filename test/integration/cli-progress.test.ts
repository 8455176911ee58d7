/**
 * `pg-lifecycle run` on a terminal shows a live progress line on stderr while the chunks commit — rows done of
 * the plan's eligible count, rows/s, chunks, bytes, elapsed, ETA — and clears it before the result, which stays alone on stdout. With
 * --json, or when stderr is not a terminal (a pipe, a CI log), nothing of it is written.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it } from '../support/fixture.ts';
import { runCliInProcess } from '../support/leases.ts';

const POLICY = 'logs-purge';
const ROWS = 1200;
/** Rows one a day back from now: all but the newest 30 are past the retention (the CLI runs on real time). */
const ELIGIBLE = ROWS - 30;

const dir = mkdtempSync(join(tmpdir(), 'pgl-cli-progress-'));
const configFile = join(dir, 'logs.json');
writeFileSync(
  configFile,
  JSON.stringify({
    sandbox: true,
    policies: [
      {
        name: POLICY,
        action: 'purge',
        table: 'public.app_logs',
        timeColumn: 'created_at',
        retention: 'P30D',
        chunking: { initialRows: 100, minRows: 100, maxRows: 200 },
      },
    ],
  }),
);

async function seedLogs(db: TestDatabase): Promise<void> {
  await db.pool.query('DROP TABLE IF EXISTS public.app_logs');
  await db.pool.query(
    'CREATE TABLE public.app_logs (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)',
  );
  await db.pool.query('CREATE INDEX ON public.app_logs (created_at)');
  await db.pool.query(
    `INSERT INTO public.app_logs SELECT g, now() - (g - 0.5) * interval '1 day' FROM generate_series(1, $1) AS g`,
    [ROWS],
  );
}

/** The CLI in this process with process.stderr taken for a terminal (or not). */
async function runOn(db: TestDatabase, terminal: boolean, args: string[]) {
  const previous = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
  Object.defineProperty(process.stderr, 'isTTY', { value: terminal, configurable: true });
  try {
    return await runCliInProcess(db, ['run', '--config', configFile, '--policy', POLICY, ...args]);
  } finally {
    if (previous) Object.defineProperty(process.stderr, 'isTTY', previous);
    else delete (process.stderr as { isTTY?: boolean }).isTTY;
  }
}

describe('run progress', () => {
  it('on a terminal: a line rewritten per chunk on stderr, cleared before the result on stdout', async ({
    database,
  }) => {
    // Prepare
    await seedLogs(database);

    // Act
    const result = await runOn(database, true, []);

    // Assess
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stderr.split('\r\x1b[K').filter((line) => line !== '');
    expect(lines.length).toBeGreaterThan(2);
    // While the plan counts, rows alone; from then on done / eligible, and an ETA while rows remain.
    const eligible = ELIGIBLE.toLocaleString('en-US');
    for (const line of lines)
      expect(line).toMatch(
        new RegExp(
          `^${POLICY}: [\\d,]+( / ${eligible})? rows · [\\d,]+ rows/s · \\d+ chunks · [\\d.]+ k?B · \\d+:\\d\\d elapsed( · ETA \\d+:\\d\\d)?$`,
        ),
      );
    const counted = lines.findIndex((line) => line.includes(` / ${eligible} rows`));
    expect(counted).toBeGreaterThanOrEqual(0);
    expect(lines.slice(counted).every((line) => line.includes(` / ${eligible} rows`))).toBe(true);
    expect(lines.some((line) => line.includes(' · ETA '))).toBe(true);
    const report = /(\d+) rows in \d+ objects \(\d+ bytes, (\d+) chunks/.exec(result.stdout);
    expect(Number(report?.[1])).toBe(ELIGIBLE);
    // The last line counted every chunk the run committed, and the line was cleared after it.
    expect(lines.at(-1)).toContain(`${POLICY}: ${eligible} / ${eligible} rows`);
    expect(lines.at(-1)).toContain(` ${report?.[2]} chunks`);
    expect(result.stderr.endsWith('\r\x1b[K')).toBe(true);
    expect(result.stdout).not.toContain('\r');
  });

  it.for([
    ['with --json', true, ['--json']],
    ['when stderr is not a terminal', false, []],
  ] as Array<[string, boolean, string[]]>)(
    '%s: no progress at all',
    async ([, terminal, args], { database }) => {
      await seedLogs(database);

      const result = await runOn(database, terminal, args);

      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toBe('');
      if (args.includes('--json')) expect(JSON.parse(result.stdout)).toMatchObject({ rows: ELIGIBLE });
      else expect(result.stdout).toMatch(new RegExp(`^${POLICY}: purge succeeded, ${ELIGIBLE} rows`));
    },
  );
});
