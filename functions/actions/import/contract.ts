/**
 * Import's configuration (pure: for the CDK app and `validate`): legacy rows moved from a source table into
 * a target table in chunks, each target column given by a source column or a SQL expression over the
 * source row. Rows the target refuses (NOT NULL, a failed cast, a CHECK, a foreign key, a unique key other
 * than the import key) go to `lifecycle.import_rejects` with the reason instead of failing the chunk; rows
 * already in the target (same import key) are skipped, so a re-run imports nothing twice.
 */
import { z } from 'zod';
import type { ActionContract, ConfigProblem } from '../../../lib/contracts/action-contract.ts';
import { FilterSchema, FunctionSignatureSchema } from '../../../lib/contracts/filter-screen.ts';
import {
  ColumnNameSchema,
  PolicyCommonSchema,
  QualifiedTableSchema,
  sameTable,
} from '../../../lib/contracts/policy-base.ts';

/**
 * One target column's value: an expression over the source row, screened like a filter (no statement
 * separators, comments or escapes) and checked by PostgreSQL at Start (only immutable or stable functions,
 * unless listed in `functions`). A plain column name is the simplest expression.
 */
const ExpressionSchema = FilterSchema;

/** `s3://bucket/key`: the bucket as S3 names buckets, a key of at most 1024 characters. */
const S3UriSchema = z
  .string()
  .regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.{1,1024}$/s, 'must be s3://bucket/key')
  .refine((uri) => ![...uri].some((c) => c.charCodeAt(0) < 0x20), 'must not contain control characters')
  // The key becomes an IAM resource ARN: `*` and `?` are wildcards there and `${…}` a policy variable, so
  // `s3://dumps/*` would grant the whole bucket.
  .refine((uri) => !/[*?$]/.test(uri), 'must name one object: no *, ? or $ (IAM reads them as wildcards)');

/**
 * A CSV or Parquet object in S3 as the source: loaded into a staging table of the run
 * (`lifecycle.import_staging_<run>`, every column text, plus `import_line`: the data row's number, 1-based, its
 * key) by the first Chunk step, dropped when the run ends. Expressions read its columns by the names of the
 * CSV header or the Parquet schema.
 */
const ObjectSourceSchema = z
  .object({
    object: S3UriSchema,
    format: z.enum(['csv', 'parquet']),
    /** CSV: one character between fields (a header line names the columns). */
    delimiter: z
      .string()
      .refine(
        (d) => Buffer.byteLength(d, 'utf8') === 1,
        'must be one single-byte character (COPY takes no other)',
      )
      .refine((d) => !/["\r\n\\.]/.test(d), 'must not be a quote, backslash, period or line break')
      .default(','),
    /** CSV: the text that means NULL (unquoted); by default an empty unquoted field. */
    null: z
      .string()
      .max(32)
      .refine((n) => !/["\r\n]/.test(n), 'must not contain a quote or a line break')
      .default(''),
  })
  .strict()
  .superRefine((source, ctx) => {
    if (source.null.includes(source.delimiter))
      ctx.addIssue({ code: 'custom', path: ['null'], message: 'must not contain the delimiter' });
  });

export type ObjectSource = z.output<typeof ObjectSourceSchema>;

export const ImportOptionsSchema = z
  .object({
    /**
     * The legacy table rows are read from (`schema.table`, quoted parts keep case), or a CSV / Parquet object
     * in S3 (`{ "object": "s3://bucket/key.csv", "format": "csv" }`).
     */
    // A plain union says only "Invalid input": name the problems of the form the value has (text or object).
    source: z.union([QualifiedTableSchema, ObjectSourceSchema], {
      error: (issue) => {
        const asObject = typeof issue.input === 'object' && issue.input !== null;
        const parsed = (asObject ? ObjectSourceSchema : QualifiedTableSchema).safeParse(issue.input);
        if (parsed.success) return undefined;
        return parsed.error.issues
          .map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message))
          .join('; ');
      },
    }),
    /** The table rows are inserted into. */
    target: QualifiedTableSchema,
    /** Target column → source expression. Target columns left out take their defaults. */
    columns: z
      .record(ColumnNameSchema, ExpressionSchema)
      .refine((columns) => Object.keys(columns).length > 0, 'map at least one target column'),
    /**
     * Source columns the import walks in order (unique and NOT NULL together); default the source's primary
     * key. Rejects are recorded by these values.
     */
    sourceKey: z.array(ColumnNameSchema).min(1).max(8).optional(),
    /**
     * Target columns that say "already imported" (`ON CONFLICT (…) DO NOTHING`: a unique index on exactly
     * these columns); default the target's primary key.
     */
    targetKey: z.array(ColumnNameSchema).min(1).max(8).optional(),
    /** Functions that are not PostgreSQL's own which the expressions may call (`schema.name(types)`). */
    functions: z.array(FunctionSignatureSchema).max(50).optional(),
    /**
     * What a dry run (`plan`, `run --dry-run`) validates: at most this many source rows, inserted in a
     * transaction that is always rolled back.
     */
    dryRunRows: z.int().min(1).max(10_000_000).default(100_000),
  })
  .strict();

export const ImportPolicySchema = PolicyCommonSchema.omit({
  table: true,
  filter: true,
  filterFunctions: true,
  allowSeqScan: true,
})
  .extend({ action: z.literal('import'), import: ImportOptionsSchema })
  .strict();

export type ImportPolicy = z.output<typeof ImportPolicySchema>;
export type ImportOptions = z.output<typeof ImportOptionsSchema>;

function importProblems(policy: ImportPolicy): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const source = policy.import.source;
  if (typeof source === 'string' && sameTable(source, policy.import.target)) {
    problems.push({ path: ['import', 'target'], message: 'must be another table than source' });
  }
  const seen = new Map<string, string>();
  for (const column of Object.keys(policy.import.columns)) {
    // Unquoted names fold to lower case: "ID" and id would be one column twice.
    const folded = column.startsWith('"') ? column : column.toLowerCase();
    const earlier = seen.get(folded);
    if (earlier !== undefined) {
      problems.push({
        path: ['import', 'columns', column],
        message: `names the same target column as ${earlier}`,
      });
    }
    seen.set(folded, column);
  }
  return problems;
}

export const importContract: ActionContract<ImportPolicy> = {
  action: 'import',
  // Rows of the source stay where they are; the target only gains rows.
  rowFate: 'kept',
  tablesOf: (policy) => `${sourceName(policy.import.source)} → ${policy.import.target}`,
  readsObjects: (policy) =>
    typeof policy.import.source === 'string' ? [] : [parseS3Uri(policy.import.source.object)],
  storage: () => undefined,
  configProblems: (policy) => importProblems(policy),
};

/** The source as a name for messages: its table, or its object's URI. */
export function sourceName(source: ImportOptions['source']): string {
  return typeof source === 'string' ? source : source.object;
}

/** An `s3://bucket/key` URI's parts (already validated by the schema). */
export function parseS3Uri(uri: string): { readonly bucket: string; readonly key: string } {
  const rest = uri.slice('s3://'.length);
  const slash = rest.indexOf('/');
  return { bucket: rest.slice(0, slash), key: rest.slice(slash + 1) };
}
