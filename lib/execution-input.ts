/**
 * The execution input of a run, built from the validated config. The schedule target (CDK), the CLI
 * `start` command and the local runner all call this, so every path starts a run with the same payload.
 */

import type { z } from 'zod';
import { contractOf, type LifecycleConfig, resolveChunking } from './contracts/config.ts';
import { type ExecutionInput, ExecutionInputSchema, type TriggerSchema } from './contracts/payloads.ts';

/** The policy name is not in the config. */
export class UnknownPolicyError extends Error {
  public override readonly name = 'UnknownPolicyError';
}

/**
 * The `ExecutionInput` for one policy: the policy itself (defaults applied) and its resolved chunking.
 * `options.force` lets a run go ahead although its chunk query scans the whole table (CLI `--force`).
 *
 * @throws UnknownPolicyError when no policy has that name
 */
export function buildExecutionInput(
  config: LifecycleConfig,
  policyName: string,
  trigger: z.output<typeof TriggerSchema>,
  dryRun: boolean,
  options: { readonly force?: boolean } = {},
): ExecutionInput {
  const policy = config.policies.find((candidate) => candidate.name === policyName);
  if (!policy) {
    const known = config.policies.map((candidate) => candidate.name).join(', ');
    throw new UnknownPolicyError(`no policy named "${policyName}" (known: ${known})`);
  }
  const extras = contractOf(policy).executionExtras?.(policy, (name) => policyNamed(config, name)) ?? {};
  // Parsing again guarantees the schedule never carries a payload the start step would reject.
  return ExecutionInputSchema.parse({
    policy,
    chunking: resolveChunking(config, policy),
    trigger,
    dryRun,
    // Only a person sets force (CLI --force); schedules never do.
    ...(options.force ? { force: true } : {}),
    ...extras,
  });
}

function policyNamed(config: LifecycleConfig, name: string): LifecycleConfig['policies'][number] {
  const policy = config.policies.find((candidate) => candidate.name === name);
  if (!policy) throw new UnknownPolicyError(`no policy named "${name}" (named by another policy)`);
  return policy;
}
