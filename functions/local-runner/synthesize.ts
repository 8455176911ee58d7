/**
 * The state machine definitions exactly as `cdk synth` produces them, for local execution: the app is built
 * in-process (bundling and nag off, which does not change the definitions), the template's DefinitionStrings
 * are resolved with fake ARNs and parsed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LifecycleConfig, Policy } from '../../lib/contracts/config.ts';
import { StateNames } from '../../lib/contracts/payloads.ts';
import { contractOf } from '../../lib/contracts/policy.ts';
import { DrillStateNames } from '../../lib/contracts/restore-drill-payloads.ts';

export type AslDefinition = {
  StartAt: string;
  States: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
};

const cache = new Map<string, AslDefinition[]>();

/**
 * Which shape of the chunk-loop machine a policy gets: a backup policy with rdsSnapshot has the snapshot
 * stage after Finish (and its copy states with copyToRegion); every other policy's machine is the same.
 */
function machineShape(policy: Policy): string {
  const snapshot = contractOf(policy).rdsSnapshot?.(policy);
  return snapshot === undefined ? 'chunk-loop' : `rds-snapshot${snapshot.copyToRegion ? '+copy' : ''}`;
}

/** Every state machine definition of the stack with only `policies[enabledIndex]` enabled. */
async function synthesizeDefinitions(
  config: LifecycleConfig,
  enabledIndex: number,
): Promise<AslDefinition[]> {
  const policies = config.policies.map((policy, index) => ({ ...policy, enabled: index === enabledIndex }));
  const forSynth: LifecycleConfig = { ...config, policies, ...(config.database ? {} : { sandbox: true }) };
  const cacheKey = JSON.stringify(forSynth);
  const cached = cache.get(cacheKey);
  if (cached) return cached;

  // Imported lazily: aws-cdk-lib takes a couple of seconds to load and only local runs need it.
  const { buildApp } = await import('../../lib/app.ts');
  const { extractStateMachineDefinitions } = await import('../../lib/asl/resolve-definition.ts');
  const outdir = mkdtempSync(join(tmpdir(), 'pg-lifecycle-synth-'));
  try {
    const { app, stack } = buildApp(forSynth, { bundling: false, nag: false, validation: false, outdir });
    const template = app.synth().getStackByName(stack.stackName).template as object;
    const definitions = extractStateMachineDefinitions(template).map(
      (resolved) => resolved.definition as unknown as AslDefinition,
    );
    cache.set(cacheKey, definitions);
    return definitions;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

function only(definitions: AslDefinition[], startAt: string, what: string): AslDefinition {
  const matching = definitions.filter((definition) => definition.StartAt === startAt);
  if (matching.length !== 1)
    throw new Error(`expected one ${what} state machine in the stack, found ${matching.length}`);
  return matching[0] as AslDefinition;
}

/**
 * Every policy has its own state machine in the stack, all with the same definition but for the functions'
 * ARNs (policies travel in the input; the local runner binds Task states by name) and, for a backup policy
 * with rdsSnapshot, the snapshot stage. So one synth per shape and process is enough: the first policy of the
 * same shape as `policyName` (the first policy when none is named) is deployed in it, enabled (a disabled
 * policy gets no machine). A config without `database` is synthesized in sandbox mode: only the state machine
 * is used here.
 */
export async function synthesizeDefinition(
  config: LifecycleConfig,
  policyName?: string,
): Promise<AslDefinition> {
  const target = config.policies.find((policy) => policy.name === policyName);
  const index = target
    ? config.policies.findIndex((policy) => machineShape(policy) === machineShape(target))
    : 0;
  return only(await synthesizeDefinitions(config, index), StateNames.start, 'chunk-loop');
}

/** The restore-drill machine of a backup policy with `backup.drill` (the same for every such policy). */
export async function synthesizeDrillDefinition(
  config: LifecycleConfig,
  policyName: string,
): Promise<AslDefinition> {
  const index = config.policies.findIndex((policy) => policy.name === policyName);
  const policy = config.policies[index];
  if (!policy || !contractOf(policy).restoreDrill?.(policy))
    throw new Error(`policy ${policyName} has no backup.drill`);
  return only(await synthesizeDefinitions(config, index), DrillStateNames.drill, 'restore-drill');
}
