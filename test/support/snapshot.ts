/**
 * Byte-identical snapshots of a database and a bucket, read with Node only (no psql or pg_dump): what a
 * refused command must leave exactly as it found it.
 *
 * The database side reads the definitions of everything outside the system schemas from the catalog
 * (schemas, relations, columns, indexes, constraints, functions, operators, casts, types, views, triggers,
 * row-level-security policies, extensions, sequences, ACLs, database settings, the roles given by name) and
 * the rows of every table, `lifecycle.*` included, as a count and an md5 of the rows' text in the order of
 * that text. Statistics (reltuples, pg_statistic) are left out: autovacuum changes them on its own.
 */
import { createHash } from 'node:crypto';
import {
  GetObjectCommand,
  ListBucketsCommand,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import pg from 'pg';

/** Everything outside these schemas is the database's own (pg_toast and pg_temp_N by prefix). */
const USER_NAMESPACE = `n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'`;

/**
 * One text line per catalog object, by kind. Each query returns a single column `line` and is sorted by
 * the caller (ORDER BY line COLLATE "C"), so two snapshots compare line by line.
 */
const CATALOG_QUERIES: Readonly<Record<string, string>> = {
  database: `SELECT concat_ws(' | ', datname, datallowconn, datconnlimit, datacl::text,
                (SELECT string_agg(s.setconfig::text, ',') FROM pg_db_role_setting s WHERE s.setdatabase = d.oid))
               FROM pg_database d WHERE datname = current_database()`,
  schemas: `SELECT concat_ws(' | ', nspname, pg_get_userbyid(nspowner), nspacl::text) FROM pg_namespace n
             WHERE ${USER_NAMESPACE}`,
  relations: `SELECT concat_ws(' | ', n.nspname, c.relname, c.relkind, c.relpersistence, pg_get_userbyid(c.relowner),
                c.relacl::text, c.reloptions::text, c.relrowsecurity, c.relispartition, pg_get_expr(c.relpartbound, c.oid))
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE ${USER_NAMESPACE} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')`,
  columns: `SELECT concat_ws(' | ', a.attrelid::regclass::text, a.attnum, a.attname,
              format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attacl::text)
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE ${USER_NAMESPACE} AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND a.attnum > 0 AND NOT a.attisdropped`,
  indexes: `SELECT concat_ws(' | ', schemaname, tablename, indexname, indexdef) FROM pg_indexes
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`,
  constraints: `SELECT concat_ws(' | ', n.nspname, co.conname, co.conrelid::regclass::text, co.contypid::regtype::text,
                  pg_get_constraintdef(co.oid), co.convalidated)
                 FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace WHERE ${USER_NAMESPACE}`,
  functions: `SELECT concat_ws(' | ', p.oid::regprocedure::text, p.prokind, p.provolatile, p.prosecdef,
                pg_get_userbyid(p.proowner), p.proacl::text, p.proconfig::text, md5(p.prosrc), p.prorettype::regtype::text)
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${USER_NAMESPACE}`,
  operators: `SELECT concat_ws(' | ', o.oid::regoperator::text, o.oprcode::regprocedure::text)
                FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE ${USER_NAMESPACE}`,
  // 16384 = FirstNormalObjectId: casts created after initdb.
  casts: `SELECT concat_ws(' | ', castsource::regtype::text, casttarget::regtype::text,
            castfunc::regprocedure::text, castcontext, castmethod)
           FROM pg_cast WHERE oid >= 16384`,
  types: `SELECT concat_ws(' | ', t.oid::regtype::text, t.typtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull,
            (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE ${USER_NAMESPACE} AND t.typtype IN ('b', 'd', 'e', 'r', 'm') AND t.typcategory <> 'A'`,
  views: `SELECT concat_ws(' | ', c.oid::regclass::text, pg_get_viewdef(c.oid))
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE ${USER_NAMESPACE} AND c.relkind IN ('v', 'm')`,
  triggers: `SELECT concat_ws(' | ', pg_get_triggerdef(t.oid), t.tgenabled) FROM pg_trigger t
               JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE ${USER_NAMESPACE} AND NOT t.tgisinternal`,
  eventTriggers: `SELECT concat_ws(' | ', evtname, evtevent, evtenabled, evtfoid::regproc::text) FROM pg_event_trigger`,
  policies: `SELECT concat_ws(' | ', schemaname, tablename, policyname, cmd, roles::text, qual, with_check)
               FROM pg_policies WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`,
  extensions: `SELECT concat_ws(' | ', e.extname, e.extversion, n.nspname)
                 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace`,
  sequences: `SELECT concat_ws(' | ', schemaname, sequencename, last_value) FROM pg_sequences`,
  defaultPrivileges: `SELECT concat_ws(' | ', pg_get_userbyid(defaclrole), defaclnamespace::regnamespace::text,
                        defaclobjtype, defaclacl::text) FROM pg_default_acl`,
  largeObjects: `SELECT count(*)::text FROM pg_largeobject_metadata`,
  publications: `SELECT pubname FROM pg_publication`,
  preparedTransactions: `SELECT gid FROM pg_prepared_xacts WHERE database = current_database()`,
};

/** Roles (cluster-wide) whose names start with a prefix: attributes and memberships either way. */
const ROLE_QUERIES = {
  roles: `SELECT concat_ws(' | ', rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
            rolconnlimit, rolvaliduntil, rolbypassrls, rolconfig::text)
           FROM pg_roles WHERE starts_with(rolname, $1)`,
  memberships: `SELECT concat_ws(' | ', pg_get_userbyid(m.roleid), pg_get_userbyid(m.member), m.admin_option)
                  FROM pg_auth_members m
                 WHERE starts_with(pg_get_userbyid(m.roleid), $1) OR starts_with(pg_get_userbyid(m.member), $1)`,
};

export interface TableContent {
  readonly rows: string;
  /** md5 of the rows' text, one per line, in the order of that text (C collation). */
  readonly md5: string;
}

export interface DatabaseSnapshot {
  /** Whether the ledger schema exists (also in `catalog.schemas`; spelled out for readable diffs). */
  readonly ledger: boolean;
  readonly catalog: Readonly<Record<string, readonly string[]>>;
  /** Per table (`schema.table`): row count and digest. */
  readonly tables: Readonly<Record<string, TableContent>>;
}

export interface SnapshotOptions {
  /** Roles whose names start with this are part of the snapshot (roles are cluster-wide). */
  readonly rolePrefix?: string;
}

/**
 * Reads the snapshot on one connection in one REPEATABLE READ READ ONLY transaction, so it is a single
 * consistent picture. `url` must be a superuser (it reads every table and sequence).
 */
export async function snapshotDatabase(
  url: string,
  options: SnapshotOptions = {},
): Promise<DatabaseSnapshot> {
  // Fixed session settings: the rows' text (timestamps, floats) must not depend on the server's defaults.
  const client = new pg.Client({
    connectionString: url,
    application_name: 'hostile-snapshot',
    options: '-c TimeZone=UTC -c DateStyle=ISO,MDY -c extra_float_digits=3 -c bytea_output=hex',
  });
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const catalog: Record<string, string[]> = {};
    const lines = async (sql: string, params: unknown[] = []) =>
      (
        await client.query<{ line: string }>(
          `SELECT q.line::text AS line FROM (${sql}) AS q(line) ORDER BY q.line::text COLLATE "C"`,
          params,
        )
      ).rows.map((r) => r.line);
    for (const [kind, sql] of Object.entries(CATALOG_QUERIES)) catalog[kind] = await lines(sql);
    if (options.rolePrefix !== undefined) {
      for (const [kind, sql] of Object.entries(ROLE_QUERIES))
        catalog[kind] = await lines(sql, [options.rolePrefix]);
    }
    const { rows: tables } = await client.query<{ name: string; qualified: string }>(
      `SELECT n.nspname || '.' || c.relname AS name, format('%I.%I', n.nspname, c.relname) AS qualified
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE ${USER_NAMESPACE} AND c.relkind = 'r' ORDER BY n.nspname || '.' || c.relname COLLATE "C"`,
    );
    const content: Record<string, TableContent> = {};
    for (const table of tables) {
      // The alias is a whole-row reference unless the table has a column of that name: pick one it will not.
      const { rows } = await client.query<TableContent>(
        `SELECT count(*)::text AS rows,
                md5(coalesce(string_agg(snapshot_row::text, E'\\n' ORDER BY snapshot_row::text COLLATE "C"), '')) AS md5
           FROM ${table.qualified} AS snapshot_row`,
      );
      content[table.name] = rows[0] as TableContent;
    }
    const ledger = catalog.schemas?.some((line) => line.startsWith('lifecycle |')) ?? false;
    return { ledger, catalog, tables: content };
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    await client.end();
  }
}

