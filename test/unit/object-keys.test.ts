import { describe, expect, it } from 'vitest';
import {
  encodeKeySegment,
  objectKey,
  partitionEndOf,
  partitionOf,
  tablePrefix,
} from '../../functions/core/object-keys.ts';

describe('object keys', () => {
  it('derives Hive partitions from the time column text in UTC', () => {
    expect(partitionOf('2023-04-05 06:07:08.123456+00', 'month')).toBe('year=2023/month=04');
    expect(partitionOf('2023-04-05 06:07:08.123456+00', 'year')).toBe('year=2023');
    expect(partitionOf('2023-04-05', 'day')).toBe('year=2023/month=04/day=05');
    expect(partitionOf('-infinity', 'month')).toBe('year=0000/month=01');
    expect(partitionOf('0044-03-15 00:00:00+00 BC', 'year')).toBe('year=0000');
  });

  it('lays keys out under the policy prefix and the table, encoding unsafe name characters', () => {
    const key = objectKey({
      policyName: 'events',
      schema: 'Sales',
      table: 'Order Lines.v2',
      partition: 'year=2023/month=04',
      runId: '0b5d9c1e-0000-4000-8000-000000000000',
      unique: 'u1',
    });
    expect(key).toBe(
      'archive/events/Sales.Order%20Lines%2Ev2/year=2023/month=04/0b5d9c1e-0000-4000-8000-000000000000-u1.parquet',
    );
    expect(tablePrefix('p', 'a.b', 'c')).not.toBe(tablePrefix('p', 'a', 'b.c'));
    expect(encodeKeySegment('Ünï/x')).toBe('%C3%9Cn%C3%AF%2Fx');
  });

  it('bounds a chunk at the end of its partition, for any year', () => {
    expect(partitionEndOf('2023-12-15 10:00:00.5+00', 'month')).toBe('2024-01-01T00:00:00Z');
    expect(partitionEndOf('2023-12-15', 'year')).toBe('2024-01-01T00:00:00Z');
    expect(partitionEndOf('2024-02-29 23:59:59.999999', 'day')).toBe('2024-03-01T00:00:00Z');
    expect(partitionEndOf('0050-03-01', 'month')).toBe('0050-04-01T00:00:00Z');
    expect(partitionEndOf('12345-12-31', 'day')).toBe('12346-01-01T00:00:00Z');
    expect(partitionEndOf('-infinity', 'month')).toBe('0001-01-01T00:00:00Z');
  });
});
