/**
 * restore-archive remembers what it brought back (lifecycle.restored_objects, by key and SHA-256), so restoring a
 * range twice into a table without a key does not insert its rows twice. An erasure that rewrites those objects
 * gives them new keys and checksums: the record must follow, or the second restore would take the rewritten
 * objects for new ones and insert everyone else's rows again.
 */
import { restoreArchive } from '../../functions/actions/restore-archive/index.ts';
import { createSubjectRequest } from '../../functions/actions/subjects/requests.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { migrateLedger, withClient } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];
const KEY = 'restored objects follow rewrites';

const config = testConfig([
  {
    name: 'clicks-archive',
    table: 'public.clicks',
    action: 'archive',
    timeColumn: 'at',
    retention: 'P1Y',
    chunking: { initialRows: 40, minRows: 40, maxRows: 40 },
  } as PolicyInput,
  {
    name: 'gdpr',
    action: 'subjects',
    subjects: {
      keyName: 'user_id',
      tables: [{ table: 'public.clicks', keyColumn: 'user_id', action: 'delete' }],
    },
  } as PolicyInput,
]);

describe('restore-archive after an erasure rewrote the objects it restored', () => {
  it('does not restore the rewritten objects a second time into a table without a key', async ({
    database: db,
    runPolicy,
    s3,
    bucket,
  }) => {
    // Prepare: archive a keyless table, restore everything into a keyless copy, erase one subject.
    await migrateLedger(db);
    await db.pool.query(`
      CREATE TABLE public.clicks (user_id bigint, at timestamptz NOT NULL, note text);
      INSERT INTO public.clicks SELECT 1 + g % 10, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour', 'click ' || g
        FROM generate_series(1, 120) AS g;
      CREATE TABLE public.clicks_back (user_id bigint, at timestamptz NOT NULL, note text);`);
    expect((await runPolicy(config, 'clicks-archive')).failure).toBeUndefined();
    const restore = () =>
      withClient(db.url, (client) =>
        restoreArchive({
          db: client,
          s3,
          bucket,
          policy: 'clicks-archive',
          from: '2000-01-01',
          to: '2100-01-01',
          into: 'public.clicks_back',
          allowNoKey: true,
        }),
      );
    await restore();
    const count = async () =>
      (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM public.clicks_back')).rows[0]?.n;
    expect(await count()).toBe(120);
    await createSubjectRequest(db.pool, {
      policy: 'gdpr',
      kind: 'erase',
      subjectKey: '3',
      hashKey: KEY,
      dueDays: 30,
      requestedAt: new Date(NOW.getTime() - 60_000),
    });
    const erased = await runPolicy(config, 'gdpr', { deps: { hashKey: KEY } });
    expect(erased.failure).toBeUndefined();
    const { rows: rewritten } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM lifecycle.subject_rewrites',
    );
    expect(rewritten[0]?.n).toBe(3);

    // Act
    await restore();

    // Assess: nothing restored twice.
    expect(await count()).toBe(120);
  });
});
