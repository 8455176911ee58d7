/**
 * S3 object layout for archives:
 *   archive/<policy>/<schema>.<table>/year=YYYY/month=MM[/day=DD]/<runId>-<unique>.parquet
 * Hive-style partitions let Athena (partition projection) and DuckDB (hive_partitioning) prune by time.
 * Every object holds rows of exactly one partition.
 */
export type PartitionGranularity = 'year' | 'month' | 'day';

/** The policy's prefix: S3 lifecycle rules and the Glue table location hang off it. */
export function policyPrefix(policyName: string): string {
  return `archive/${policyName}/`;
}

/** Keeps letters, digits, `_` and `-`; percent-encodes the rest (so `a.b` in a name cannot fake a schema dot). */
export function encodeKeySegment(identifier: string): string {
  return Array.from(new TextEncoder().encode(identifier), (byte) => {
    const char = String.fromCharCode(byte);
    return /[A-Za-z0-9_-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

/** `archive/<policy>/<schema>.<table>/` */
export function tablePrefix(policyName: string, schema: string, table: string): string {
  return `${policyPrefix(policyName)}${encodeKeySegment(schema)}.${encodeKeySegment(table)}/`;
}

const LEADING_DATE = /^(\d{4,})-(\d{2})-(\d{2})/;

/**
 * Hive partition of a row from its time column's text (session TimeZone is UTC, DateStyle ISO).
 * `-infinity` and BC dates sort before every real date; they land in `year=0000` so they stay visible.
 */
export function partitionOf(timeText: string, granularity: PartitionGranularity): string {
  const match = LEADING_DATE.exec(timeText);
  const [year, month, day] =
    !match || timeText.endsWith(' BC')
      ? ['0000', '01', '01']
      : [match[1] ?? '', match[2] ?? '', match[3] ?? ''];
  if (granularity === 'year') return `year=${year}`;
  if (granularity === 'month') return `year=${year}/month=${month}`;
  return `year=${year}/month=${month}/day=${day}`;
}

/** The full object key. `unique` makes keys of retried chunks distinct, so a retry never overwrites a committed object. */
export function objectKey(parts: {
  policyName: string;
  schema: string;
  table: string;
  partition: string;
  runId: string;
  unique: string;
}): string {
  return `${tablePrefix(parts.policyName, parts.schema, parts.table)}${parts.partition}/${parts.runId}-${parts.unique}.parquet`;
}

/**
 * Exclusive upper bound of a partition, as ISO UTC text for the chunk query: the next year, month or
 * day after the partition that holds `timeText`. Keeps a chunk (and so its one object) inside one partition.
 */
export function partitionEndOf(timeText: string, granularity: PartitionGranularity): string {
  const match = LEADING_DATE.exec(timeText);
  if (!match || timeText.endsWith(' BC')) return '0001-01-01T00:00:00Z';
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999.
  const end = new Date(0);
  if (granularity === 'year') end.setUTCFullYear(year + 1, 0, 1);
  else if (granularity === 'month') end.setUTCFullYear(year, month, 1);
  else end.setUTCFullYear(year, month - 1, day + 1);
  const pad = (n: number, width: number) => String(n).padStart(width, '0');
  return `${pad(end.getUTCFullYear(), 4)}-${pad(end.getUTCMonth() + 1, 2)}-${pad(end.getUTCDate(), 2)}T00:00:00Z`;
}
