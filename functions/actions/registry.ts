/**
 * The action modules, one per action of the policy union: the generic steps find a policy's module here.
 * Adding an action: its folder `functions/actions/<action>/` (contract.ts, index.ts) and one line here and
 * in `lib/contracts/policy.ts`.
 */
import type { Policy, PolicyAction, PolicyOf } from '../../lib/contracts/policy.ts';
import type { ActionModule } from './action-module.ts';
import { anonymizeModule } from './anonymize/index.ts';
import { archiveModule } from './archive/index.ts';
import { backupModule } from './backup/index.ts';
import { importModule } from './import/index.ts';
import { maintainModule } from './maintain/index.ts';
import { purgeModule } from './purge/index.ts';
import { subjectsModule } from './subjects/index.ts';

export type ActionRegistry = { readonly [A in PolicyAction]: ActionModule<PolicyOf<A>> };

export const actionModules: ActionRegistry = {
  archive: archiveModule,
  purge: purgeModule,
  backup: backupModule,
  anonymize: anonymizeModule,
  subjects: subjectsModule,
  import: importModule,
  maintain: maintainModule,
};

/** The module of a policy's action (`registry` lets tests run the generic steps with a fake action). */
export function moduleFor<P extends Policy>(
  policy: P,
  registry: ActionRegistry = actionModules,
): ActionModule<P> {
  return registry[policy.action] as unknown as ActionModule<P>;
}

/** The module of an action by name (a ledger row's action), or undefined for one no module handles. */
export function moduleNamed(
  action: string,
  registry: ActionRegistry = actionModules,
): ActionModule | undefined {
  return Object.hasOwn(registry, action) ? (registry[action as PolicyAction] as ActionModule) : undefined;
}
