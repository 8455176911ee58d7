/**
 * The state machine definition exactly as `cdk synth` produces it, for local execution: the app is
 * built in-process (bundling and nag off, which does not change the definition), the template's
 * DefinitionString is resolved with fake ARNs and parsed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';

export type AslDefinition = {
  StartAt: string;
  States: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
};

const cache = new Map<string, AslDefinition>();

/**
 * Every policy has its own state machine in the stack, all with the same definition but for the functions'
 * ARNs (policies travel in the input; the local runner binds Task states by name), so one policy's machine
 * serves every local run and one synth per process is enough: only the first policy is deployed in it,
 * enabled (a disabled policy gets no machine). A config without `database` is synthesized in sandbox mode:
 * only the state machine is used here.
 */
export async function synthesizeDefinition(config: LifecycleConfig): Promise<AslDefinition> {
  const policies = config.policies.map((policy, index) => ({ ...policy, enabled: index === 0 }));
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
    const definitions = extractStateMachineDefinitions(template);
    if (definitions.length !== 1)
      throw new Error(`expected one state machine in the stack, found ${definitions.length}`);
    const definition = definitions[0]?.definition as unknown as AslDefinition;
    cache.set(cacheKey, definition);
    return definition;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
