/**
 * An erasure whose archive walk is still under way (its archive objects wait for a Glacier restore, which may take
 * days) has already deleted the subject's live rows: a backup taken before it and restored in that window must not
 * bring them back. The replay reads such a request's live outcome from its progress, as it reads a completed one's
 * proof.
 */
import { HeadObjectCommand, RestoreObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { restoreBackup } from '../../functions/actions/backup/restore/index.ts';
import { loadErasureReplay } from '../../functions/actions/subjects/erasure-replay.ts';
import { createSubjectRequest, listSubjectRequests } from '../../functions/actions/subjects/requests.ts';
import { resolveClientConfig, withClient } from '../../functions/commons/database.ts';
import { writeTestBackup } from '../support/backup-fixture.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';
import {
  AUDIT,
  HASH_KEY,
  SUBJECT,
  seedSubjectArchives,
  subjectArchiveConfig,
} from '../support/subject-archives.ts';

/** Every archive object in Glacier Flexible Retrieval, never restored; RestoreObject requests are counted. */
function glacier(s3: S3Client, restores: string[]): S3Client {
  return new Proxy(s3, {
    get(target, property, receiver) {
      if (property !== 'send') return Reflect.get(target, property, receiver);
      return async (command: unknown) => {
        if (command instanceof RestoreObjectCommand) {
          restores.push(command.input.Key ?? '');
          return {};
        }
        const out = await target.send(command as never);
        if (command instanceof HeadObjectCommand && command.input.Key?.startsWith('archive/'))
          return { ...(out as object), StorageClass: 'GLACIER' };
        return out;
      };
    },
  });
}

describe('restoring a backup while an erasure waits for its archives', () => {
  it('does not bring back the live rows the waiting erasure already deleted', async ({
    database: db,
    runPolicy,
    s3,
    bucket,
  }) => {
    // Prepare: archive, back up, then erase subject 7 while every archive object is in Glacier.
    await seedSubjectArchives(db);
    const config = subjectArchiveConfig();
    for (const policy of ['audit-archive', 'sessions-archive'])
      expect((await runPolicy(config, policy)).failure).toBeUndefined();
    const subjectLive = async () =>
      (
        await db.pool.query<{ n: number }>(
          `SELECT ((SELECT count(*) FROM ${AUDIT} WHERE user_id = 7) + (SELECT count(*) FROM public.users WHERE id = 7))::int AS n`,
        )
      ).rows[0]?.n;
    expect(await subjectLive()).toBe(3);
    const manifest = await writeTestBackup({ db, s3, bucket, policy: 'nightly', tables: ['public.*'] });
    const made = await createSubjectRequest(db.pool, {
      policy: 'gdpr',
      kind: 'erase',
      subjectKey: SUBJECT,
      hashKey: HASH_KEY,
      dueDays: 30,
      requestedAt: new Date(NOW.getTime() - 60_000),
    });
    const restores: string[] = [];
    const run = await runPolicy(config, 'gdpr', {
      deps: { s3: glacier(s3, restores), bucket, hashKey: HASH_KEY },
    });
    expect(run.failure).toBeUndefined();
    const request = (await listSubjectRequests(db.pool, 'gdpr')).find(
      (r) => r.requestId === made.request.requestId,
    );
    expect(request?.status).toBe('waiting');
    expect(restores.length).toBeGreaterThan(0);
    expect(await subjectLive()).toBe(0);

    // Act: the backup over the live tables, as `pg-lifecycle restore` does it.
    const result = await withClient(await resolveClientConfig({ DATABASE_URL: db.url }), async (client) =>
      restoreBackup({
        db: client,
        s3,
        bucket,
        manifest,
        mode: 'data-only',
        ifExists: 'truncate',
        erasures: await loadErasureReplay(client, manifest.startedAt, HASH_KEY),
      }),
    );

    // Assess: everyone else restored, the subject not.
    expect(await subjectLive()).toBe(0);
    const restored = new Map(result.tables.map((t) => [t.target, t.erased]));
    expect(restored.get('"public"."Audit Logs"')).toBe(2);
    expect(restored.get('"public"."users"')).toBe(1);
    const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.users`);
    expect(rows[0]?.n).toBe(19);
  });
});
