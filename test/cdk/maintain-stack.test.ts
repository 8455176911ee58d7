/**
 * A maintain policy in the stack: its own state machine and a schedule, and nothing of the bucket (it works in
 * the database only); the config refuses what would take an ACCESS EXCLUSIVE lock, naming the field.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../lib/config-file.ts';
import { actionsOf, roleStatements, STEPS, sandboxConfig, synthesize } from './synth.ts';

const maintainPolicy = {
  name: 'nightly-maintenance',
  action: 'maintain',
  schedule: 'cron(0 3 * * ? *)',
  maintain: {
    tables: ['public.*'],
    analyzeAfterDays: 7,
    maxTableBloatPercent: 20,
    maxIndexBloatPercent: 30,
    reindex: 'concurrently',
    timeoutMs: 600000,
  },
};

function configWith(policy: Record<string, unknown>) {
  return parseConfig({ sandbox: true, policies: [...sandboxConfig().policies, policy] }, 'maintain config');
}

describe('a maintain policy in the stack', () => {
  it('synthesizes its state machine and schedule and grants it nothing in the bucket', () => {
    // Act
    const { template } = synthesize(configWith(maintainPolicy));

    // Assess
    for (const step of STEPS) {
      const s3 = roleStatements(template, 'nightly-maintenance', step)
        .flatMap(actionsOf)
        .filter((a) => a.startsWith('s3:'));
      expect(s3, step).toEqual([]);
    }
    const machines = Object.values(template.findResources('AWS::StepFunctions::StateMachine')).map((m) =>
      JSON.stringify(m.Properties.StateMachineName),
    );
    expect(machines.some((name) => name.includes('nightly-maintenance'))).toBe(true);
    const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule')).map((s) =>
      JSON.stringify(s.Properties),
    );
    expect(schedules.some((s) => s.includes('cron(0 3 * * ? *)') && s.includes('nightly-maintenance'))).toBe(
      true,
    );
  });

  it.each([
    [{ reindex: 'blocking' }, /maintain\.reindex: must be "concurrently" or "skip"/],
    [{ vacuumFull: true }, /maintain\.vacuumFull: VACUUM FULL is refused/],
    [{ maxTableBloatPercent: 120 }, /maintain\.maxTableBloatPercent/],
    [{ tables: ['lifecycle.*'] }, /no maintenance runs there/],
  ])('refuses %j', (options, message) => {
    const policy = { ...maintainPolicy, maintain: { ...maintainPolicy.maintain, ...options } };
    expect(() => configWith(policy)).toThrow(ConfigError);
    expect(() => configWith(policy)).toThrow(message);
  });
});
