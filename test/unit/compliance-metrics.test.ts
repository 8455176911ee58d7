/**
 * The compliance check's metrics, without AWS: the report's counts become OverduePolicies, PolicyOverdue per
 * policy and the subject request totals; each goes out as its own EMF document with exactly the dimensions the
 * alarms name (service, stack, and policy for PolicyOverdue); the policy list the stack passes is validated
 * on read; and no subject key, request id or row reaches a metric or the log.
 */
import { Metrics } from '@aws-lambda-powertools/metrics';
import type pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { listMigrations } from '../../functions/adapters/migrations.ts';
import { runComplianceCheck } from '../../functions/compliance.ts';
import {
  type ComplianceReport,
  isOverdue,
  type OverdueFacts,
  type PolicyCompliance,
} from '../../functions/reports/compliance.ts';
import {
  type ComplianceDatum,
  complianceMetricData,
  publishComplianceMetrics,
  type SingleMetricSink,
} from '../../functions/reports/compliance-metrics.ts';
import {
  COMPLIANCE_POLICIES_ENV,
  CompliancePoliciesError,
  decodeCompliancePolicies,
  encodeCompliancePolicies,
} from '../../lib/contracts/compliance-check.ts';

const NOW = new Date('2026-11-23T12:00:00.000Z');

function entry(policy: string, overrides: Partial<PolicyCompliance> = {}): PolicyCompliance {
  return {
    policy,
    action: 'purge',
    enabled: true,
    schedule: { expression: 'rate(1 hour)', timezone: 'UTC', periodSeconds: 3600 },
    lastSuccess: null,
    firstSeen: null,
    overdue: false,
    ...overrides,
  };
}

function report(policies: PolicyCompliance[]): ComplianceReport {
  return { generatedAt: NOW.toISOString(), database: 'app', policies, attention: false };
}

/** A Metrics stand-in recording each single metric: its dimensions and its one value. */
function recordingSink() {
  const emitted: Array<{ name: string; unit: string; value: number; dimensions: Record<string, string> }> =
    [];
  const sink: SingleMetricSink = {
    singleMetric() {
      const dimensions: Record<string, string> = {};
      return {
        addDimension: (name, value) => {
          dimensions[name] = value;
        },
        addMetric: (name, unit, value) => {
          emitted.push({ name, unit, value, dimensions: { ...dimensions } });
        },
      };
    },
  };
  return { sink, emitted };
}

const datumValue = (data: readonly ComplianceDatum[], name: string, policy?: string) =>
  data.find((d) => d.name === name && (policy === undefined || d.dimensions.policy === policy))?.value;

describe('compliance metrics of a report', () => {
  it('count overdue policies, flag each policy 0/1 and sum the requests of every subjects policy', () => {
    // Prepare
    const data = complianceMetricData(
      report([
        entry('orders-archive', { action: 'archive', overdue: true }),
        entry('sessions-purge', { lastSuccess: '2026-11-23T11:30:00.000000Z' }),
        entry('manual-purge', { schedule: { expression: null, timezone: 'UTC', periodSeconds: null } }),
        entry('gdpr', {
          action: 'subjects',
          overdue: true,
          requests: { pending: 3, overdue: 2, failed: 1, completedRecently: 40 },
        }),
        entry('ccpa', {
          action: 'subjects',
          requests: { pending: 1, overdue: 0, failed: 4, completedRecently: 7 },
        }),
      ]),
    );

    // Assess
    expect(data).toEqual([
      { name: 'OverduePolicies', value: 2, dimensions: {} },
      { name: 'PolicyOverdue', value: 1, dimensions: { policy: 'orders-archive' } },
      { name: 'PolicyOverdue', value: 0, dimensions: { policy: 'sessions-purge' } },
      { name: 'PolicyOverdue', value: 0, dimensions: { policy: 'manual-purge' } },
      { name: 'PolicyOverdue', value: 1, dimensions: { policy: 'gdpr' } },
      { name: 'PolicyOverdue', value: 0, dimensions: { policy: 'ccpa' } },
      { name: 'SubjectRequestsOverdue', value: 2, dimensions: {} },
      { name: 'SubjectRequestsFailed', value: 5, dimensions: {} },
      { name: 'SubjectRequestsPending', value: 4, dimensions: {} },
    ]);
  });

  it('publish real zeros when nothing is overdue and no policy has requests (the alarms read 0, not no data)', () => {
    // Act
    const data = complianceMetricData(report([entry('sessions-purge')]));

    // Assess
    expect(datumValue(data, 'OverduePolicies')).toBe(0);
    expect(datumValue(data, 'PolicyOverdue', 'sessions-purge')).toBe(0);
    expect(datumValue(data, 'SubjectRequestsOverdue')).toBe(0);
    expect(datumValue(data, 'SubjectRequestsFailed')).toBe(0);
    expect(datumValue(data, 'SubjectRequestsPending')).toBe(0);
  });

  it('emit each metric alone with the stack dimension, PolicyOverdue with its policy too', () => {
    // Prepare
    const { sink, emitted } = recordingSink();
    const data = complianceMetricData(report([entry('orders-archive', { overdue: true })]));

    // Act
    publishComplianceMetrics(sink, 'PgLifecycle', data);

    // Assess
    expect(emitted).toEqual([
      { name: 'OverduePolicies', unit: 'Count', value: 1, dimensions: { stack: 'PgLifecycle' } },
      {
        name: 'PolicyOverdue',
        unit: 'Count',
        value: 1,
        dimensions: { stack: 'PgLifecycle', policy: 'orders-archive' },
      },
      { name: 'SubjectRequestsOverdue', unit: 'Count', value: 0, dimensions: { stack: 'PgLifecycle' } },
      { name: 'SubjectRequestsFailed', unit: 'Count', value: 0, dimensions: { stack: 'PgLifecycle' } },
      { name: 'SubjectRequestsPending', unit: 'Count', value: 0, dimensions: { stack: 'PgLifecycle' } },
    ]);
  });
});

