/** The anonymize edge-case tests' shared policy shape and times (rows past the 30-day retention, and newer). */
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { NOW } from './fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

export const HASH_KEY = 'review hash key: not a secret';
/** A `created_at` value past the policy's retention, and one within it (SQL, relative to the fixture's clock). */
export const OLD = `'${NOW.toISOString()}'::timestamptz - interval '400 days'`;
export const NEW = `'${NOW.toISOString()}'::timestamptz - interval '1 day'`;

/** An anonymize policy `review` of `table` by `created_at`, P30D, chunks of 50, with these anonymize options. */
export function anonymizePolicy(
  table: string,
  anonymize: Record<string, unknown>,
  overrides: Partial<PolicyInput> = {},
): PolicyInput {
  return {
    name: 'review',
    action: 'anonymize',
    table,
    timeColumn: 'created_at',
    retention: 'P30D',
    chunking: { initialRows: 50, minRows: 50, maxRows: 50 },
    anonymize,
    ...overrides,
  } as PolicyInput;
}

/** The same with only `columns`. */
export function columnsPolicy(
  table: string,
  columns: Record<string, unknown>,
  overrides: Partial<PolicyInput> = {},
): PolicyInput {
  return anonymizePolicy(table, { columns }, overrides);
}
