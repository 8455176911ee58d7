import { describe, expect, it } from 'vitest';
import { capByBytes, nextBatchRows, statementBudgetMs } from '../../functions/core/batch-size.ts';
import { computeCutoff } from '../../functions/core/cutoff.ts';
import { ChunkingSchema } from '../../lib/contracts/config.ts';
import { parseIsoDuration, subtractDuration } from '../../lib/contracts/iso-duration.ts';

describe('ISO-8601 retention and cutoff', () => {
  it('parses the usual retention forms', () => {
    expect(parseIsoDuration('P2Y')).toMatchObject({ years: 2, months: 0, days: 0 });
    expect(parseIsoDuration('P6M')).toMatchObject({ months: 6 });
    expect(parseIsoDuration('P2W')).toMatchObject({ days: 14 });
    expect(parseIsoDuration('P1Y2M3DT4H5M6S')).toMatchObject({
      years: 1,
      months: 2,
      days: 3,
      hours: 4,
      minutes: 5,
      seconds: 6,
    });
    expect(() => parseIsoDuration('2Y')).toThrow(/not an ISO-8601 duration/);
    expect(() => parseIsoDuration('P')).toThrow();
    expect(() => parseIsoDuration('P1.5Y')).toThrow();
  });

  it('subtracts calendar months like PostgreSQL (month ends clamp)', () => {
    const now = new Date('2024-03-31T10:00:00.000Z');
    expect(subtractDuration(now, parseIsoDuration('P1M')).toISOString()).toBe('2024-02-29T10:00:00.000Z');
    expect(subtractDuration(new Date('2024-02-29T00:00:00Z'), parseIsoDuration('P1Y')).toISOString()).toBe(
      '2023-02-28T00:00:00.000Z',
    );
    expect(subtractDuration(now, parseIsoDuration('P90D')).toISOString()).toBe('2024-01-01T10:00:00.000Z');
    expect(subtractDuration(now, parseIsoDuration('PT36H')).toISOString()).toBe('2024-03-29T22:00:00.000Z');
  });

  it('renders the cutoff with microseconds in UTC', () => {
    expect(computeCutoff(new Date('2026-11-23T14:18:38.123Z'), 'P2Y')).toBe('2024-11-23T14:18:38.123000Z');
  });
});

describe('adaptive batch size', () => {
  const chunking = ChunkingSchema.parse({ targetTransactionMs: 1000, minRows: 100, maxRows: 40_000 });

  it('grows at most 2x when chunks are fast and shrinks at most 2x when slow', () => {
    expect(nextBatchRows(10_000, 100, 10_000, chunking)).toBe(20_000);
    expect(nextBatchRows(10_000, 10_000, 10_000, chunking)).toBe(5_000);
    // Aims at 80 % of the target (800 ms of 1000): a chunk at 640 ms grows by 1.25.
    expect(nextBatchRows(10_000, 640, 10_000, chunking)).toBe(12_500);
    expect(nextBatchRows(10_000, 1_000, 10_000, chunking)).toBe(8_000);
  });

  it('stays within bounds and ignores a short final chunk', () => {
    expect(nextBatchRows(30_000, 10, 30_000, chunking)).toBe(40_000);
    expect(nextBatchRows(150, 60_000, 150, chunking)).toBe(100);
    expect(nextBatchRows(10_000, 5, 12, chunking)).toBe(10_000);
  });

  it('sizes from the time its size would have taken when a chunk held more rows (a predicted purge window)', () => {
    // 20 000 rows in 1 000 ms: 10 000 would have taken 500 ms; aiming at 800 ms grows by 1.6.
    expect(nextBatchRows(10_000, 1_000, 20_000, chunking)).toBe(16_000);
  });

  it("gives a chunk's statement what its transaction has left of the target, less a tenth for ledger and COMMIT", () => {
    expect(statementBudgetMs(chunking, 10_000, 0)).toBe(900);
    expect(statementBudgetMs(chunking, 10_000, 250.4)).toBe(649);
    // Never 0 (statement_timeout 0 would mean no limit): a transaction already past its budget gets 1 ms.
    expect(statementBudgetMs(chunking, 10_000, 2_000)).toBe(1);
    // The reserve is at least 10 ms.
    expect(statementBudgetMs(ChunkingSchema.parse({ targetTransactionMs: 50 }), 10_000, 0)).toBe(40);
    // A chunk at minRows runs whatever it costs (bounded by statementTimeoutMs alone).
    expect(statementBudgetMs(chunking, 100, 0)).toBeUndefined();
    expect(statementBudgetMs(chunking, 101, 0)).toBe(900);
  });
});

describe('chunk memory bound', () => {
  const chunking = ChunkingSchema.parse({ maxChunkBytes: 1_000_000 });

  it('caps rows so a chunk holds at most maxChunkBytes of row text, never fewer than one row', () => {
    expect(capByBytes(10_000, 100, chunking)).toBe(10_000);
    expect(capByBytes(10_000, 1_000, chunking)).toBe(1_000);
    expect(capByBytes(10_000, 5_000_000, chunking)).toBe(1);
    expect(capByBytes(10_000, undefined, chunking)).toBe(10_000);
  });
});
