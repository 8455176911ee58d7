/**
 * The subjects policy's configuration (pure: imported by the CDK app and `validate` too): which tables hold a
 * data subject's rows, by which key column, and what erasure does to each (delete the rows, or mask columns as
 * an anonymize policy would). Requests (`lifecycle.subject_requests`) name a subject by that key; a run
 * processes the pending ones, each in one transaction.
 */
import { z } from 'zod';
import type { ActionContract } from '../../../lib/contracts/action-contract.ts';
import {
  ColumnNameSchema,
  PolicyCommonSchema,
  QualifiedTableSchema,
} from '../../../lib/contracts/policy-base.ts';
import { AnonymizeOptionsSchema } from '../anonymize/contract.ts';

export const SubjectTableSchema = z
  .object({
    table: QualifiedTableSchema,
    /** The column holding the subject's key (compared as text cast to the column's type). */
    keyColumn: ColumnNameSchema,
    /** What erasure does to the subject's rows here; export reads them either way. */
    action: z.enum(['delete', 'anonymize']),
    /** With `anonymize`: the columns and strategies (as an anonymize policy's; no marker column). */
    anonymize: AnonymizeOptionsSchema.omit({ markerColumn: true }).strict().optional(),
  })
  .strict();

export const SubjectsOptionsSchema = z
  .object({
    /** What the key is called in requests and reports (`user_id`). */
    keyName: z.string().min(1).max(63),
    /** A request is overdue this many days after it was made (GDPR: one month). */
    dueDays: z.int().min(1).max(365).default(30),
    tables: z.array(SubjectTableSchema).min(1, 'name at least one table').max(100),
  })
  .strict();

export const SubjectsPolicySchema = PolicyCommonSchema.omit({
  table: true,
  filter: true,
  filterFunctions: true,
})
  .extend({
    action: z.literal('subjects'),
    subjects: SubjectsOptionsSchema,
  })
  .strict();

export type SubjectsPolicy = z.output<typeof SubjectsPolicySchema>;
export type SubjectTable = z.output<typeof SubjectTableSchema>;

/** Where a policy's exports go: `subjects/<policy>/<requestId>/export.json`. */
export function subjectsPrefix(policy: string): string {
  return `subjects/${policy}/`;
}

export const subjectsContract: ActionContract<SubjectsPolicy> = {
  action: 'subjects',
  // Erasure deletes the subject's rows and copies them nowhere (that is the point). Not a time-cutoff
  // policy, so the archive-before-purge rule does not apply to it.
  rowFate: 'deleted',
  // Every erasure records the keyed hashes a restore finds the subject by.
  usesHashKey: () => true,
  tablesOf: (policy) => policy.subjects.tables.map((t) => t.table).join(', '),
  rewritesArchivesOf: (policy) => policy.subjects.tables.map((t) => t.table),
  storage: (policy) => ({
    prefix: subjectsPrefix(policy.name),
    tiers: { transitions: [] },
    objectLock: false,
    glueTable: false,
  }),
  configProblems(policy) {
    return policy.subjects.tables.flatMap((t, index) => {
      const path = ['subjects', 'tables', index];
      if (t.action === 'anonymize' && !t.anonymize)
        return [{ path, message: 'action anonymize needs anonymize.columns' }];
      if (t.action === 'delete' && t.anonymize)
        return [{ path, message: 'anonymize is only for action anonymize' }];
      const noise = Object.values(t.anonymize?.columns ?? {}).some((s) => s.strategy === 'noise');
      if (noise)
        return [{ path, message: 'noise needs a marker column, which subject erasure does not use' }];
      return [];
    });
  },
};
