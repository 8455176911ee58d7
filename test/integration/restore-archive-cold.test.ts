/**
 * restore-archive and objects in Glacier Flexible Retrieval / Deep Archive. The local S3 server has neither
 * storage classes nor RestoreObject: a stub over the real client reports one archived object in a cold class
 * and plays S3's restore states (HEAD `x-amz-restore`, 409 RestoreAlreadyInProgress); every other call reaches
 * the real server, so the objects read and the rows loaded are real.
 */
import {
  HeadObjectCommand,
  RestoreObjectCommand,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import {
  type RetrievalTier,
  RetrievalTierError,
  restoreArchive,
} from '../../functions/actions/restore-archive/index.ts';
import { testConfig } from '../support/archive.ts';
import { withClient } from '../support/database.ts';
import { describe, expect, it } from '../support/fixture.ts';

/** The stub's S3: one object's storage class and restore header, and the RestoreObject requests it got. */
interface ColdS3 {
  storageClass: string;
  restoreHeader: string | undefined;
  underWay: boolean;
  readonly requests: unknown[];
}

function coldStub(s3: S3Client, coldKey: string, state: ColdS3): S3Client {
  return {
    send: async (command: unknown) => {
      if (command instanceof HeadObjectCommand && command.input.Key === coldKey) {
        const head = await s3.send(command);
        return { ...head, StorageClass: state.storageClass, Restore: state.restoreHeader };
      }
      if (command instanceof RestoreObjectCommand) {
        state.requests.push(command.input);
        if (state.underWay)
          throw new S3ServiceException({
            name: 'RestoreAlreadyInProgress',
            $fault: 'client',
            $metadata: { httpStatusCode: 409 },
            message: 'Object restore is already in progress',
          });
        state.underWay = true;
        return {};
      }
      return s3.send(command as never);
    },
  } as unknown as S3Client;
}

describe('restore-archive from cold storage classes', () => {
  it('requests restores, loads nothing while one is pending, and resumes once S3 has the copy', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare: three months archived, three objects; the second is "in GLACIER".
    await db.pool.query(`
      CREATE TABLE public.events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, note text);
      INSERT INTO public.events
      SELECT g, timestamptz '2021-01-01 00:00:00.000001+00' + g * interval '1 day', 'n' || g
        FROM generate_series(1, 80) AS g;
      CREATE TABLE public.events_back (LIKE public.events INCLUDING ALL)`);
    const config = testConfig([
      {
        name: 'events',
        table: 'public.events',
        action: 'archive',
        timeColumn: 'created_at',
        retention: 'P2Y',
      },
    ]);
    expect((await runPolicy(config, 'events')).failure).toBeUndefined();
    const keys = (
      await db.pool.query<{ key: string }>(
        'SELECT key FROM lifecycle.archived_objects ORDER BY min_time::timestamptz',
      )
    ).rows.map((r) => r.key);
    expect(keys.length).toBeGreaterThanOrEqual(3);
    const coldKey = keys[1] as string;
    const state: ColdS3 = {
      storageClass: 'GLACIER',
      restoreHeader: undefined,
      underWay: false,
      requests: [],
    };
    const stub = coldStub(s3, coldKey, state);
    const restore = (tier: RetrievalTier = 'Bulk') =>
      withClient(db.url, (client) =>
        restoreArchive({
          db: client,
          s3: stub,
          bucket,
          policy: 'events',
          from: '2021-01-01',
          to: '2022-01-01',
          into: 'public.events_back',
          tier,
        }),
      );
    const restoredRows = async () =>
      (await db.pool.query('SELECT count(*)::int AS n FROM public.events_back')).rows[0].n;

    // Act
    const requested = await restore();
    const rowsWhilePending = await restoredRows();
    const askedAgain = await restore();
    state.restoreHeader = 'ongoing-request="true"';
    const ongoing = await restore();
    state.storageClass = 'DEEP_ARCHIVE';
    const expeditedFromDeepArchive = await restore('Expedited').catch((error: unknown) => error);
    state.storageClass = 'GLACIER';
    state.restoreHeader = 'ongoing-request="false", expiry-date="Fri, 25 Dec 2026 00:00:00 GMT"';
    const resumed = await restore();

    // Assess
    expect(requested.pending).toMatchObject({
      tier: 'Bulk',
      objects: 1,
      requested: 1,
      alreadyInProgress: 0,
      keys: [coldKey],
      estimatedTime: 'GLACIER: 5-12 hours',
    });
    expect(requested.objectsRestored).toBe(0);
    expect(rowsWhilePending).toBe(0);
    expect(state.requests[0]).toEqual({
      Bucket: bucket,
      Key: coldKey,
      RestoreRequest: { Days: 7, GlacierJobParameters: { Tier: 'Bulk' } },
    });
    // 409 RestoreAlreadyInProgress, and a restore S3 reports under way, are pending, not errors.
    expect(askedAgain.pending).toMatchObject({ requested: 0, alreadyInProgress: 1 });
    expect(ongoing.pending).toMatchObject({ requested: 0, alreadyInProgress: 1 });
    expect(expeditedFromDeepArchive).toBeInstanceOf(RetrievalTierError);
    expect(state.requests).toHaveLength(2);
    expect(resumed.pending).toBeNull();
    expect(resumed.objectsRestored).toBe(keys.length);
    expect(await restoredRows()).toBe(80);
  });
});
