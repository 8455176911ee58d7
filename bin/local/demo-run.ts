import { parseArgs } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { resolveTable } from '../../functions/adapters/catalog.ts';
import { PartitionLedger } from '../../functions/adapters/ledger/index.ts';
import { applyMigrations } from '../../functions/adapters/migrations.ts';
import { policyPrefix } from '../../functions/core/object-keys.ts';
import { localDependencies, stderrLogger } from '../../functions/local-runner/local-dependencies.ts';
import { type LocalRunResult, runPolicyLocally } from '../../functions/local-runner/local-runner.ts';
import { synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import { buildComplianceReport, type ComplianceReport } from '../../functions/reports/compliance.ts';
import { silentLogger } from '../../functions/run/dependencies.ts';
import { loadConfigFile } from '../../lib/config-file.ts';
import type { ArchivePolicy, PurgePolicy } from '../../lib/contracts/config.ts';
import { quoteQualified } from '../../lib/contracts/identifiers.ts';
import type { Maintenance } from '../../lib/contracts/payloads.ts';
import { isTimeCutoffPolicy, type TimeCutoffPolicy } from '../../lib/contracts/policy.ts';
import { formatBytes } from '../cli/format.ts';
import {
  type AnonymizeReport,
  type BackupReport,
  type PolicyReport,
  printDemoReport,
} from './demo-report.ts';
import { applyDemoSchema, seedDemoData } from './demo-seed.ts';
import {
  type DemoServices,
  describeKeptServices,
  keptServicesJson,
  startDemoServices,
} from './demo-services.ts';
import { demoSubjects, type SubjectsReport } from './demo-subjects.ts';
import { DemoAlreadyRunningError } from './kept-services.ts';
import { readRowVersions, verifyAnonymizeRun } from './verify-anonymize.ts';
import { verifyArchiveRun } from './verify-archive.ts';
import { verifyBackupRun } from './verify-backup.ts';
import { verifyPurgeRun } from './verify-purge.ts';

const BUCKET = 'pg-lifecycle-demo';
/** The demo's hash key (anonymize pseudonyms, subject hashes): a real deployment keeps one in Secrets Manager. */
const HASH_KEY = 'pg-lifecycle demo hash key (not a secret)';

async function countRows(client: pg.Client, policy: TimeCutoffPolicy): Promise<number> {
  const table = await resolveTable(client, policy.table);
  const { rows } = await client.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM ${quoteQualified(table.schema, table.table)}`,
  );
  return Number(rows[0]?.n ?? 0);
}

function describeTiers(policy: ArchivePolicy): string {
  const s = policy.archive.storage;
  const tiers = [
    `IA@${s.infrequentAccessAfterDays}d`,
    `GlacierIR@${s.glacierInstantRetrievalAfterDays}d`,
    `DeepArchive@${s.deepArchiveAfterDays}d`,
  ];
  if (s.expireAfterDays) tiers.push(`expire@${s.expireAfterDays}d`);
  return tiers.join(' → ');
}

async function reportPurge(
  client: pg.Client,
  policy: PurgePolicy,
  result: LocalRunResult,
  rowsBefore: number,
  rowsAfter: number,
): Promise<PolicyReport> {
  const summary = result.status === 'succeeded' ? result.summary : undefined;
  const verification = summary
    ? await verifyPurgeRun(client, policy, {
        cutoff: summary.cutoff,
        rowsBefore,
        rowsAfter,
        rowsPurged: summary.rows,
      })
    : { ok: false, problems: [`run failed: ${result.failure?.error}: ${result.failure?.cause}`] };
  const m = summary?.maintenance;
  const maintenance = !m
    ? 'none'
    : m.vacuumed
      ? `VACUUM (ANALYZE) in ${m.durationMs} ms, dead tuples ${m.deadTuplesBefore} → ${m.deadTuplesAfter}${bloat(m)}`
      : `no VACUUM (${m.reason}${m.error ? `: ${m.error}` : ''}; ${m.rowsDeleted} of ~${m.rowsBefore} rows, threshold ${m.afterFraction})`;
  return {
    ...runReport(policy, result, rowsBefore, rowsAfter),
    objects: 0,
    bytes: 0,
    tierPrefix: '',
    tiers: '',
    verified: verification.ok,
    problems: verification.problems,
    maintenance,
  };
}

/** What every policy's report says, whatever its action. */
function runReport(policy: TimeCutoffPolicy, result: LocalRunResult, rowsBefore: number, rowsAfter: number) {
  return {
    policy: policy.name,
    action: policy.action,
    table: policy.table,
    status: result.status,
    rowsBefore,
    rowsAfter,
    rowsArchived: result.summary?.rows ?? 0,
    chunks: result.summary?.chunks ?? 0,
    durationMs: result.summary?.durationMs ?? 0,
  };
}

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      config: { type: 'string', default: 'lifecycle.config.json' },
      keep: { type: 'boolean', default: false },
      persist: { type: 'boolean', default: false },
      'services-only': { type: 'boolean', default: false },
    },
  });
  const say = (text: string) => {
    if (!values.json) process.stdout.write(`${text}\n`);
  };
  if ((values.persist || values['services-only']) && !values.keep) {
    process.stderr.write('--persist and --services-only go with --keep (npm run demo:up)\n');
    return 2;
  }
  const started = performance.now();
  const config = loadConfigFile(values.config);
  let services: DemoServices;
  try {
    services = await startDemoServices({
      keep: values.keep,
      persist: values.persist,
      bucket: BUCKET,
      hashKey: HASH_KEY,
      say,
    });
  } catch (error) {
    if (!(error instanceof DemoAlreadyRunningError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 1;
  }
  const { kept } = services;
  if (kept && (kept.resumed || values['services-only'])) {
    if (values.json)
      process.stdout.write(`${JSON.stringify({ ok: true, services: keptServicesJson(kept) }, null, 2)}\n`);
    else {
      if (kept.resumed)
        say('Started on the data an earlier demo:down --persist kept (the demo does not run again).');
      say(describeKeptServices(kept));
    }
    return 0;
  }
  // The handlers build their own S3 clients from the standard AWS environment, as in Lambda.
  process.env.AWS_ENDPOINT_URL_S3 = services.s3Endpoint;
  process.env.AWS_ACCESS_KEY_ID ??= 'demo';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'demo';
  process.env.AWS_REGION ??= 'us-east-1';
  const s3 = new S3Client({ region: 'us-east-1', forcePathStyle: true, endpoint: services.s3Endpoint });
  const client = new pg.Client({ connectionString: services.databaseUrl });
  const reports: PolicyReport[] = [];
  const backups: BackupReport[] = [];
  const anonymized: AnonymizeReport[] = [];
  const subjects: SubjectsReport[] = [];
  let compliance: ComplianceReport | undefined;
  try {
    await client.connect();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await applyMigrations(client);
    say('Seeding the AI-camera schema…');
    const pool = new pg.Pool({ connectionString: services.databaseUrl, max: 4 });
    try {
      await applyDemoSchema(pool);
      await seedDemoData(pool);
    } finally {
      await pool.end();
    }
    const definition = await synthesizeDefinition(config);
    /** One policy through the synthesized state machine, against the demo's database and bucket. */
    const run = (policyName: string) =>
      runPolicyLocally({
        config,
        policyName,
        definition,
        pauseMs: 0,
        dependencies: localDependencies({
          databaseUrl: services.databaseUrl,
          bucket: BUCKET,
          log: values.verbose ? stderrLogger : silentLogger,
          hashKey: HASH_KEY,
        }),
      });
    for (const policy of config.policies) {
      if (!policy.enabled || !isTimeCutoffPolicy(policy) || policy.action === 'anonymize') continue;
      say(`Running ${policy.name} (${policy.action} ${policy.table}, retention ${policy.retention})…`);
      const rowsBefore = await countRows(client, policy);
      const result = await run(policy.name);
      const rowsAfter = await countRows(client, policy);
      if (policy.action === 'purge') {
        reports.push(await reportPurge(client, policy, result, rowsBefore, rowsAfter));
        continue;
      }
      const verification =
        result.summary && result.status === 'succeeded'
          ? await verifyArchiveRun(client, s3, BUCKET, {
              runId: result.summary.runId,
              policy: policy.name,
              rowsBefore,
              rowsAfter,
            })
          : {
              ok: false,
              problems: [`run failed: ${result.failure?.error}: ${result.failure?.cause}`],
              rowsInObjects: 0,
              objectsChecked: 0,
            };
      reports.push({
        ...runReport(policy, result, rowsBefore, rowsAfter),
        objects: result.summary?.objects ?? 0,
        bytes: result.summary?.bytes ?? 0,
        tierPrefix: `s3://${BUCKET}/${policyPrefix(policy.name)}`,
        tiers: describeTiers(policy),
        verified: verification.ok,
        problems: verification.problems,
        partitions: result.summary ? await new PartitionLedger(client).retiredBy(result.summary.runId) : [],
      });
    }
    // Anonymize after purge (a row purged needs no masking), each run twice: the second must change nothing.
    for (const policy of config.policies) {
      if (!policy.enabled || policy.action !== 'anonymize') continue;
      say(`Running ${policy.name} (anonymize ${policy.table}, retention ${policy.retention}) twice…`);
      const before = await readRowVersions(client, policy);
      const result = await run(policy.name);
      const after = await readRowVersions(client, policy);
      const rerun = await run(policy.name);
      const afterRerun = await readRowVersions(client, policy);
      const verification =
        result.status === 'succeeded' && rerun.status === 'succeeded' && result.summary
          ? await verifyAnonymizeRun(client, policy, {
              cutoff: result.summary.cutoff,
              rowsUpdated: result.summary.rows,
              before,
              after,
              rerunRows: rerun.summary?.rows ?? 0,
              afterRerun,
            })
          : {
              ok: false,
              problems: [
                `run failed: ${(result.failure ?? rerun.failure)?.error}: ${(result.failure ?? rerun.failure)?.cause}`,
              ],
            };
      anonymized.push({
        policy: policy.name,
        table: policy.table,
        status: result.status,
        rows: result.summary?.rows ?? 0,
        chunks: result.summary?.chunks ?? 0,
        durationMs: result.summary?.durationMs ?? 0,
        rerunRows: rerun.summary?.rows ?? 0,
        columns: Object.entries(policy.anonymize.columns).map(([c, s]) => `${c}: ${s.strategy}`),
        verified: verification.ok,
        problems: verification.problems,
      });
    }
    // GDPR requests: one export, one erasure, of users whose audit trail is partly archived.
    for (const policy of config.policies) {
      if (!policy.enabled || policy.action !== 'subjects') continue;
      say(`Running ${policy.name} (subject requests: one export, one erasure)…`);
      subjects.push(await demoSubjects(client, s3, BUCKET, policy, HASH_KEY, run));
    }
    // Backups last: they take the tables as the archive and purge runs left them.
    for (const policy of config.policies) {
      if (!policy.enabled || policy.action !== 'backup') continue;
      say(`Running ${policy.name} (backup of ${policy.backup.tables.join(', ')}), then a restore drill…`);
      const result = await run(policy.name);
      backups.push(await reportBackup(client, s3, policy.name, result));
    }
    compliance = await buildComplianceReport(client, config, { now: new Date() });
  } catch (error) {
    if (kept)
      process.stderr.write(`\nThe demo failed; its services keep running. ${describeKeptServices(kept)}\n\n`);
    throw error;
  } finally {
    await client.end().catch(() => undefined);
    s3.destroy();
    await services.release();
  }
  const ok =
    reports.every((r) => r.verified) &&
    backups.every((b) => b.verified) &&
    anonymized.every((a) => a.verified) &&
    subjects.every((s) => s.verified);
  const totalMs = Math.round(performance.now() - started);
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ ok, durationMs: totalMs, bucket: BUCKET, policies: reports, anonymized, subjects, backups, compliance, ...(kept ? { services: keptServicesJson(kept) } : {}) }, null, 2)}\n`,
    );
  } else {
    printDemoReport(
      say,
      { bucket: BUCKET, policies: reports, anonymized, subjects, backups, compliance },
      ok,
      totalMs,
    );
    if (kept) say(`\n${describeKeptServices(kept)}`);
  }
  return ok ? 0 : 1;
}

/** Heap size and estimated bloat around the VACUUM (which makes space reusable, not smaller). */
function bloat(m: Maintenance): string {
  if (m.heapBytesBefore === undefined || m.heapBytesAfter === undefined) return '';
  const heap = `, heap ${formatBytes(m.heapBytesBefore)} → ${formatBytes(m.heapBytesAfter)}`;
  if (m.estimatedBloatBytesBefore === undefined || m.estimatedBloatBytesAfter === undefined) return heap;
  return `${heap}, est. bloat ${formatBytes(m.estimatedBloatBytesBefore)} → ${formatBytes(m.estimatedBloatBytesAfter)}`;
}

async function reportBackup(
  client: pg.Client,
  s3: S3Client,
  policy: string,
  result: LocalRunResult,
): Promise<BackupReport> {
  const backup = result.summary?.backup;
  const base = {
    policy,
    status: result.status,
    backupId: backup?.backupId,
    tables: backup?.tables ?? 0,
    rows: result.summary?.rows ?? 0,
    parts: backup?.parts ?? 0,
    bytes: result.summary?.bytes ?? 0,
    consistency: backup?.consistency ?? '-',
    durationMs: result.summary?.durationMs ?? 0,
  };
  if (result.status !== 'succeeded' || !backup) {
    return {
      ...base,
      drill: undefined,
      verified: false,
      problems: [`run failed: ${result.failure?.error}: ${result.failure?.cause}`],
    };
  }
  const verification = await verifyBackupRun(client, s3, BUCKET, { policy, backupId: backup.backupId });
  const drill = verification.drill;
  return {
    ...base,
    drill: drill
      ? {
          status: drill.status,
          durationMs: drill.durationMs,
          scratchSchema: drill.scratchSchema,
          tables: drill.tables.length,
        }
      : undefined,
    verified: verification.ok,
    problems: verification.problems,
  };
}
