/**
 * A backup's DDL files. schema.sql (and its relocatable twin, for `restore --into-schema` and drills) is
 * written by the first batch, under the same snapshot as the first parts. post-data.sql is written at
 * Finish, after every part was read: its sequence positions are then at least as far as any value a part
 * holds (a restore's next INSERT gets a fresh id). Finish reads the definition again and refuses a backup
 * whose schema.sql no longer matches it (a column, type or partition changed mid-backup): its parts and its
 * DDL would not fit together.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { mapS3Error } from '../../adapters/archive-store.ts';
import { CatalogError } from '../../core/errors.ts';
import { backupKeys } from './manifest.ts';
import { describeNotIncluded } from './schema-definition.ts';
import { relocatableSchemaSql, relocationNotIncluded } from './schema-relocation.ts';
import { generateSchemaSql } from './schema-sql.ts';
import { readSchemaDefinition } from './table-definition.ts';
import type { BackupRunDetail } from './table-plan.ts';

export interface SchemaFilesProps {
  /** One client (the definition is read with session settings of its own), in the snapshot wanted. */
  readonly client: pg.ClientBase;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly policy: string;
  readonly detail: BackupRunDetail;
}

export interface PostDataResult {
  readonly notIncluded: string[];
  /** SHA-256 of every DDL file of the backup, by key (the manifest's fileSha256). */
  readonly fileSha256: Record<string, string>;
  readonly relocatable?: { schemaKey: string; postDataKey: string; placeholder: string };
}

export async function writeSchemaFiles(props: SchemaFilesProps): Promise<void> {
  const { client, s3, bucket, policy, detail } = props;
  const definition = await readSchemaDefinition(
    client,
    detail.tables.map((t) => t.oid),
  );
  const keys = backupKeys(policy, detail.backupId);
  await putText(s3, bucket, keys.schema, generateSchemaSql(definition).preData);
  const relocatable = relocatableSchemaSql(definition);
  if (!('unavailable' in relocatable)) await putText(s3, bucket, keys.relocatableSchema, relocatable.preData);
}

/** @throws CatalogError when the tables' definition is no longer the one schema.sql holds */
export async function writePostData(props: SchemaFilesProps): Promise<PostDataResult> {
  const { client, s3, bucket, policy, detail } = props;
  const definition = await readSchemaDefinition(
    client,
    detail.tables.map((t) => t.oid),
  );
  const keys = backupKeys(policy, detail.backupId);
  const sql = generateSchemaSql(definition);
  if ((await getText(s3, bucket, keys.schema)) !== sql.preData)
    throw new CatalogError(
      'the backed-up tables’ definitions changed during the backup (schema.sql no longer matches them); run it again',
    );
  await putText(s3, bucket, keys.postData, sql.postData);
  const fileSha256: Record<string, string> = {
    [keys.schema]: sha256Text(sql.preData),
    [keys.postData]: sha256Text(sql.postData),
  };
  const notIncluded = describeNotIncluded(definition.notIncluded);
  const relocatable = relocatableSchemaSql(definition);
  notIncluded.push(...relocationNotIncluded(relocatable));
  if ('unavailable' in relocatable) return { notIncluded, fileSha256 };
  // The relocatable schema.sql as the first batch stored it: what a restore will read is what is hashed.
  fileSha256[keys.relocatableSchema] = sha256Text(await getText(s3, bucket, keys.relocatableSchema));
  await putText(s3, bucket, keys.relocatablePostData, relocatable.postData);
  fileSha256[keys.relocatablePostData] = sha256Text(relocatable.postData);
  return {
    notIncluded,
    fileSha256,
    relocatable: {
      schemaKey: keys.relocatableSchema,
      postDataKey: keys.relocatablePostData,
      placeholder: relocatable.placeholder,
    },
  };
}

export async function putText(s3: S3Client, bucket: string, key: string, text: string): Promise<void> {
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: Buffer.from(text, 'utf8'),
        ContentType: key.endsWith('.json')
          ? 'application/json'
          : key.endsWith('.txt') || key.endsWith('SHA256SUMS')
            ? 'text/plain; charset=utf-8'
            : 'application/sql; charset=utf-8',
      }),
    );
  } catch (error) {
    throw mapS3Error(error, `upload of ${key}`);
  }
}

export async function getText(s3: S3Client, bucket: string, key: string): Promise<string> {
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (await response.Body?.transformToString('utf8')) ?? '';
  } catch (error) {
    throw mapS3Error(error, `read of ${key}`);
  }
}

function sha256Text(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