describe('compliance metrics through Powertools', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
  });

  it('become EMF documents in PgLifecycle with exactly the dimensions the alarms name', () => {
    // Prepare: metrics are off in tests (vitest.config.ts); this instance writes, to a captured stdout.
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const metrics = new Metrics({ namespace: 'PgLifecycle', serviceName: 'pg-lifecycle' });
    const data = complianceMetricData(report([entry('orders-archive', { overdue: true })]));

    // Act
    publishComplianceMetrics(metrics, 'PgLifecycle', data);

    // Assess
    const documents = lines
      .flatMap((text) => text.split('\n'))
      .filter((line) => line.startsWith('{'))
      .map(
        (line) =>
          JSON.parse(line) as {
            _aws: {
              CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: unknown[] }>;
            };
          } & Record<string, unknown>,
      );
    expect(documents).toHaveLength(data.length);
    const overdue = documents.find((d) => 'OverduePolicies' in d);
    expect(overdue?._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: 'PgLifecycle',
        Dimensions: [['service', 'stack']],
        Metrics: [{ Name: 'OverduePolicies', Unit: 'Count' }],
      },
    ]);
    expect(overdue).toMatchObject({ service: 'pg-lifecycle', stack: 'PgLifecycle', OverduePolicies: 1 });
    const flag = documents.find((d) => 'PolicyOverdue' in d);
    expect(flag?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([['service', 'stack', 'policy']]);
    expect(flag).toMatchObject({ policy: 'orders-archive', PolicyOverdue: 1 });
  });
});

describe('the policy list the stack passes', () => {
  it('round-trips, UTC left out of the text', () => {
    const policies = [
      { name: 'orders-archive', action: 'archive' as const, schedule: 'cron(0 3 * * ? *)', timezone: 'UTC' },
      { name: 'gdpr', action: 'subjects' as const, timezone: 'Europe/Paris' },
    ];
    const text = encodeCompliancePolicies(policies);
    expect(text).not.toContain('"UTC"');
    expect(decodeCompliancePolicies(text)).toEqual(policies);
  });

  it.each([
    [undefined, /is not set/],
    ['{nope', /is not valid JSON/],
    ['{}', /is invalid: \(list\): /],
    ['[{"name":"x","action":"drop"}]', /is invalid: 0\.action: /],
    ['[{"name":"x","action":"purge","schedule":"cron(99 99 * * ? *)"}]', /is invalid: 0\.schedule: /],
    ['[{"name":"x","action":"purge","table":"users"}]', /is invalid: 0: /],
    ['[{"name":"x","action":"purge"},{"name":"x","action":"archive"}]', /duplicate policy "x"/],
  ])('refuses %s', (text, message) => {
    expect(() => decodeCompliancePolicies(text)).toThrow(CompliancePoliciesError);
    expect(() => decodeCompliancePolicies(text)).toThrow(message);
    expect(() => decodeCompliancePolicies(text)).toThrow(new RegExp(`^${COMPLIANCE_POLICIES_ENV} `));
  });
});

