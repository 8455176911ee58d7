/**
 * Backups for the restore, verify and drill tests, made from the backup building blocks without the state
 * machine (fast, and any corruption can be injected after): the action's layout under `backup/<policy>/<backupId>/`
 * (schema.sql, post-data.sql, relocatable/…, data/<schema>.<table>/part-NNNNN.sql.gz, parts.txt, SHA256SUMS,
 * manifest.json written last), everything read under one
 * REPEATABLE READ snapshot — selection, DDL, parts, and each part's content checksum read with the part's own
 * range and summed, as the action records them. Optionally the backup's run and parts in the ledger.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import {
  addContentChecksums,
  type ContentChecksum,
  contentChecksumSql,
  formatContentChecksum,
} from '../../functions/actions/backup/content-checksum.ts';
import {
  type BackupManifest,
  BackupManifestSchema,
  backupKeys,
} from '../../functions/actions/backup/manifest.ts';
import { PART_EXTENSIONS, type PartCompression } from '../../functions/actions/backup/part-compression.ts';
import { rangePredicate } from '../../functions/actions/backup/part-plan.ts';
import { planTableParts } from '../../functions/actions/backup/part-plan-queries.ts';
import { inlineParameters, type WrittenPart, writePart } from '../../functions/actions/backup/part-writer.ts';
import { expectedPartLists } from '../../functions/actions/backup/restore/verify-backup.ts';
import { describeNotIncluded } from '../../functions/actions/backup/schema-definition.ts';
import {
  relocatableSchemaSql,
  relocationNotIncluded,
} from '../../functions/actions/backup/schema-relocation.ts';
import { generateSchemaSql } from '../../functions/actions/backup/schema-sql.ts';
import { readSchemaDefinition } from '../../functions/actions/backup/table-definition.ts';
import { selectBackupTables } from '../../functions/actions/backup/table-selection.ts';
import { quoteQualified } from '../../lib/contracts/identifiers.ts';
import { withTextClient } from './backup-parts.ts';
import type { TestDatabase } from './database.ts';

export interface TestBackupOptions {
  readonly db: TestDatabase;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly policy: string;
  /** Table patterns, as the config's `backup.tables`. */
  readonly tables: readonly string[];
  readonly exclude?: readonly string[];
  /** The backup's time (its id starts with it). @default now */
  readonly at?: Date;
  /** Uncompressed COPY text per part, roughly. @default 20 kB (several parts for a few thousand rows) */
  readonly partBytes?: number;
  readonly compression?: PartCompression;
  readonly retentionDays?: number;
  /** Record the backup's run and parts in the ledger (which must exist: migrateLedger). @default false */
  readonly ledger?: boolean;
  /** Leave manifest.json out: an incomplete backup (a run that failed before its end). @default true */
  readonly manifest?: boolean;
}

/** `20261202T010000Z-1a2b3c4d` */
export function testBackupId(at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}

/** The stored columns a part carries (generated ones are computed by the restore). */
async function partColumns(client: pg.ClientBase, oid: string): Promise<string[]> {
  const { rows } = await client.query<{ attname: string }>(
    `SELECT attname FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped
        AND attgenerated = '' ORDER BY attnum`,
    [oid],
  );
  return rows.map((r) => r.attname);
}

