import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { HASH_KEY as KEY, OLD, columnsPolicy as policy } from '../support/anonymize.ts';
import { testConfig } from '../support/archive.ts';
import { describe, expect, it } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

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
