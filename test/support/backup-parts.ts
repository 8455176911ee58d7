/** Helpers of the backup-part tests: text-pinned sessions, a whole table written as parts and read back. */
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { PART_EXTENSIONS, type PartCompression } from '../../functions/actions/backup/part-compression.ts';
import { type PartRange, rangePredicate } from '../../functions/actions/backup/part-plan.ts';
import { planTableParts } from '../../functions/actions/backup/part-plan-queries.ts';
import { type ListedPart, restorePart } from '../../functions/actions/backup/part-reader.ts';
import { type PartTable, type WrittenPart, writePart } from '../../functions/actions/backup/part-writer.ts';
import { SESSION_OPTIONS } from '../../functions/commons/database.ts';
import { quoteIdent, quoteQualified } from '../../lib/contracts/identifiers.ts';
import type { TestDatabase } from './database.ts';

/** A client with the project's text settings (UTC, ISO, extra_float_digits, hex bytea), values as text. */
export async function textClient(db: TestDatabase): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: db.url,
    options: SESSION_OPTIONS,
    types: { getTypeParser: () => (value: string) => value },
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

export async function withTextClient<T>(
  db: TestDatabase,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = await textClient(db);
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** `schema.table` as the catalog names it, with its columns in attribute order. */
export async function partTable(client: pg.ClientBase, schema: string, name: string): Promise<PartTable> {
  const { rows } = await client.query<{ attname: string }>(
    `SELECT attname FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [quoteQualified(schema, name)],
  );
  return { quotedName: quoteQualified(schema, name), columns: rows.map((row) => row.attname) };
}

export interface BackedUpTable {
  readonly table: PartTable;
  readonly parts: ReadonlyArray<{ readonly range: PartRange; readonly written: WrittenPart }>;
}

/** Plans and writes every part of `schema.name` in one REPEATABLE READ snapshot. */
export async function backUpTable(
  client: pg.ClientBase,
  props: {
    readonly schema: string;
    readonly name: string;
    readonly s3: S3Client;
    readonly bucket: string;
    readonly prefix: string;
    readonly targetBytes: number;
    readonly compression?: PartCompression;
  },
): Promise<BackedUpTable> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const table = await partTable(client, props.schema, props.name);
    const planned = await planTableParts(
      client,
      { schema: props.schema, name: props.name, quotedName: table.quotedName },
      props.targetBytes,
    );
    const compression = props.compression ?? { codec: 'gzip', level: 6 };
    const parts = [];
    for (const part of planned) {
      const range = rangePredicate(part.range);
      const written = await writePart({
        client,
        table,
        ...(range ? { range } : {}),
        s3: props.s3,
        bucket: props.bucket,
        key: `${props.prefix}/part-${String(part.index).padStart(5, '0')}.sql.${PART_EXTENSIONS[compression.codec]}`,
        compression,
      });
      parts.push({ range: part.range, written });
    }
    return { table, parts };
  } finally {
    await client.query('ROLLBACK');
  }
}

/** Loads every part into `target` (which must exist) in one transaction; returns the rows loaded. */
export async function restoreTable(
  client: pg.ClientBase,
  backup: BackedUpTable,
  target: {
    readonly s3: S3Client;
    readonly bucket: string;
    readonly quotedName: string;
    readonly codec?: PartCompression['codec'];
  },
): Promise<number> {
  await client.query('BEGIN');
  try {
    let rows = 0;
    for (const { written } of backup.parts) {
      const part: ListedPart = {
        key: written.key,
        bytes: written.bytes,
        sha256: written.sha256,
        rows: written.rows,
      };
      rows += (
        await restorePart({
          client,
          s3: target.s3,
          bucket: target.bucket,
          part,
          codec: target.codec ?? 'gzip',
          targetQuotedName: target.quotedName,
          columns: backup.table.columns,
        })
      ).rows;
    }
    await client.query('COMMIT');
    return rows;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

/** Every row's text, sorted: `ROW(cols)::text` over the given columns. */
export async function sortedRowTexts(
  client: pg.ClientBase,
  quotedName: string,
  columns: readonly string[],
): Promise<string[]> {
  const { rows } = await client.query<{ row: string }>(
    `SELECT row FROM (SELECT ROW(${columns.map(quoteIdent).join(', ')})::text AS row FROM ${quotedName}) AS rows
      ORDER BY row COLLATE "C"`,
  );
  return rows.map((row) => row.row);
}
