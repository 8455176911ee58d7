/**
 * Anonymize edge cases (from a hostile review): how the chunk loop ends — a chunk that picks rows but updates
 * none (a trigger skips them) is not the end of the run.
 */
import type { StepLogger } from '../../functions/run/dependencies.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

const KEY = 'review hash key: not a secret';
const OLD = `'${NOW.toISOString()}'::timestamptz - interval '400 days'`;

function policy(table: string, columns: Record<string, unknown>) {
  return {
    name: 'review',
    action: 'anonymize',
    table,
    timeColumn: 'created_at',
    retention: 'P30D',
    chunking: { initialRows: 50, minRows: 50, maxRows: 50 },
    anonymize: { columns },
  } as PolicyInput;
}

/** A logger that stops the run (by throwing) once it has seen `max` committed chunks. */
function _chunkBreaker(max: number, seen: { chunks: number }): StepLogger {
  const write = (message: string) => {
    if (message === 'chunk committed' && ++seen.chunks > max)
      throw new Error(`circuit breaker: more than ${max} chunks`);
  };
  return { info: write, warn: write, error: write };
}

describe('anonymize: chunk loop', () => {
  it('a chunk whose picked rows a BEFORE UPDATE trigger skips does not end the run: later due rows are masked', async ({
    database: db,
    runPolicy,
  }) => {
    // chunk.ts returns undefined (no more work) when the UPDATE changed 0 rows, although rows were picked and
    // the cursor could move past them.
    await db.pool.query(`
      DROP TABLE IF EXISTS held;
      CREATE TABLE held (id int PRIMARY KEY, created_at timestamptz NOT NULL, legal_hold boolean NOT NULL, who text);
      CREATE FUNCTION keep_held() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN IF OLD.legal_hold THEN RETURN NULL; END IF; RETURN NEW; END $$;
      CREATE TRIGGER keep_held BEFORE UPDATE ON held FOR EACH ROW EXECUTE FUNCTION keep_held();
      INSERT INTO held SELECT g, ${OLD} + g * interval '1 minute', g <= 60, 'person ' || g
        FROM generate_series(1, 200) g;`);

    const result = await runPolicy(
      testConfig([policy('held', { who: { strategy: 'fixed', value: 'X' } })]),
      'review',
      {
        deps: { hashKey: KEY },
      },
    );

    expect(result.status).toBe('succeeded');
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM held WHERE NOT legal_hold AND who <> 'X'`,
    );
    expect(Number(rows[0]?.n)).toBe(0);
  });
});
