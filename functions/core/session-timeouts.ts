/**
 * The bound on every statement a connection runs: set at connection level (libpq `options`), so a
 * statement nobody thought to bound (a catalog read, a ledger write, a row-size sample, a migration)
 * still cannot wait on another session's lock, or run, without limit. Statements that need a different
 * bound tighten or loosen it locally (SET LOCAL in a chunk transaction, a VACUUM's own timeout).
 */
import { z } from 'zod';
import { ChunkingSchema } from '../../lib/contracts/config.ts';

export interface SessionTimeouts {
  /** Longest wait for any one lock (`lock_timeout`), table or row. */
  readonly lockTimeoutMs: number;
  /** Longest run of any one statement, waits included (`statement_timeout`). */
  readonly statementTimeoutMs: number;
}

const chunkingDefaults = ChunkingSchema.parse({});

/**
 * Where no policy applies (CLI status, verify, migrate): the policies' own defaults
 * (`chunking.lockTimeoutMs` 2 s, `chunking.statementTimeoutMs` 60 s).
 */
export const DEFAULT_SESSION_TIMEOUTS: SessionTimeouts = {
  lockTimeoutMs: chunkingDefaults.lockTimeoutMs,
  statementTimeoutMs: chunkingDefaults.statementTimeoutMs,
};

/** Shortest statement_timeout a step deadline can impose: below it nothing useful could run anyway. */
const MIN_STATEMENT_TIMEOUT_MS = 1_000;

/**
 * Bounds `timeouts` by the time a step has left, so that no statement outlives the Lambda that sent it.
 * A statement that did would keep its backend waiting after the invocation ended, and a Step Functions
 * retry of the step would then wait on a second backend beside the first.
 */
export function capToDeadline(timeouts: SessionTimeouts, remainingMs: number): SessionTimeouts {
  const statementTimeoutMs = Math.max(
    MIN_STATEMENT_TIMEOUT_MS,
    Math.min(timeouts.statementTimeoutMs, Math.floor(remainingMs)),
  );
  return { lockTimeoutMs: Math.min(timeouts.lockTimeoutMs, statementTimeoutMs), statementTimeoutMs };
}

/** `-c lock_timeout=… -c statement_timeout=…` for a connection's startup options. */
export function timeoutOptions(timeouts: SessionTimeouts): string {
  return [
    `-c lock_timeout=${Math.trunc(timeouts.lockTimeoutMs)}`,
    `-c statement_timeout=${Math.trunc(timeouts.statementTimeoutMs)}`,
  ].join(' ');
}

/**
 * The policy's timeouts from a step input that carries `chunking` (a RecordFailure input is the state of
 * whichever step failed, so it is read loosely); undefined when absent or malformed.
 */
export function timeoutsOfInput(input: unknown): SessionTimeouts | undefined {
  const chunking = (input as { chunking?: unknown } | null | undefined)?.chunking;
  const parsed = PolicyTimeoutsSchema.safeParse(chunking);
  if (!parsed.success) return undefined;
  return { lockTimeoutMs: parsed.data.lockTimeoutMs, statementTimeoutMs: parsed.data.statementTimeoutMs };
}

/** The two bounds of ChunkingSchema, read out of a whole `chunking` object (other fields ignored). */
const PolicyTimeoutsSchema = z.looseObject({
  lockTimeoutMs: ChunkingSchema.shape.lockTimeoutMs.unwrap(),
  statementTimeoutMs: ChunkingSchema.shape.statementTimeoutMs.unwrap(),
});
