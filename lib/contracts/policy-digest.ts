/**
 * A short digest of a policy as deployed (policy + resolved chunking). The stack gives the Start function
 * the digest of every deployed policy; Start refuses an execution whose policy is not one of them, so
 * StartExecution rights alone cannot point a run at another table, filter or retention.
 */
import { createHash } from 'node:crypto';
import type { Chunking, Policy } from './config.ts';

/** JSON with object keys sorted at every level: the same value gives the same text whatever its key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** 16 hex characters (64 bits): enough to tell configs apart, small enough for Lambda's 4 KB environment. */
export function policyDigest(policy: Policy, chunking: Chunking): string {
  return createHash('sha256').update(canonicalJson({ policy, chunking })).digest('hex').slice(0, 16);
}

/** Environment variable holding `{ "<policy name>": "<digest>" }` of the deployed policies. */
export const DEPLOYED_POLICIES_ENV = 'LIFECYCLE_DEPLOYED_POLICIES';
