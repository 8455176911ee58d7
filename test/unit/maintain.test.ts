import { describe, expect, it } from 'vitest';
import {
  estimateBtreeBloat,
  estimateHeapBloat,
  exactBtreeBloat,
  exactHeapBloat,
} from '../../functions/actions/maintain/bloat-estimate.ts';
import { analyzeDue, decideIndex, decideTable } from '../../functions/actions/maintain/decide.ts';
import type { IndexFacts, TableFacts } from '../../functions/actions/maintain/figures.ts';
import { LifecycleConfigSchema, resolveChunking } from '../../lib/contracts/config.ts';

const nightly = {
  name: 'nightly-maintenance',
  action: 'maintain',
  schedule: 'cron(0 3 * * ? *)',
  maintain: {
    tables: ['public.*'],
    analyzeAfterDays: 7,
    maxTableBloatPercent: 20,
    maxIndexBloatPercent: 30,
    reindex: 'concurrently',
    timeoutMs: 600000,
  },
};

function issuesOf(maintain: Record<string, unknown>): string[] {
  const result = LifecycleConfigSchema.safeParse({
    sandbox: true,
    policies: [{ ...nightly, maintain: { ...nightly.maintain, ...maintain } }],
  });
  if (result.success) return [];
  return result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('maintain config', () => {
  it('takes the documented policy and fills the defaults', () => {
    // Act
    const config = LifecycleConfigSchema.parse({ sandbox: true, policies: [nightly] });
    // Assess
    const policy = config.policies[0];
    if (policy?.action !== 'maintain') throw new Error('not a maintain policy');
    expect(policy.maintain).toEqual({
      tables: ['public.*'],
      exclude: [],
      analyzeAfterDays: 7,
      analyzeChangedPercent: 10,
      maxTableBloatPercent: 20,
      maxIndexBloatPercent: 30,
      reindex: 'concurrently',
      vacuumTruncate: true,
      vacuumCostDelay: 'autovacuum',
      timeoutMs: 600_000,
      minRelationBytes: 1024 * 1024,
      exactBelowBytes: 1024 * 1024 * 1024,
    });
  });

  it('waits up to 30 s for a lock by default (REINDEX CONCURRENTLY waits for older transactions)', () => {
    // Act
    const config = LifecycleConfigSchema.parse({ sandbox: true, policies: [nightly] });
    // Assess
    expect(resolveChunking(config, config.policies[0] as never).lockTimeoutMs).toBe(30_000);
  });

  it.each([
    [{ reindex: 'blocking' }, 'policies.0.maintain.reindex: must be "concurrently" or "skip"'],
    [{ vacuumFull: true }, 'policies.0.maintain.vacuumFull: VACUUM FULL is refused'],
    [
      { maxTableBloatPercent: 0 },
      'policies.0.maintain.maxTableBloatPercent: maxTableBloatPercent must be between 1 and 99',
    ],
    [
      { maxIndexBloatPercent: 150 },
      'policies.0.maintain.maxIndexBloatPercent: maxIndexBloatPercent must be between 1 and 99',
    ],
    [{ analyzeAfterDays: 0 }, 'policies.0.maintain.analyzeAfterDays: analyzeAfterDays must be more than 0'],
    [{ timeoutMs: 999 }, 'policies.0.maintain.timeoutMs'],
    [{ timeoutMs: 3_600_000 }, 'policies.0.maintain.timeoutMs'],
    [{ tables: ['lifecycle.*'] }, 'policies.0.maintain.tables.0: no maintenance runs there'],
    [{ tables: ['lifecycle.runs'] }, 'policies.0.maintain.tables.0: no maintenance runs there'],
    [{ tables: ['public.*', 'PUBLIC.*'] }, 'policies.0.maintain.tables.1: PUBLIC.* is listed twice'],
    [{ exclude: ['public.*'] }, 'policies.0.maintain.exclude: excludes every table that tables names'],
    [{ tables: [] }, 'policies.0.maintain.tables: name at least one table or schema.*'],
  ])('refuses %j, naming the field', (maintain, expected) => {
    // Act
    const issues = issuesOf(maintain);
    // Assess
    expect(
      issues.some((issue) => issue.startsWith(expected)),
      issues.join('\n'),
    ).toBe(true);
  });

  it('takes quoted mixed-case and spaced names', () => {
    expect(
      issuesOf({ tables: ['"Shop Floor"."Order Lines"', '"Sales".*'], exclude: ['"Sales"."Old"'] }),
    ).toEqual([]);
  });
});

describe('bloat estimate (statistics)', () => {
  const shape = { dataWidth: 16, columns: 2, hasNulls: false };

  it('reads a table packed as the estimate expects as not bloated, and the same rows in 5× the pages as 80 %', () => {
    // 8 KiB pages, tuples of 4 + 24 + 16 = 44 bytes: 185 per page; 185 000 rows → 1000 pages.
    const packed = estimateHeapBloat({
      sizeBytes: 1000 * 8192,
      blockSize: 8192,
      liveRows: 185_000,
      fillfactor: 100,
      shape,
    });
    const bloated = estimateHeapBloat({
      sizeBytes: 5000 * 8192,
      blockSize: 8192,
      liveRows: 185_000,
      fillfactor: 100,
      shape,
    });
    expect(packed).toEqual({ percent: 0, bytes: 0 });
    expect(bloated).toEqual({ percent: 80, bytes: 4000 * 8192 });
  });

  it('counts the fillfactor’s reserve as needed space, not bloat', () => {
    const atHalf = estimateHeapBloat({
      sizeBytes: 2000 * 8192,
      blockSize: 8192,
      liveRows: 185_000,
      fillfactor: 50,
      shape,
    });
    expect(atHalf?.percent).toBeLessThan(1);
  });

  it('has no estimate without statistics, and reads an empty table’s pages as all slack', () => {
    expect(
      estimateHeapBloat({
        sizeBytes: 8192 * 10,
        blockSize: 8192,
        liveRows: 5,
        fillfactor: 100,
        shape: undefined,
      }),
    ).toBeUndefined();
    expect(
      estimateHeapBloat({
        sizeBytes: 8192 * 10,
        blockSize: 8192,
        liveRows: 0,
        fillfactor: 100,
        shape: { dataWidth: 0, columns: 0, hasNulls: false },
      }),
    ).toEqual({ percent: 100, bytes: 8192 * 10 });
  });

  it('estimates a btree from its entries and key width, the metapage counted', () => {
    // 8-byte key: 4 + 8 + 8 = 20 bytes per entry, (8192 - 40) × 0.9 / 20 = 366 per page.
    const index = (pages: number) =>
      estimateBtreeBloat({
        sizeBytes: pages * 8192,
        blockSize: 8192,
        entries: 366 * 100,
        fillfactor: 90,
        shape: { dataWidth: 8, columns: 1, hasNulls: false },
      });
    expect(index(101)?.percent).toBe(0);
    expect(index(202)?.percent).toBe(50);
  });
});

describe('bloat (pgstattuple)', () => {
  it('counts dead tuples and free space beyond the fillfactor’s reserve', () => {
    expect(exactHeapBloat({ tableLen: 1000, deadTupleLen: 300, freeSpace: 200 }, 100)).toEqual({
      percent: 50,
      bytes: 500,
    });
    expect(exactHeapBloat({ tableLen: 1000, deadTupleLen: 0, freeSpace: 100 }, 90)).toEqual({
      percent: 0,
      bytes: 0,
    });
  });

  it('counts sparse leaves and empty or deleted pages of a btree', () => {
    const figure = exactBtreeBloat(
      { indexSize: 100 * 8192, leafPages: 90, emptyPages: 0, deletedPages: 9, avgLeafDensity: 45 },
      90,
      8192,
    );
    expect(figure).toEqual({ percent: 54, bytes: 54 * 8192 });
  });
});

function table(overrides: Partial<TableFacts> = {}): TableFacts {
  return {
    oid: '1',
    table: '"public"."t"',
    kind: 'r',
    canMaintain: true,
    role: 'app',
    sizeBytes: 100 * 1024 * 1024,
    blockSize: 8192,
    liveRows: 1_000_000,
    reltuples: 1_000_000,
    deadTuples: 0,
    modsSinceAnalyze: 0,
    lastAnalyzed: '2026-11-20T00:00:00.000Z',
    analyzedAgeDays: 1,
    fillfactor: 100,
    bloat: { method: 'statistics', percent: 5, bytes: 5 * 1024 * 1024 },
    ...overrides,
  };
}

const options = {
  analyzeAfterDays: 7,
  analyzeChangedPercent: 10,
  maxTableBloatPercent: 20,
  maxIndexBloatPercent: 30,
  reindex: 'concurrently' as const,
  minRelationBytes: 1024 * 1024,
};

describe('maintain decisions', () => {
  it('analyzes only stale or much-changed statistics', () => {
    expect(analyzeDue(table(), options)).toBeUndefined();
    expect(analyzeDue(table({ analyzedAgeDays: 8 }), options)).toMatch(/8\.0 days old/);
    expect(analyzeDue(table({ analyzedAgeDays: null, lastAnalyzed: null }), options)).toBe('never analyzed');
    expect(analyzeDue(table({ modsSinceAnalyze: 99_999 }), options)).toBeUndefined();
    expect(analyzeDue(table({ modsSinceAnalyze: 100_000 }), options)).toMatch(/10\.0 % of rows changed/);
  });

  it('vacuums over the threshold (the ANALYZE comes with it), analyzes when only the statistics are due', () => {
    const bloated = { method: 'statistics' as const, percent: 45, bytes: 45 * 1024 * 1024 };
    expect(
      decideTable(table({ bloat: bloated, deadTuples: 500_000, analyzedAgeDays: 30 }), options),
    ).toMatchObject({
      statement: 'vacuum',
      reason: expect.stringMatching(
        /^33\.3 % dead tuples \(pg_stat_user_tables\) at or above maxTableBloatPercent 20/,
      ),
    });
    // Bloat with few dead tuples is free space VACUUM cannot reclaim: reported, never vacuumed.
    expect(decideTable(table({ bloat: bloated, deadTuples: 1_000 }), options)).toMatchObject({
      statement: 'none',
      reason: expect.stringContaining('free space only VACUUM FULL or pg_repack reclaims'),
    });
    expect(
      decideTable(
        table({ bloat: { ...bloated, method: 'pgstattuple', deadTuplePercent: 25 }, deadTuples: 0 }),
        options,
      ),
    ).toMatchObject({
      statement: 'vacuum',
      reason: expect.stringMatching(/^25\.0 % dead tuples \(pgstattuple\)/),
    });
    expect(decideTable(table({ analyzedAgeDays: 30 }), options)).toMatchObject({ statement: 'analyze' });
    expect(decideTable(table(), options)).toMatchObject({ statement: 'none' });
    expect(decideTable(table({ bloat: bloated, sizeBytes: 1000 }), options)).toMatchObject({
      statement: 'none',
      reason: expect.stringContaining('minRelationBytes'),
    });
  });

  it('only analyzes a partitioned table (its partitions are vacuumed on their own)', () => {
    const bloated = { method: 'statistics' as const, percent: 45, bytes: 45 * 1024 * 1024 };
    expect(decideTable(table({ kind: 'p', bloat: bloated }), options).statement).toBe('none');
    expect(decideTable(table({ kind: 'p', analyzedAgeDays: null, lastAnalyzed: null }), options)).toEqual({
      statement: 'analyze',
      reason: 'never analyzed',
    });
  });

  it('skips a table the role does not own, saying why', () => {
    expect(decideTable(table({ canMaintain: false }), options)).toEqual({
      statement: 'skip',
      reason: expect.stringContaining('role app does not own "public"."t"'),
    });
  });

  function index(overrides: Partial<IndexFacts> = {}): IndexFacts {
    return {
      oid: '2',
      index: '"t_pkey"',
      name: 't_pkey',
      schema: 'public',
      method: 'btree',
      valid: true,
      exclusion: false,
      sizeBytes: 50 * 1024 * 1024,
      bloat: { method: 'statistics', percent: 40, bytes: 20 * 1024 * 1024 },
      ...overrides,
    };
  }

  it('rebuilds a bloated btree concurrently, reports invalid and leftover indexes, leaves others alone', () => {
    expect(decideIndex(index(), options).statement).toBe('reindex');
    expect(decideIndex(index(), { ...options, reindex: 'skip' }).statement).toBe('none');
    expect(decideIndex(index({ name: 't_pkey_ccnew', valid: false }), options)).toMatchObject({
      statement: 'skip',
      report: true,
      reason: expect.stringContaining('leftover of an interrupted REINDEX CONCURRENTLY'),
    });
    expect(decideIndex(index({ name: 't_pkey_ccold1', valid: false }), options).report).toBe(true);
    expect(decideIndex(index({ valid: false }), options)).toMatchObject({ statement: 'skip', report: true });
    expect(decideIndex(index({ method: 'gin', bloat: undefined }), options).statement).toBe('none');
    expect(decideIndex(index({ exclusion: true }), options).statement).toBe('none');
    expect(decideIndex(index({ sizeBytes: 8192 }), options).statement).toBe('none');
  });
});