/**
 * A database stand-in answering the check's ledger queries (it reads nothing else): a ledger already migrated
 * (every migration of sql/ applied), first sightings (recorded ones come back from the INSERT), runs and
 * subject request counts as the SQL would return them, text values included.
 */
function fakeLedger(answers: {
  runs: Array<{ policy: string; finished: string | null; started: string | null }>;
  firstSeen?: Array<{ policy: string; first_seen: string }>;
  requests?: Array<{ policy: string; pending: string; overdue: string; failed: string; completed: string }>;
}) {
  const queries: string[] = [];
  const inserted: string[][] = [];
  let ended = false;
  const sightings = [...(answers.firstSeen ?? [])];
  const client = {
    query: async (text: string, values?: unknown[]) => {
      queries.push(text);
      if (/^(BEGIN|COMMIT|ROLLBACK)$/.test(text) || text.includes('pg_advisory_xact_lock'))
        return { rows: [] };
      if (text.includes("to_regnamespace('lifecycle')")) return { rows: [{ schema: 't', tracked: 't' }] };
      if (text.includes('FROM lifecycle.schema_migrations'))
        return { rows: listMigrations().map((m) => ({ version: m.version })) };
      if (text.includes('INSERT INTO lifecycle.policy_first_seen')) {
        const names = (values?.[0] ?? []) as string[];
        inserted.push(names);
        const fresh = names.filter((name) => !sightings.some((s) => s.policy === name));
        for (const policy of fresh) sightings.push({ policy, first_seen: NOW.toISOString() });
        return { rows: fresh.map((policy) => ({ policy })) };
      }
      if (text.includes("to_regclass('lifecycle.policy_first_seen')")) return { rows: [{ ok: 't' }] };
      if (text.includes('FROM lifecycle.policy_first_seen')) return { rows: sightings };
      if (text.includes('current_database()')) return { rows: [{ database: 'app' }] };
      if (text.includes('FROM lifecycle.runs')) return { rows: answers.runs };
      if (text.includes("to_regclass('lifecycle.subject_requests')"))
        return { rows: [{ ok: answers.requests ? 'true' : 'false' }] };
      if (text.includes('FROM lifecycle.subject_requests')) return { rows: answers.requests ?? [] };
      throw new Error(`unexpected query: ${text}`);
    },
    end: async () => {
      ended = true;
    },
  };
  return { client: client as unknown as pg.Client, queries, inserted, ended: () => ended };
}