async function put(s3: S3Client, bucket: string, key: string, body: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

interface TableBackup {
  readonly entry: BackupManifest['tables'][number];
  readonly written: readonly WrittenPart[];
}

/** Writes one backup and returns its manifest (also when `manifest: false` left it out of the bucket). */
export async function writeTestBackup(options: TestBackupOptions): Promise<BackupManifest> {
  const at = options.at ?? new Date();
  const backupId = testBackupId(at);
  const keys = backupKeys(options.policy, backupId);
  const compression = options.compression ?? { codec: 'gzip', level: 1 };
  const startedAt = at.toISOString();
  const runId = randomUUID();
  const { tables, ddl, relocatable, notIncluded, serverVersion } = await withTextClient(
    options.db,
    async (client) => {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const selected = await selectBackupTables(client, {
          tables: options.tables,
          exclude: options.exclude ?? [],
        });
        const definition = await readSchemaDefinition(
          client,
          selected.map((t) => t.oid),
        );
        const backups: TableBackup[] = [];
        for (const table of selected) {
          const quotedName = quoteQualified(table.schema, table.table);
          const columns = await partColumns(client, table.oid);
          const planned = await planTableParts(
            client,
            { schema: table.schema, name: table.table, quotedName, only: table.only },
            options.partBytes ?? 20_000,
          );
          const written: WrittenPart[] = [];
          const checksums: ContentChecksum[] = [];
          for (const part of planned) {
            const range = rangePredicate(part.range);
            const key = keys.part(table.schema, table.table, part.index, PART_EXTENSIONS[compression.codec]);
            written.push(
              await writePart({
                client,
                table: { quotedName, columns, only: table.only },
                ...(range ? { range } : {}),
                s3: options.s3,
                bucket: options.bucket,
                key,
                compression,
              }),
            );
            // The part's own rows: same range, same snapshot, same pinned text settings as its COPY.
            const sql = contentChecksumSql(quotedName, columns, {
              only: table.only,
              ...(range ? { where: inlineParameters(range.sql, range.params) } : {}),
            });
            const { rows } = await client.query<{ rows: string; sum: string }>(sql);
            checksums.push({ rows: rows[0]?.rows ?? '0', sum: rows[0]?.sum ?? '0' });
          }
          backups.push({
            written,
            entry: {
              table: quotedName,
              rows: written.reduce((sum, p) => sum + p.rows, 0),
              bytes: written.reduce((sum, p) => sum + p.bytes, 0),
              consistency: 'snapshot',
              columns,
              contentChecksum: formatContentChecksum(addContentChecksums(checksums)),
              parts: written.map((p) => ({ key: p.key, rows: p.rows, bytes: p.bytes, sha256: p.sha256 })),
            },
          });
        }
        const version = await client.query<{ server_version: string }>('SHOW server_version');
        return {
          tables: backups,
          ddl: generateSchemaSql(definition),
          relocatable: relocatableSchemaSql(definition),
          notIncluded: [
            ...describeNotIncluded(definition.notIncluded),
            ...relocationNotIncluded(relocatableSchemaSql(definition)),
          ],
          serverVersion: version.rows[0]?.server_version ?? '?',
        };
      } finally {
        await client.query('ROLLBACK');
      }
    },
  );
  await put(options.s3, options.bucket, keys.schema, ddl.preData);
  await put(options.s3, options.bucket, keys.postData, ddl.postData);
  if (!('unavailable' in relocatable)) {
    await put(options.s3, options.bucket, keys.relocatableSchema, relocatable.preData);
    await put(options.s3, options.bucket, keys.relocatablePostData, relocatable.postData);
  }
  const manifest = BackupManifestSchema.parse({
    formatVersion: 1,
    backupId,
    policy: options.policy,
    runId,
    startedAt,
    finishedAt: new Date(Math.max(Date.now(), at.getTime() + 1000)).toISOString(),
    serverVersion,
    compression,
    consistency: 'snapshot',
    schemaKey: keys.schema,
    postDataKey: keys.postData,
    ...('unavailable' in relocatable
      ? {}
      : {
          relocatable: {
            schemaKey: keys.relocatableSchema,
            postDataKey: keys.relocatablePostData,
            placeholder: relocatable.placeholder,
          },
        }),
    ...(options.retentionDays !== undefined ? { retentionDays: options.retentionDays } : {}),
    tables: tables.map((t) => t.entry),
    notIncluded,
  });
  if (options.ledger) await recordInLedger(options, manifest);
  // As the action's Finish: the shell restore's lists, then the manifest last.
  const lists = expectedPartLists(manifest);
  await put(options.s3, options.bucket, keys.partsList, lists.partsList);
  await put(options.s3, options.bucket, keys.checksums, lists.checksums);
  if (options.manifest !== false) {
    await put(options.s3, options.bucket, keys.manifest, JSON.stringify(manifest, null, 2));
  }
  return manifest;
}

/** The backup's run and its parts as the ledger lists a backup's (kind 'backup-part', sql/010). */
async function recordInLedger(options: TestBackupOptions, manifest: BackupManifest): Promise<void> {
  const pool = options.db.pool;
  await pool.query(
    `INSERT INTO lifecycle.runs (run_id, policy, action, table_name, source, trigger, status, started_at, finished_at,
                                 rows, objects, bytes, detail)
     VALUES ($1, $2, 'backup', $3, 'whole-table', 'test', 'succeeded', $4, $5, $6, $7, $8, $9::jsonb)`,
    [
      manifest.runId,
      manifest.policy,
      manifest.tables.map((t) => t.table).join(', '),
      manifest.startedAt,
      manifest.finishedAt,
      manifest.tables.reduce((sum, t) => sum + t.rows, 0),
      manifest.tables.reduce((sum, t) => sum + t.parts.length, 0),
      manifest.tables.reduce((sum, t) => sum + t.bytes, 0),
      JSON.stringify({ backupId: manifest.backupId }),
    ],
  );
  const parts = manifest.tables.flatMap((t) => t.parts.map((p) => ({ ...p, table: t.table })));
  await pool.query(
    `INSERT INTO lifecycle.archived_objects (run_id, chunk_seq, kind, bucket, key, rows, bytes, sha256, detail)
     SELECT $1, 1, 'backup-part', $2, p.key, p.rows, p.bytes, p.sha256, jsonb_build_object('table', p.table)
       FROM jsonb_to_recordset($3::jsonb) AS p(key text, rows integer, bytes bigint, sha256 text, "table" text)`,
    [manifest.runId, options.bucket, JSON.stringify(parts)],
  );
}
