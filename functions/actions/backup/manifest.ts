/**
 * `manifest.json` of a backup: what it holds and how far it can be trusted. Written last: a backup without
 * one is incomplete and never listed as restorable. Restore, verify and drills read it back through this
 * schema, so a manifest edited by hand or cut short is refused with the field at fault.
 */
import { z } from 'zod';
import { encodeKeySegment } from '../../core/object-keys.ts';

const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex SHA-256');
const IsoTimeSchema = z.iso.datetime({ offset: true });

export const BackupPartSchema = z
  .object({
    key: z.string().min(1),
    rows: z.int().min(0),
    /** Bytes stored (compressed), what S3 reports as the object's length. */
    bytes: z.int().min(0),
    sha256: Sha256Schema,
  })
  .strict();

/**
 * `snapshot`: the table was read under the backup's one exported snapshot (with every other `snapshot`
 * table); `per-part`: each part under its own, so rows changed between parts may appear in neither or both
 * versions across parts — never half a row.
 */
export const ConsistencySchema = z.enum(['snapshot', 'per-part']);

export const BackupTableSchema = z
  .object({
    /** Quoted `"schema"."table"` as the catalog spelled it. */
    table: z.string().min(1),
    rows: z.int().min(0),
    bytes: z.int().min(0),
    consistency: ConsistencySchema,
    /**
     * The columns every part carries, in order, as the catalog names them (unquoted): stored columns, not
     * generated ones (the restore computes those). Restore loads parts under another name with this list.
     */
    columns: z.array(z.string().min(1)).min(1),
    /**
     * Order-independent checksum of the rows' text (`md5-64:<rows>:<sum>`, see content-checksum.ts), each
     * part's read in that part's transaction and snapshot and summed; recomputed after restores and drills.
     */
    contentChecksum: z.string().regex(/^md5-64:\d+:-?\d+$/, 'must be md5-64:<rows>:<sum>'),
    parts: z.array(BackupPartSchema),
  })
  .strict()
  .superRefine((table, ctx) => {
    const rows = table.parts.reduce((sum, part) => sum + part.rows, 0);
    if (rows !== table.rows) {
      ctx.addIssue({
        code: 'custom',
        path: ['rows'],
        message: `is ${table.rows} but the parts hold ${rows}`,
      });
    }
    const bytes = table.parts.reduce((sum, part) => sum + part.bytes, 0);
    if (bytes !== table.bytes) {
      ctx.addIssue({
        code: 'custom',
        path: ['bytes'],
        message: `is ${table.bytes} but the parts hold ${bytes}`,
      });
    }
  });

export const BackupManifestSchema = z
  .object({
    formatVersion: z.literal(1),
    backupId: z.string().regex(/^[0-9A-Za-z-]{8,64}$/),
    policy: z.string().min(1),
    runId: z.uuid(),
    startedAt: IsoTimeSchema,
    finishedAt: IsoTimeSchema,
    /** server_version of the source, as `SHOW server_version` prints it. */
    serverVersion: z.string().min(1),
    compression: z.object({ codec: z.enum(['gzip', 'zstd']), level: z.int().min(1) }).strict(),
    /** The weakest consistency of any table: `snapshot` only when every table is. */
    consistency: ConsistencySchema,
    schemaKey: z.string().min(1),
    postDataKey: z.string().min(1),
    /**
     * The same DDL with every backed-up schema placed in one placeholder schema, for `restore --into-schema`
     * and drills (schema-relocation.ts); absent when the tables cannot share one schema (two tables of one
     * name in two schemas): notIncluded then says why.
     */
    relocatable: z
      .object({
        schemaKey: z.string().min(1),
        postDataKey: z.string().min(1),
        placeholder: z.string().min(1),
      })
      .strict()
      .optional(),
    /**
     * The policy's retentionDays when the backup was taken: S3's lifecycle rule expires each object that many
     * days after it was written, so the backup stops being restorable once its first part expires. Optional:
     * `backups list` shows no expiry without it.
     */
    retentionDays: z.int().min(1).max(3650).optional(),
    /**
     * SHA-256 of each DDL file the manifest names (schema.sql, post-data.sql, the relocatable copies), by key:
     * verify and restore refuse a DDL file that is not the one the backup wrote, before it runs.
     */
    fileSha256: z.record(z.string(), Sha256Schema).optional(),
    tables: z.array(BackupTableSchema),
    /** What the backup does not hold, said rather than skipped: triggers, grants, large objects, … */
    notIncluded: z.array(z.string()),
  })
  .strict()
  .superRefine((manifest, ctx) => {
    const weakest = manifest.tables.some((t) => t.consistency === 'per-part') ? 'per-part' : 'snapshot';
    if (manifest.tables.length > 0 && manifest.consistency !== weakest) {
      ctx.addIssue({
        code: 'custom',
        path: ['consistency'],
        message: `is ${manifest.consistency} but a table says ${weakest}`,
      });
    }
    const tables = new Set<string>();
    manifest.tables.forEach((table, t) => {
      if (tables.has(table.table)) {
        ctx.addIssue({ code: 'custom', path: ['tables', t, 'table'], message: 'listed twice' });
      }
      tables.add(table.table);
    });
    const keys = new Set<string>();
    manifest.tables.forEach((table, t) => {
      table.parts.forEach((part, p) => {
        if (keys.has(part.key)) {
          ctx.addIssue({ code: 'custom', path: ['tables', t, 'parts', p, 'key'], message: 'listed twice' });
        }
        keys.add(part.key);
      });
    });
    if (Date.parse(manifest.finishedAt) < Date.parse(manifest.startedAt)) {
      ctx.addIssue({ code: 'custom', path: ['finishedAt'], message: 'is before startedAt' });
    }
  });

export type BackupManifest = z.output<typeof BackupManifestSchema>;
export type BackupTableEntry = z.output<typeof BackupTableSchema>;

/** Where a backup's pieces live: `backup/<policy>/<backupId>/…`. */
export function backupKeys(policy: string, backupId: string) {
  const base = `backup/${policy}/${backupId}/`;
  return {
    base,
    manifest: `${base}manifest.json`,
    schema: `${base}schema.sql`,
    postData: `${base}post-data.sql`,
    /** The manifest's part keys relative to `base`, one per line (a shell restore loops over it). */
    partsList: `${base}parts.txt`,
    /** `sha256sum -c` input: each listed part's SHA-256 and path relative to `base`. */
    checksums: `${base}SHA256SUMS`,
    relocatableSchema: `${base}relocatable/schema.sql`,
    relocatablePostData: `${base}relocatable/post-data.sql`,
    /** `data/<schema>.<table>/part-00001.sql.gz`, names encoded as in archive keys (a dot cannot fake one). */
    part: (schema: string, table: string, index: number, extension: 'gz' | 'zst') =>
      `${base}data/${encodeKeySegment(schema)}.${encodeKeySegment(table)}/part-${String(index).padStart(5, '0')}.sql.${extension}`,
  };
}

/** Parses a manifest's text; the error names the field at fault. */
export function parseManifest(text: string): BackupManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`manifest.json is not JSON: ${(error as Error).message}`);
  }
  const parsed = BackupManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `manifest.json is not a backup manifest: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}
