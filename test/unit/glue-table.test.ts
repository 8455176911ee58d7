import { describe, expect, it } from 'vitest';
import { buildGlueTableInput, glueTableName } from '../../functions/core/glue-table.ts';
import { planParquetColumns } from '../../functions/core/parquet/column-plan.ts';
import { describeParquetSchema } from '../../functions/core/parquet/encode.ts';

describe('Glue table over an archive prefix', () => {
  it('mirrors the Parquet column mapping and projects the Hive partitions', () => {
    // Prepare
    const columns = describeParquetSchema(
      planParquetColumns([
        { name: 'id', typeName: 'bigint', baseType: 'int8', isArray: false, notNull: true },
        {
          name: 'Amount',
          typeName: 'numeric(12,2)',
          baseType: 'numeric',
          isArray: false,
          notNull: false,
          numericPrecision: 12,
          numericScale: 2,
        },
        {
          name: 'created_at',
          typeName: 'timestamp with time zone',
          baseType: 'timestamptz',
          isArray: false,
          notNull: true,
        },
        { name: 'tags', typeName: 'text[]', baseType: 'text', isArray: true, notNull: false },
      ]),
    );
    // Act
    const table = buildGlueTableInput({
      policyName: 'counting-results',
      bucket: 'archive-bucket',
      tablePrefix: 'archive/counting-results/public.counting_results/',
      granularity: 'month',
      columns,
    });
    // Assess
    expect(table.Name).toBe('counting_results');
    expect(table.StorageDescriptor.Columns).toEqual([
      { Name: 'id', Type: 'bigint' },
      { Name: 'amount', Type: 'decimal(12,2)', Comment: 'source column "Amount"' },
      { Name: 'created_at', Type: 'timestamp' },
      { Name: 'tags', Type: 'array<string>' },
    ]);
    expect(table.PartitionKeys.map((k) => k.Name)).toEqual(['year', 'month']);
    expect(table.Parameters['storage.location.template']).toBe(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Athena's projection placeholders
      's3://archive-bucket/archive/counting-results/public.counting_results/year=${year}/month=${month}/',
    );
    expect(table.Parameters['projection.month.digits']).toBe('2');
    expect(glueTableName('a-b-c')).toBe('a_b_c');
  });

  it('refuses columns that collide once Glue lowercases them', () => {
    expect(() =>
      buildGlueTableInput({
        policyName: 'p',
        bucket: 'b',
        tablePrefix: 'archive/p/s.t/',
        granularity: 'year',
        columns: [
          { name: 'ID', athenaType: 'bigint' },
          { name: 'id', athenaType: 'bigint' },
        ],
      }),
    ).toThrow(/"ID" and "id" collide/);
  });
});