export interface BucketSnapshot {
  /** Buckets whose names start with the snapshot bucket's name (a command must not create one). */
  readonly buckets: readonly string[];
  /** `key` → `size sha256` of the body as read back. */
  readonly objects: Readonly<Record<string, string>>;
}

export async function snapshotBucket(s3: S3Client, bucket: string): Promise<BucketSnapshot> {
  const listed = await s3.send(new ListBucketsCommand({}));
  const buckets = (listed.Buckets ?? [])
    .map((b) => b.Name ?? '')
    .filter((name) => name.startsWith(bucket))
    .sort();
  const objects: Record<string, string> = {};
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket })) {
    for (const object of page.Contents ?? []) {
      if (object.Key === undefined) continue;
      const result = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: object.Key }));
      const body = (await result.Body?.transformToByteArray()) ?? new Uint8Array();
      objects[object.Key] = `${body.byteLength} ${createHash('sha256').update(body).digest('hex')}`;
    }
  }
  return {
    buckets,
    objects: Object.fromEntries(Object.entries(objects).sort(([a], [b]) => (a < b ? -1 : 1))),
  };
}

/** A database and a bucket, read side by side: everything a refused run must leave as it found it. */
export async function snapshotDatabaseAndBucket(
  url: string,
  s3: S3Client,
  bucket: string,
  options: SnapshotOptions = {},
): Promise<{ readonly database: DatabaseSnapshot; readonly bucket: BucketSnapshot }> {
  const [database, objects] = await Promise.all([snapshotDatabase(url, options), snapshotBucket(s3, bucket)]);
  return { database, bucket: objects };
}
