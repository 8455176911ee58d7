/**
 * Subjects: GDPR requests to erase or export a data subject's rows, processed by a run of the subjects policy
 * (on a schedule in AWS, `pg-lifecycle subject process` locally). Start resolves the mapping (tables, key
 * columns, masks) and refuses a foreign key it does not cover; each chunk takes one pending request (chunk.ts).
 */

import type { RunPlan } from '../../../lib/contracts/payloads.ts';
import { pgBool } from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { CatalogError, HashKeyError, StorageConfigurationError } from '../../core/errors.ts';
import { subjectRequestsSource } from '../../sources/subject-requests.ts';
import type { ActionModule } from '../action-module.ts';
import { hashKeyFrom, PLACEHOLDER_KEY } from '../anonymize/hash-key.ts';
import { maskProblems } from '../anonymize/masks.ts';
import { SubjectsChunkAction, storeOf } from './chunk.ts';
import { type SubjectsPolicy, subjectsPrefix } from './contract.ts';
import { type ResolvedSubjectTable, resolveSubjectTables } from './mapping.ts';
import { readArchiveExposure } from './proof.ts';
import { hasSubjectRequests } from './requests.ts';

interface PendingRequests {
  readonly erase: number;
  readonly export: number;
  readonly oldest: string | null;
}

/** Pending requests of the policy; none before sql/012 made the table. */
async function readPending(db: Queryable, policy: string): Promise<PendingRequests> {
  if (!(await hasSubjectRequests(db))) return { erase: 0, export: 0, oldest: null };
  const { rows } = await db.query<{ erase: string; export: string; oldest: string | null }>(
    `SELECT count(*) FILTER (WHERE kind = 'erase')::text AS erase, count(*) FILTER (WHERE kind = 'export')::text AS export,
            min(requested_at)::text AS oldest
       FROM lifecycle.subject_requests WHERE policy = $1 AND status IN ('pending', 'waiting')`,
    [policy],
  );
  return {
    erase: Number(rows[0]?.erase ?? 0),
    export: Number(rows[0]?.export ?? 0),
    oldest: rows[0]?.oldest ?? null,
  };
}

function keyMissing(policy: SubjectsPolicy): string {
  // Erasure records the keyed hashes a restore finds the subject by (subject-hash.ts); masks may hash too.
  return `subjects policy ${policy.name} needs the hash key (PG_LIFECYCLE_HASH_KEY, or anonymization.hashKeySecretArn)`;
}

/** Mapped tables without an index whose first column is the key column: each request reads them whole. */
async function unindexedKeys(db: Queryable, tables: readonly ResolvedSubjectTable[]): Promise<string[]> {
  const missing: string[] = [];
  for (const t of tables) {
    const { rows } = await db.query<{ ok: boolean | string }>(
      `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                       WHERE i.indrelid = $1::oid AND a.attname = $2) AS ok`,
      [t.table.oid, t.keyColumn.name],
    );
    if (!pgBool(rows[0]?.ok)) missing.push(`${t.qualified} (${t.keyColumn.name})`);
  }
  return missing;
}

function subjectsPlan(
  cutoff: string,
  archived: number,
  tables: readonly ResolvedSubjectTable[],
  pending: PendingRequests,
  refusals: RunPlan['refusals'],
  unindexed: readonly string[],
): RunPlan {
  return {
    cutoff,
    eligibleRows: pending.erase + pending.export,
    estimatedBytes: 0,
    oldest: pending.oldest,
    foreignKeys: [],
    explain: [],
    fullTableScan: false,
    partitions: [],
    warnings: [
      `pending requests: ${pending.erase} erase, ${pending.export} export; erasure order (children first): ` +
        tables.map((t) => `${t.qualified} (${t.action})`).join(', '),
      `archive objects of the mapped tables: ${archived}; each erasure searches them all and rewrites those ` +
        'holding the subject (objects in Glacier are restored first: the request waits)',
      ...(unindexed.length > 0
        ? [
            `no index leads with the key column of ${unindexed.join(', ')}: every request reads those tables whole ` +
              '(and holds its transaction that long); CREATE INDEX CONCURRENTLY on the key column',
          ]
        : []),
    ],
    refusals,
  };
}

export const subjectsModule: ActionModule<SubjectsPolicy> = {
  action: 'subjects',
  source: subjectRequestsSource<SubjectsPolicy>(),

  async prepareStart({ db, deps, input, policy }) {
    const tables = await resolveSubjectTables(db, policy);
    const secret = await deps.hashKey?.();
    const missing = secret ? undefined : keyMissing(policy);
    if (missing && !input.dryRun) throw new HashKeyError(missing, { policy: policy.name });
    // The masks of anonymized tables, checked as an anonymize policy's are (types, constraints).
    const problems: string[] = [];
    const key = secret ? hashKeyFrom(secret) : PLACEHOLDER_KEY;
    for (const t of tables)
      if (t.masks) problems.push(...(await maskProblems(db, t.table.oid, t.masks, key)));
    if (problems.length > 0 && !input.dryRun)
      throw new CatalogError(`subjects policy ${policy.name}: ${problems.join('; ')}`, {
        policy: policy.name,
      });
    const pending = await readPending(db, policy.name);
    const refusals: RunPlan['refusals'] = [
      ...(missing ? [{ error: 'HashKeyError', message: missing }] : []),
      ...problems.map((message) => ({ error: 'CatalogError', message })),
    ];
    // An erasure rewrites the archive objects of the mapped tables: it needs the bucket they are in.
    const archived = (
      await readArchiveExposure(
        db,
        tables.map((t) => t.qualified),
      )
    ).reduce((sum, p) => sum + p.objects, 0);
    if (pending.export > 0 || (pending.erase > 0 && archived > 0)) {
      if (!input.dryRun) storeOf(deps.store);
      // The archive phase reads, rewrites and deletes objects with S3 itself, not only through the store.
      if (!input.dryRun && pending.erase > 0 && archived > 0 && !deps.store?.s3Client)
        throw new StorageConfigurationError(
          `subjects policy ${policy.name}: erasures rewrite ${archived} archive object(s) and the store has no S3 client`,
          { policy: policy.name },
        );
      if (deps.store) await deps.store.checkBucket({ prefix: subjectsPrefix(policy.name) });
    }
    const cutoff = this.source.bound(deps.now(), policy);
    return {
      record: { tableName: tables.map((t) => t.qualified).join(', ') },
      cutoff,
      plan: async () =>
        subjectsPlan(cutoff, archived, tables, pending, refusals, await unindexedKeys(db, tables)),
      initialBatchRows: async () => 1,
      beforeLease: async () => ({}),
    };
  },

  // The mapping may have changed between executions (a table dropped, a foreign key added): check it again.
  async recheckContinuation({ db, policy }) {
    await resolveSubjectTables(db, policy);
  },

  chunkAction: ({ deps, policy }) =>
    new SubjectsChunkAction(deps, policy, {
      beforeSwap: (key) => deps.hooks?.beforeRewriteSwap?.(key),
      afterSwap: (key) => deps.hooks?.afterRewriteSwap?.(key),
    }),
};
