/**
 * The Glue table over an archive policy's prefix, so Athena queries the archive in place. Its columns
 * come from the same catalog mapping as the Parquet files (synth cannot see the database, so the start
 * step writes it). Partition projection over the Hive keys: no crawler, no MSCK REPAIR.
 */
import { glueTableName } from '../../lib/contracts/glue-table-name.ts';
import type { PartitionGranularity } from './object-keys.ts';

export interface GlueColumn {
  readonly Name: string;
  readonly Type: string;
  readonly Comment?: string;
}

export interface GlueTableInput {
  readonly Name: string;
  readonly TableType: 'EXTERNAL_TABLE';
  readonly Parameters: Record<string, string>;
  readonly PartitionKeys: GlueColumn[];
  readonly StorageDescriptor: {
    readonly Columns: GlueColumn[];
    readonly Location: string;
    readonly InputFormat: string;
    readonly OutputFormat: string;
    readonly SerdeInfo: {
      readonly SerializationLibrary: string;
      readonly Parameters: Record<string, string>;
    };
  };
}

/** The table's name: one rule with the stack's IAM grant for it (lib/contracts/glue-table-name.ts). */
export { glueTableName };

const PARTITION_KEYS: Record<PartitionGranularity, Array<{ name: string; range: string; digits: string }>> = {
  year: [{ name: 'year', range: '0,9999', digits: '4' }],
  month: [
    { name: 'year', range: '0,9999', digits: '4' },
    { name: 'month', range: '1,12', digits: '2' },
  ],
  day: [
    { name: 'year', range: '0,9999', digits: '4' },
    { name: 'month', range: '1,12', digits: '2' },
    { name: 'day', range: '1,31', digits: '2' },
  ],
};

/**
 * Glue lowercases column names; two source columns that differ only in case cannot both be exposed, so
 * that is refused here with the names (the Parquet files keep the exact names either way).
 */
export function buildGlueTableInput(options: {
  policyName: string;
  bucket: string;
  tablePrefix: string;
  granularity: PartitionGranularity;
  columns: ReadonlyArray<{ name: string; athenaType: string }>;
}): GlueTableInput {
  const seen = new Map<string, string>();
  const columns = options.columns.map((column) => {
    const lower = column.name.toLowerCase();
    const clash = seen.get(lower);
    if (clash !== undefined)
      throw new Error(`columns "${clash}" and "${column.name}" collide in Glue (names are case-insensitive)`);
    seen.set(lower, column.name);
    return {
      Name: lower,
      Type: column.athenaType,
      Comment: column.name === lower ? undefined : `source column "${column.name}"`,
    };
  });
  const keys = PARTITION_KEYS[options.granularity];
  const location = `s3://${options.bucket}/${options.tablePrefix}`;
  const template = `${location}${keys.map((k) => `${k.name}=\${${k.name}}`).join('/')}/`;
  const parameters: Record<string, string> = {
    classification: 'parquet',
    EXTERNAL: 'TRUE',
    'projection.enabled': 'true',
    'storage.location.template': template,
  };
  for (const key of keys) {
    parameters[`projection.${key.name}.type`] = 'integer';
    parameters[`projection.${key.name}.range`] = key.range;
    parameters[`projection.${key.name}.digits`] = key.digits;
  }
  return {
    Name: glueTableName(options.policyName),
    TableType: 'EXTERNAL_TABLE',
    Parameters: parameters,
    PartitionKeys: keys.map((k) => ({ Name: k.name, Type: 'string' })),
    StorageDescriptor: {
      Columns: columns.map((c) => (c.Comment ? c : { Name: c.Name, Type: c.Type })),
      Location: location,
      InputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
      OutputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
      SerdeInfo: {
        SerializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe',
        Parameters: { 'serialization.format': '1' },
      },
    },
  };
}
