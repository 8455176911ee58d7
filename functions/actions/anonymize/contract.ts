/**
 * Anonymize's configuration (pure: imported by the CDK app and `validate` too). Rows older than the retention
 * have their personal columns masked in place by chunked UPDATEs; each column names a strategy
 * (strategies.ts compiles it to SQL against the column's catalog type at Start).
 */
import { z } from 'zod';
import type { ActionContract } from '../../../lib/contracts/action-contract.ts';
import {
  ColumnNameSchema,
  PolicyCommonSchema,
  TimeCutoffSchema,
} from '../../../lib/contracts/policy-base.ts';

const NonNegativeCount = z.int().min(0).max(1000);

/** One column's masking. Every strategy keeps NULL as NULL (except `fixed`, which writes its value). */
export const MaskStrategySchema = z.discriminatedUnion('strategy', [
  /** Set NULL (refused on a NOT NULL column). */
  z.object({ strategy: z.literal('null') }).strict(),
  /** Set one value, given as text and cast to the column's type at Start (a value that does not cast is refused). */
  z.object({ strategy: z.literal('fixed'), value: z.string().max(1000) }).strict(),
  /**
   * Keyed pseudonym: `anon_` + hex of HMAC-SHA-256(key, value) — the same value under the same key gives the
   * same pseudonym in every table, so joins survive. Text-like columns and uuid.
   */
  z.object({ strategy: z.literal('hash') }).strict(),
  /** `anon_<hex>@<domain>`: the local part a keyed pseudonym, the domain kept or replaced. */
  z
    .object({
      strategy: z.literal('email'),
      keepDomain: z.boolean().default(false),
      /** The domain when not kept. */
      domain: z
        .string()
        .regex(/^[a-z0-9.-]+$/i, 'must be a domain name (letters, digits, dots, hyphens)')
        .max(253)
        .default('example.invalid'),
    })
    .strict(),
  /** Keep the first and last characters, `*` for the rest (a value no longer than what is kept is all `*`). */
  z
    .object({
      strategy: z.literal('partial'),
      keepFirst: NonNegativeCount.default(0),
      keepLast: NonNegativeCount.default(0),
      mask: z.string().length(1).default('*'),
    })
    .strict(),
  /** inet/cidr/text addresses: IPv4 to its /24 network, IPv6 to its /48. */
  z.object({ strategy: z.literal('ip') }).strict(),
  /** Dates and timestamps to the first of their month or year; numbers to the lower bound of a `step`-wide bucket. */
  z
    .object({
      strategy: z.literal('generalize'),
      to: z.enum(['month', 'year']).optional(),
      step: z.number().positive().optional(),
    })
    .strict(),
  /** jsonb/json: remove the listed top-level keys. */
  z
    .object({ strategy: z.literal('jsonb'), removeKeys: z.array(z.string().min(1).max(200)).min(1).max(100) })
    .strict(),
  /**
   * Numbers ± up to `amount`, dates and timestamps ± up to `days` days, at random. Not idempotent by value:
   * needs `anonymize.markerColumn`.
   */
  z
    .object({
      strategy: z.literal('noise'),
      amount: z.number().positive().optional(),
      days: z.int().min(1).max(3650).optional(),
    })
    .strict(),
]);

export type MaskStrategy = z.output<typeof MaskStrategySchema>;

export const AnonymizeOptionsSchema = z
  .object({
    /** Column (as in `table`: quote to keep case) → strategy. */
    columns: z
      .record(ColumnNameSchema, MaskStrategySchema)
      .refine((columns) => Object.keys(columns).length > 0, 'name at least one column'),
    /**
     * Optional marker column (timestamptz, timestamp or boolean, nullable, which you add): a row is done when it
     * is set, and each chunk sets it. Without it a row is done when every masked column already holds its
     * masked form (strategies.ts); `noise` needs it.
     */
    markerColumn: ColumnNameSchema.optional(),
  })
  .strict();

export const AnonymizePolicySchema = PolicyCommonSchema.extend({
  ...TimeCutoffSchema.shape,
  action: z.literal('anonymize'),
  anonymize: AnonymizeOptionsSchema,
}).strict();

export type AnonymizePolicy = z.output<typeof AnonymizePolicySchema>;
export type AnonymizeOptions = z.output<typeof AnonymizeOptionsSchema>;

export const anonymizeContract: ActionContract<AnonymizePolicy> = {
  action: 'anonymize',
  rowFate: 'kept',
  // Nothing goes to the bucket: the rows stay, masked.
  storage: () => undefined,
  usesHashKey: (policy) =>
    Object.values(policy.anonymize.columns).some((c) => c.strategy === 'hash' || c.strategy === 'email'),
  configProblems(policy) {
    const problems: Array<{ path: Array<string | number>; message: string }> = [];
    for (const [column, strategy] of Object.entries(policy.anonymize.columns)) {
      const path = ['anonymize', 'columns', column];
      if (strategy.strategy === 'noise') {
        if (policy.anonymize.markerColumn === undefined)
          problems.push({
            path,
            message: 'noise is not idempotent by value: set anonymize.markerColumn so a row is masked once',
          });
        if ((strategy.amount === undefined) === (strategy.days === undefined))
          problems.push({ path, message: 'noise takes exactly one of amount (numbers) or days (dates)' });
      }
      if (strategy.strategy === 'generalize' && (strategy.to === undefined) === (strategy.step === undefined))
        problems.push({ path, message: 'generalize takes exactly one of to (dates) or step (numbers)' });
      if (column === policy.timeColumn)
        problems.push({ path, message: 'the time column decides which rows are due: it cannot be masked' });
      if (column === policy.anonymize.markerColumn)
        problems.push({ path, message: 'the marker column cannot be masked' });
    }
    return problems;
  },
};
