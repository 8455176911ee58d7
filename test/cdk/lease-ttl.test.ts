/**
 * The lease TTL (lib/contracts/lease.ts) is computed from the Lambda timeout and the longest Step Functions
 * retry delay. A live run's lease must not expire between two heartbeats, so the synthesized stack may not
 * give a step more time, or a retry a longer delay, than the TTL arithmetic assumes.
 */
import { describe, expect, it } from 'vitest';
import { extractStateMachineDefinitions } from '../../lib/asl/resolve-definition.ts';
import {
  LEASE_TTL_SECONDS,
  leaseTtlSeconds,
  MAX_RETRY_DELAY_SECONDS,
  STEP_TIMEOUT_SECONDS,
} from '../../lib/contracts/lease.ts';
import { fixtureConfig, synthesize } from './synth.ts';

const { template, json } = synthesize(fixtureConfig());

describe('lease TTL against the synthesized stack', () => {
  it('no step Lambda may run longer than the TTL assumes', () => {
    const functions = Object.values(template.findResources('AWS::Lambda::Function')) as Array<{
      Properties: { Timeout?: number; Description?: string };
    }>;
    const steps = functions.filter((f) => f.Properties.Description?.startsWith('pg-lifecycle '));
    expect(steps.length).toBeGreaterThanOrEqual(4);
    for (const step of steps) {
      expect(step.Properties.Timeout, step.Properties.Description).toBeLessThanOrEqual(STEP_TIMEOUT_SECONDS);
    }
  });

  it('every retry of every state waits at most the delay the TTL assumes', () => {
    const delays: number[] = [];
    for (const machine of extractStateMachineDefinitions(json)) {
      for (const state of Object.values(machine.definition.States) as Array<{
        Retry?: Array<{ IntervalSeconds?: number; MaxDelaySeconds?: number }>;
      }>) {
        for (const retry of state.Retry ?? []) {
          // Without MaxDelaySeconds a backoff grows without bound.
          expect(retry.MaxDelaySeconds).toBeDefined();
          delays.push(retry.MaxDelaySeconds ?? Number.POSITIVE_INFINITY);
        }
      }
    }
    expect(delays.length).toBeGreaterThan(0);
    expect(Math.max(...delays)).toBeLessThanOrEqual(MAX_RETRY_DELAY_SECONDS);
  });

  it('is minutes, not the 20 it used to be, and a renewal before a Pause adds the wait', () => {
    expect(LEASE_TTL_SECONDS).toBe(420);
    expect(leaseTtlSeconds(90)).toBe(510);
  });
});
