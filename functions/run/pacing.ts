/**
 * Pacing (`chunking.sleepCoefficient`, pt-archiver's `--sleep-coef`): after each chunk, and between partition
 * units, a step rests the coefficient times what that work took, with no transaction open. A short rest is
 * taken in the step, on its idle connections; a long one, or one the step has no time left for, ends the step
 * and the Pause state waits it (whole seconds: no Lambda time, connections and step slot given back).
 */

/** The longest rest (ms) taken inside a step; a few hundred ms of reconnecting cost nothing against longer ones. */
export const REST_IN_STEP_MAX_MS = 10_000;

/** The rest owed after work that took `workMs` (0 when the policy is not paced). */
export function restAfter(coefficient: number, workMs: number): number {
  return Math.round(coefficient * workMs);
}

/**
 * Whether a rest of `restMs` is taken in the step: short enough, and leaving the step the time for another
 * piece of work like the last one (twice its time and a second, as the loops' own budget rule).
 */
export function restsInStep(restMs: number, remainingMs: number, lastWorkMs: number): boolean {
  return restMs < REST_IN_STEP_MAX_MS && remainingMs >= 2 * lastWorkMs + 1000 + restMs;
}

/** The Pause state's share of a rest the step does not take (whole seconds, rounded up). */
export function restSecondsForPause(restMs: number): number {
  return Math.ceil(restMs / 1000);
}
