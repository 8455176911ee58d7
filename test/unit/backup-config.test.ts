/**
 * Backup policy configuration: table patterns as PostgreSQL reads names, codec levels, retention bounds, and
 * pattern lists that cannot mean what they say. Every problem is reported, each at its path.
 */
import { describe, expect, it } from 'vitest';
import {
  BackupPolicySchema,
  backupContract,
  backupPatternProblems,
} from '../../functions/actions/backup/contract.ts';
import { matchesTablePattern, parseTablePattern } from '../../functions/actions/backup/table-pattern.ts';

const policy = (backup: Record<string, unknown>) =>
  BackupPolicySchema.safeParse({ name: 'nightly', action: 'backup', schedule: 'cron(0 1 * * ? *)', backup });

const issues = (backup: Record<string, unknown>) => {
  const parsed = policy(backup);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('backup table patterns', () => {
  it.each([
    ['public.*', { kind: 'schema', schema: 'public' }],
    ['"Sales".*', { kind: 'schema', schema: 'Sales' }],
    ['Orders', { kind: 'table', schema: undefined, table: 'orders' }],
    ['"Sales"."Order Lines"', { kind: 'table', schema: 'Sales', table: 'Order Lines' }],
    ['sales."Order.Lines"', { kind: 'table', schema: 'sales', table: 'Order.Lines' }],
  ])('reads %s as PostgreSQL would', (text, expected) => {
    expect(parseTablePattern(text)).toEqual(expected);
  });

  it.each([
    ['lifecycle.*', /ledger/],
    ['lifecycle.runs', /ledger/],
    ['pg_catalog.pg_class', /system schema/],
    ['a.b.c', /"table", "schema.table" or "schema.\*"/],
    ['*', /not a valid identifier/],
    ['public.*.*', /single schema name|not a valid identifier/],
    ['x; DROP TABLE y', /not a valid identifier/],
  ])('refuses %s', (text, message) => {
    expect(() => parseTablePattern(text)).toThrow(message);
  });

  it('matches catalog names exactly, an unqualified pattern in public', () => {
    expect(matchesTablePattern(parseTablePattern('orders'), { schema: 'public', table: 'orders' })).toBe(
      true,
    );
    expect(matchesTablePattern(parseTablePattern('orders'), { schema: 'sales', table: 'orders' })).toBe(
      false,
    );
    expect(matchesTablePattern(parseTablePattern('"Sales".*'), { schema: 'Sales', table: 'x' })).toBe(true);
    expect(matchesTablePattern(parseTablePattern('Sales.*'), { schema: 'Sales', table: 'x' })).toBe(false);
  });
});

describe('backup policy schema', () => {
  it('applies the defaults: gzip 6, 30 days, two tables at once, 256 MiB parts', () => {
    const parsed = policy({ tables: ['public.*'] });
    expect(parsed.success && parsed.data.backup).toEqual({
      tables: ['public.*'],
      exclude: [],
      compression: 'gzip',
      level: 6,
      retentionDays: 30,
      maxConcurrency: 2,
      partMiB: 256,
    });
  });

  it('defaults zstd to level 3 and takes its levels up to 19', () => {
    const parsed = policy({ tables: ['public.*'], compression: 'zstd' });
    expect(parsed.success && parsed.data.backup.level).toBe(3);
    expect(issues({ tables: ['public.*'], compression: 'zstd', level: 19 })).toEqual([]);
  });

  it('reports every problem at once, each at its path', () => {
    expect(
      issues({
        tables: ['public.*', 'lifecycle.runs'],
        exclude: ['a.b.c'],
        compression: 'gzip',
        level: 12,
        retentionDays: 0,
        maxConcurrency: 0,
      }),
    ).toEqual([
      expect.stringMatching(/^backup\.tables\.1: .*ledger/),
      expect.stringMatching(/^backup\.exclude\.0: /),
      expect.stringMatching(/^backup\.retentionDays: /),
      expect.stringMatching(/^backup\.maxConcurrency: /),
      'backup.level: gzip takes levels 1–9',
    ]);
    expect(issues({ tables: ['public.*'], retentionDays: 3651 })).toEqual([
      expect.stringMatching(/^backup\.retentionDays: /),
    ]);
    // A part must fit well within one Chunk invocation: 1 GiB of COPY text at most.
    expect(issues({ tables: ['public.*'], partMiB: 1024 })).toEqual([]);
    expect(issues({ tables: ['public.*'], partMiB: 1025 })).toEqual([
      expect.stringMatching(/^backup\.partMiB: /),
    ]);
  });

  it('has no table, time column, retention or filter of its own', () => {
    expect(issues({ tables: ['public.*'] })).toEqual([]);
    const parsed = BackupPolicySchema.safeParse({
      name: 'nightly',
      action: 'backup',
      table: 'public.events',
      backup: { tables: ['public.*'] },
    });
    expect(parsed.success).toBe(false);
  });

  it('needs at least one table pattern', () => {
    expect(issues({ tables: [] })).toEqual(['backup.tables: name at least one table or schema.*']);
  });
});

describe('backup pattern lists', () => {
  it('finds a pattern listed twice, however it is spelled', () => {
    expect(
      backupPatternProblems({ tables: ['orders', 'public.orders', 'PUBLIC.ORDERS'], exclude: [] }),
    ).toEqual([
      { path: ['backup', 'tables', 1], message: 'public.orders is listed twice' },
      { path: ['backup', 'tables', 2], message: 'PUBLIC.ORDERS is listed twice' },
    ]);
  });

  it('refuses exclusions that leave nothing to back up', () => {
    expect(backupPatternProblems({ tables: ['public.a', 'public.b'], exclude: ['public.*'] })).toEqual([
      { path: ['backup', 'exclude'], message: 'excludes every table that tables names' },
    ]);
    expect(backupPatternProblems({ tables: ['public.*'], exclude: ['public.audit_logs'] })).toEqual([]);
  });

  it('keeps its objects under backup/<policy>/ and expires them after retentionDays', () => {
    const parsed = BackupPolicySchema.parse({
      name: 'nightly',
      action: 'backup',
      backup: { tables: ['public.*'], retentionDays: 7 },
    });
    expect(backupContract.storage(parsed)).toEqual({
      prefix: 'backup/nightly/',
      tiers: { transitions: [], expireAfterDays: 7 },
      objectLock: false,
      glueTable: false,
      finishWrites: true,
    });
  });
});