describe('the compliance check (handler core)', () => {
  it('builds the report from the ledger for the deployed policies, publishes it, logs counts only', async () => {
    // Prepare: sessions-purge (hourly) last succeeded 3 h ago: overdue; orders-archive (daily) 1 h ago.
    const ledger = fakeLedger({
      runs: [
        {
          policy: 'sessions-purge',
          finished: '2026-11-23T09:00:00.000000Z',
          started: '2026-01-01T00:00:00Z',
        },
        {
          policy: 'orders-archive',
          finished: '2026-11-23T11:00:00.000000Z',
          started: '2026-01-01T00:00:00Z',
        },
      ],
      firstSeen: [{ policy: 'orders-archive', first_seen: '2026-10-01T00:00:00.000000Z' }],
      requests: [{ policy: 'gdpr', pending: '5', overdue: '2', failed: '1', completed: '9' }],
    });
    const { sink, emitted } = recordingSink();
    const logged: unknown[] = [];

    // Act
    const result = await runComplianceCheck({
      connect: async () => ledger.client,
      policies: decodeCompliancePolicies(
        JSON.stringify([
          { name: 'orders-archive', action: 'archive', schedule: 'cron(0 3 * * ? *)' },
          { name: 'sessions-purge', action: 'purge', schedule: 'rate(1 hour)' },
          { name: 'gdpr', action: 'subjects' },
        ]),
      ),
      stack: 'PgLifecycle',
      metrics: sink,
      log: {
        info: (message, fields) => logged.push([message, fields]),
        warn: (message, fields) => logged.push([message, fields]),
        error: (message, fields) => logged.push([message, fields]),
      },
      now: () => NOW,
    });

    // Assess
    expect(result).toEqual({
      policies: 3,
      overduePolicies: ['sessions-purge'],
      subjectRequests: { overdue: 2, failed: 1, pending: 5 },
      firstSeen: ['sessions-purge'],
    });
    // Every scheduled policy is offered (the ledger keeps the first sighting); gdpr has no schedule.
    expect(ledger.inserted).toEqual([['orders-archive', 'sessions-purge']]);
    expect(emitted.map((m) => [m.name, m.dimensions.policy ?? '', m.value])).toEqual([
      ['OverduePolicies', '', 1],
      ['PolicyOverdue', 'orders-archive', 0],
      ['PolicyOverdue', 'sessions-purge', 1],
      ['PolicyOverdue', 'gdpr', 0],
      ['SubjectRequestsOverdue', '', 2],
      ['SubjectRequestsFailed', '', 1],
      ['SubjectRequestsPending', '', 5],
      // The dashboard's last-success age, per policy that has a success (gdpr has none).
      ['SecondsSinceLastSuccess', 'orders-archive', 3600],
      ['SecondsSinceLastSuccess', 'sessions-purge', 10_800],
    ]);
    expect(emitted.every((m) => m.dimensions.stack === 'PgLifecycle')).toBe(true);
    expect(logged).toEqual([['compliance check', result]]);
    // The ledger only: no policy table was counted.
    expect(ledger.queries.filter((q) => /public\.|\borders\b|\bsessions\b/.test(q))).toEqual([]);
    expect(
      ledger.queries
        .filter((q) => /^\s*(SELECT|INSERT)/.test(q))
        .every((q) => /lifecycle|current_database/.test(q)),
    ).toBe(true);
    expect(ledger.ended()).toBe(true);
  });

  it('publishes nothing when the ledger cannot be read, and still ends the connection', async () => {
    // Prepare
    const ledger = fakeLedger({ runs: [] });
    // The first statement (the migrations' BEGIN) already fails.
    const failing = Object.assign(ledger.client, {
      query: async () => {
        throw new Error('relation "lifecycle.runs" does not exist');
      },
    });
    const { sink, emitted } = recordingSink();

    // Act / Assess: no metric at all, so the overdue alarm sees missing data (breaching).
    await expect(
      runComplianceCheck({
        connect: async () => failing,
        policies: [],
        stack: 'PgLifecycle',
        metrics: sink,
        log: { info: () => undefined, warn: () => undefined, error: () => undefined },
        now: () => NOW,
      }),
    ).rejects.toThrow(/lifecycle\.runs/);
    expect(ledger.inserted).toEqual([]);
    expect(emitted).toEqual([]);
    expect(ledger.ended()).toBe(true);
  });
});

describe('when a policy is overdue', () => {
  const HOUR = 3600;
  const ago = (hours: number) => new Date(NOW.getTime() - hours * HOUR * 1000).toISOString();
  const facts = (overrides: Partial<OverdueFacts>): OverdueFacts => ({
    enabled: true,
    periodSeconds: 24 * HOUR,
    lastSuccess: null,
    firstSeen: null,
    firstRunStarted: null,
    now: NOW,
    ...overrides,
  });

  it.each<[string, Partial<OverdueFacts>, boolean]>([
    ['a success within two periods', { lastSuccess: ago(47) }, false],
    ['a success older than two periods', { lastSuccess: ago(49) }, true],
    [
      'a success long ago, however recently first seen',
      { lastSuccess: ago(24 * 30), firstSeen: ago(1) },
      true,
    ],
    ['never succeeded, never seen (the rule before sql/014)', {}, true],
    ['never succeeded, first seen just now', { firstSeen: ago(0) }, false],
    ['never succeeded, first seen within two periods', { firstSeen: ago(47) }, false],
    ['never succeeded, first seen three periods ago', { firstSeen: ago(72) }, true],
    [
      'never succeeded, first seen now, but failing since its first run three periods ago',
      { firstSeen: ago(0), firstRunStarted: ago(72) },
      true,
    ],
    [
      'never succeeded, first seen now, first run started an hour ago',
      { firstSeen: ago(0), firstRunStarted: ago(1) },
      false,
    ],
    [
      'never succeeded, first seen three periods ago, first run later (reckoned from the earlier)',
      { firstSeen: ago(72), firstRunStarted: ago(1) },
      true,
    ],
    ['a first run alone (never seen) does not grant the grace', { firstRunStarted: ago(1) }, true],
    ['disabled', { enabled: false }, false],
    ['manual or unknown period', { periodSeconds: null }, false],
  ])('%s', (_name, overrides, expected) => {
    expect(isOverdue(facts(overrides))).toBe(expected);
  });
});
