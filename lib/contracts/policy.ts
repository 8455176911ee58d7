/**
 * The policy union and the registry of action contracts: one entry per action. Adding an action is its
 * folder `functions/actions/<action>/` (contract.ts + the module in index.ts) and one line here and in
 * `functions/actions/registry.ts`.
 */
import { z } from 'zod';
import {
  type AnonymizePolicy,
  AnonymizePolicySchema,
  anonymizeContract,
} from '../../functions/actions/anonymize/contract.ts';
import {
  type ArchivePolicy,
  ArchivePolicySchema,
  archiveContract,
} from '../../functions/actions/archive/contract.ts';
import {
  type BackupPolicy,
  BackupPolicySchema,
  backupContract,
} from '../../functions/actions/backup/contract.ts';
import {
  type ImportPolicy,
  ImportPolicySchema,
  importContract,
} from '../../functions/actions/import/contract.ts';
import {
  type MaintainPolicy,
  MaintainPolicySchema,
  maintainContract,
} from '../../functions/actions/maintain/contract.ts';
import {
  type PurgePolicy,
  PurgePolicySchema,
  purgeContract,
} from '../../functions/actions/purge/contract.ts';
import {
  type SubjectsPolicy,
  SubjectsPolicySchema,
  subjectsContract,
} from '../../functions/actions/subjects/contract.ts';
import type { ActionContract } from './action-contract.ts';

export const PolicySchema = z.discriminatedUnion('action', [
  ArchivePolicySchema,
  PurgePolicySchema,
  BackupPolicySchema,
  AnonymizePolicySchema,
  SubjectsPolicySchema,
  ImportPolicySchema,
  MaintainPolicySchema,
]);

export type Policy = z.output<typeof PolicySchema>;
export type PolicyAction = Policy['action'];
/** The policy type of one action. */
export type PolicyOf<A extends PolicyAction> = Extract<Policy, { action: A }>;

export const actionContracts: { readonly [A in PolicyAction]: ActionContract<PolicyOf<A>> } = {
  archive: archiveContract,
  purge: purgeContract,
  backup: backupContract,
  anonymize: anonymizeContract,
  subjects: subjectsContract,
  import: importContract,
  maintain: maintainContract,
};

/** Policies of one table's rows by time (archive, purge, anonymize): a table, a time column and a retention. */
export type TimeCutoffPolicy = Extract<Policy, { timeColumn: string; retention: string }>;

export function isTimeCutoffPolicy(policy: Policy): policy is TimeCutoffPolicy {
  return 'timeColumn' in policy;
}

/** What a policy works on, for descriptions and logs: its table, or a backup's table patterns. */
/** Workers of a run of this policy: its `parallelism` (archive and purge have one), else 1. */
export function parallelismOf(policy: Policy): number {
  return 'parallelism' in policy ? (policy.parallelism ?? 1) : 1;
}

export function policySubject(policy: Policy): string {
  if (isTimeCutoffPolicy(policy)) return policy.table;
  return contractOf(policy).tablesOf?.(policy) ?? policy.action;
}

/** The contract of a policy's action. */
export function contractOf<P extends Policy>(policy: P): ActionContract<P> {
  return actionContracts[policy.action] as unknown as ActionContract<P>;
}

export type {
  AnonymizePolicy,
  ArchivePolicy,
  BackupPolicy,
  ImportPolicy,
  MaintainPolicy,
  PurgePolicy,
  SubjectsPolicy,
};
