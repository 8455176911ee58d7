import { describe, expect, it } from 'vitest';
import { LifecycleConfigSchema, resolveChunking } from '../../lib/contracts/config.ts';

const validPolicy = {
  name: 'counting-results',
  table: 'public.counting_results',
  action: 'archive',
  timeColumn: 'created_at',
  retention: 'P2Y',
  schedule: 'cron(0 2 * * ? *)',
  filter: "count_type <> 'critical'",
};

function withPolicy(overrides: Record<string, unknown>) {
  return { sandbox: true, policies: [{ ...validPolicy, ...overrides }] };
}

/** Every issue as "path: message", the way the CLI prints them. */
function issuesOf(config: unknown): string[] {
  const result = LifecycleConfigSchema.safeParse(config);
  if (result.success) return [];
  return result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('config schema', () => {
  it('accepts the documented minimum shape and applies defaults', () => {
    // Act
    const config = LifecycleConfigSchema.parse(withPolicy({}));
    // Assess
    const policy = config.policies[0];
    expect(policy?.action).toBe('archive');
    if (policy?.action !== 'archive') throw new Error('unreachable');
    expect(policy.archive).toMatchObject({ partitionBy: 'month', compression: 'snappy', verify: 'head' });
    expect(policy.archive.storage).toMatchObject({
      infrequentAccessAfterDays: 30,
      glacierInstantRetrievalAfterDays: 90,
    });
    expect(policy.timezone).toBe('UTC');
  });

  it('merges chunking: built-in defaults, then defaults.chunking, then the policy', () => {
    const config = LifecycleConfigSchema.parse({
      ...withPolicy({ chunking: { maxRows: 20_000 } }),
      defaults: { chunking: { maxRows: 5_000, pauseSeconds: 3 } },
    });
    const chunking = resolveChunking(config, config.policies[0] as never);
    expect(chunking.maxRows).toBe(20_000);
    expect(chunking.pauseSeconds).toBe(3);
    expect(chunking.initialRows).toBe(10_000);
  });

  it('paces chunks only when asked: sleepCoefficient 0 by default, from defaults or the policy, 0 to 10', () => {
    const paced = LifecycleConfigSchema.parse({
      ...withPolicy({ chunking: { sleepCoefficient: 1.5 } }),
      defaults: { chunking: { sleepCoefficient: 4 } },
    });
    expect(resolveChunking(paced, paced.policies[0] as never).sleepCoefficient).toBe(1.5);
    const inherited = LifecycleConfigSchema.parse({
      ...withPolicy({}),
      defaults: { chunking: { sleepCoefficient: 4 } },
    });
    expect(resolveChunking(inherited, inherited.policies[0] as never).sleepCoefficient).toBe(4);
    const plain = LifecycleConfigSchema.parse(withPolicy({}));
    expect(resolveChunking(plain, plain.policies[0] as never).sleepCoefficient).toBe(0);
    for (const bad of [-1, 0.05, 10.5, '2', null]) {
      expect(issuesOf(withPolicy({ chunking: { sleepCoefficient: bad } })), String(bad)).toEqual([
        expect.stringMatching(/^policies\.0\.chunking\.sleepCoefficient: /),
      ]);
    }
  });

  it('keeps purge transactions short by default (250 ms), unless the config says otherwise', () => {
    const purge = { ...validPolicy, action: 'purge', filter: undefined, name: 'p', table: 'public.sessions' };
    const plain = LifecycleConfigSchema.parse({ sandbox: true, policies: [validPolicy, purge] });
    expect(resolveChunking(plain, plain.policies[0] as never)).toMatchObject({
      targetTransactionMs: 2_000,
      maxRows: 50_000,
    });
    expect(resolveChunking(plain, plain.policies[1] as never)).toMatchObject({
      targetTransactionMs: 250,
      maxRows: 500_000,
    });
    const overridden = LifecycleConfigSchema.parse({
      sandbox: true,
      defaults: { chunking: { targetTransactionMs: 400 } },
      policies: [purge],
    });
    expect(resolveChunking(overridden, overridden.policies[0] as never).targetTransactionMs).toBe(400);
  });

  it('accepts a purge of an archived table that keeps rows longer than the archive does', () => {
    const config = {
      sandbox: true,
      policies: [
        validPolicy,
        {
          name: 'leftovers',
          action: 'purge',
          table: 'public.COUNTING_RESULTS',
          timeColumn: 'created_at',
          retention: 'P3Y',
        },
      ],
    };
    expect(issuesOf(config)).toEqual([]);
  });

  it('refuses Unicode escapes in filters: a name spelled U&"…" is another name to any text check', () => {
    for (const filter of [
      `U&"dblink_exe\\0063"('dbname=x', 'DROP TABLE victim') IS NOT NULL`,
      `u&"pg_terminate_backen\\0064"(42)`,
      `note = U&'\\0027'`,
      `U&"d!0061ta" UESCAPE '!' = 1`,
      `note = 'x' uescape '!'`,
    ]) {
      const parsed = LifecycleConfigSchema.safeParse(withPolicy({ filter }));
      expect(parsed.success, filter).toBe(false);
      expect(parsed.error?.issues[0]?.message, filter).toMatch(/U&|UESCAPE/);
    }
    // The same letters inside a literal or a quoted identifier are data, not escapes.
    for (const filter of [`note = 'U&"x"' AND note <> 'uescape'`, `"U&x" IS NULL`]) {
      expect(LifecycleConfigSchema.safeParse(withPolicy({ filter })).success, filter).toBe(true);
    }
  });

  it('accepts filters whose quoted parts hold what the screen refuses outside them', () => {
    for (const filter of [
      "note ~ '^\\d+;$' AND note <> 'a -- b'",
      "name = 'it''s (odd' OR name = 'c:\\dir\\'",
      `"Odd""Name;" <> '/* x */' AND "a'b" IS NULL`,
    ]) {
      const parsed = LifecycleConfigSchema.safeParse(withPolicy({ filter }));
      expect(parsed.success, filter).toBe(true);
    }
  });

  it('accepts quoted mixed-case identifiers and purge policies', () => {
    const config = {
      sandbox: true,
      policies: [
        { ...validPolicy, table: '"Sales"."Order Lines"', timeColumn: '"CreatedAt"' },
        {
          name: 'sessions',
          action: 'purge',
          table: 'user_sessions',
          timeColumn: 'ended_at',
          retention: 'P90D',
        },
      ],
    };
    expect(issuesOf(config)).toEqual([]);
  });

  it('applies purge defaults (vacuum after 20 %, 10 min timeout) and accepts child purge policies', () => {
    const config = LifecycleConfigSchema.parse({
      sandbox: true,
      policies: [
        {
          name: 'cameras',
          action: 'purge',
          table: 'cameras',
          timeColumn: 'retired_at',
          retention: 'P1Y',
          children: ['events'],
        },
        { name: 'events', action: 'purge', table: 'events', timeColumn: 'created_at', retention: 'P90D' },
      ],
    });
    const [parent, child] = config.policies;
    if (parent?.action !== 'purge' || child?.action !== 'purge') throw new Error('unreachable');
    expect(parent.vacuum).toEqual({
      enabled: true,
      afterFraction: 0.2,
      timeoutMs: 600_000,
      costDelay: 'autovacuum',
    });
    expect(parent.children).toEqual(['events']);
    expect(child.children).toBeUndefined();
  });

  const purge = (overrides: Record<string, unknown>) => ({
    sandbox: true,
    policies: [
      {
        name: 'sessions',
        action: 'purge',
        table: 'user_sessions',
        timeColumn: 'ended_at',
        retention: 'P90D',
        ...overrides,
      },
      { ...validPolicy, name: 'archived' },
    ],
  });

  const malformed: Array<[string, unknown, RegExp]> = [
    [
      'purge overtaking an archive of the same table',
      {
        sandbox: true,
        policies: [
          validPolicy,
          {
            name: 'counting-purge',
            action: 'purge',
            table: 'counting_results',
            timeColumn: 'created_at',
            retention: 'P1Y',
          },
        ],
      },
      /policies\.1\.retention: P1Y would purge rows of counting_results before archive policy "counting-results" \(P2Y\) has copied them to the bucket/,
    ],
    [
      'vacuum fraction zero',
      purge({ vacuum: { afterFraction: 0 } }),
      /policies\.0\.vacuum\.afterFraction: must be greater than 0/,
    ],
    [
      'vacuum fraction above one',
      purge({ vacuum: { afterFraction: 1.5 } }),
      /policies\.0\.vacuum\.afterFraction: must be at most 1/,
    ],
    ['vacuum timeout too short', purge({ vacuum: { timeoutMs: 10 } }), /policies\.0\.vacuum\.timeoutMs/],
    [
      'vacuum timeout not an integer',
      purge({ vacuum: { timeoutMs: 1500.5 } }),
      /policies\.0\.vacuum\.timeoutMs/,
    ],
    ['vacuum enabled as text', purge({ vacuum: { enabled: 'yes' } }), /policies\.0\.vacuum\.enabled/],
    [
      'vacuum cost delay of unknown name',
      purge({ vacuum: { costDelay: 'gentle' } }),
      /policies\.0\.vacuum\.costDelay: must be "autovacuum", "off" or \{ "delayMs": 0–100, "limit": 1–10000 \}/,
    ],
    [
      'vacuum cost delay over PostgreSQL’s 100 ms',
      purge({ vacuum: { costDelay: { delayMs: 250, limit: 200 } } }),
      /policies\.0\.vacuum\.costDelay\.delayMs: delayMs is at most 100/,
    ],
    [
      'vacuum cost delay without its limit',
      purge({ vacuum: { costDelay: { delayMs: 2 } } }),
      /policies\.0\.vacuum\.costDelay: must be "autovacuum", "off" or \{ "delayMs": 0–100, "limit": 1–10000 \}/,
    ],
    [
      'unknown vacuum key',
      purge({ vacuum: { full: true } }),
      /policies\.0\.vacuum: Unrecognized key.*"full"/,
    ],
    ['vacuum on archive', withPolicy({ vacuum: {} }), /policies\.0: Unrecognized key.*"vacuum"/],
    ['children not an array', purge({ children: 'events' }), /policies\.0\.children/],
    [
      'empty children',
      purge({ children: [] }),
      /policies\.0\.children: omit children or name at least one policy/,
    ],
    ['unknown child', purge({ children: ['nope'] }), /policies\.0\.children\.0: no policy named "nope"/],
    [
      'own child',
      purge({ children: ['sessions'] }),
      /policies\.0\.children\.0: a policy cannot be its own child/,
    ],
    [
      'archive child',
      purge({ children: ['archived'] }),
      /policies\.0\.children\.0: "archived" is not a purge policy/,
    ],
    ['bad child name', purge({ children: ['Not A Name'] }), /policies\.0\.children\.0: must be lowercase/],
    ['no policies', { sandbox: true, policies: [] }, /policies: needs at least one policy/],
    ['policies missing', { sandbox: true }, /policies: .*(array|expected)/i],
    ['not an object', 42, /expected object/i],
    [
      'unknown top-level key',
      { sandbox: true, policy: [], policies: [validPolicy] },
      /Unrecognized key.*"policy"/,
    ],
    ['bad policy name', withPolicy({ name: 'Counting Results' }), /policies\.0\.name: must be lowercase/],
    ['policy name too long', withPolicy({ name: `a${'b'.repeat(63)}` }), /policies\.0\.name/],
    [
      'duplicate names',
      { sandbox: true, policies: [validPolicy, validPolicy] },
      /policies\.1\.name: duplicate policy name "counting-results"/,
    ],
    ['unknown action', withPolicy({ action: 'shred' }), /policies\.0\.action: .*(archive|purge)/],
    [
      'retention in words',
      withPolicy({ retention: '2 years' }),
      /policies\.0\.retention: "2 years" is not an ISO-8601 duration/,
    ],
    ['zero retention', withPolicy({ retention: 'P0D' }), /policies\.0\.retention: must be longer than zero/],
    [
      'retention with T and nothing',
      withPolicy({ retention: 'P1YT' }),
      /policies\.0\.retention: "P1YT" is not/,
    ],
    [
      'table with semicolon',
      withPolicy({ table: 'public.t; drop table x' }),
      /policies\.0\.table: .*not a valid identifier/,
    ],
    [
      'three-part table',
      withPolicy({ table: 'db.public.t' }),
      /policies\.0\.table: must be "table" or "schema.table"/,
    ],
    [
      'unterminated quote',
      withPolicy({ table: '"Sales.orders' }),
      /policies\.0\.table: unterminated quoted identifier/,
    ],
    ['empty table', withPolicy({ table: '' }), /policies\.0\.table: must not be empty/],
    [
      'qualified time column',
      withPolicy({ timeColumn: 't.created_at' }),
      /policies\.0\.timeColumn: must be a single column name/,
    ],
    [
      'time column injection',
      withPolicy({ timeColumn: 'created_at) OR (1=1' }),
      /policies\.0\.timeColumn: .*not a valid identifier/,
    ],
    [
      'filter with semicolon',
      withPolicy({ filter: 'a = 1; DELETE FROM t' }),
      /policies\.0\.filter: must not contain ";"/,
    ],
    [
      'filter with comment',
      withPolicy({ filter: 'a = 1 -- x' }),
      /policies\.0\.filter: must not contain SQL comments/,
    ],
    [
      'filter with block comment',
      withPolicy({ filter: 'a = 1 /* x */' }),
      /policies\.0\.filter: must not contain SQL comments/,
    ],
    [
      'filter that is a statement',
      withPolicy({ filter: 'delete from t' }),
      /policies\.0\.filter: must be a boolean expression/,
    ],
    [
      'filter with unbalanced parens',
      withPolicy({ filter: '(a = 1' }),
      /policies\.0\.filter: has unbalanced parentheses/,
    ],
    [
      'filter with dollar quoting',
      withPolicy({ filter: '$$x$$ = a' }),
      /policies\.0\.filter: must not contain "\$"/,
    ],
    [
      'retention past any valid cutoff date',
      withPolicy({ retention: 'P3000Y' }),
      /policies\.0\.retention: must be at most 1000 years/,
    ],
    [
      'filter with open quote',
      withPolicy({ filter: "a = 'x" }),
      /policies\.0\.filter: has an unterminated quote/,
    ],
    [
      // PostgreSQL ends E'\'' after its second quote, so the rest escaped the AND ( … ) around the filter.
      'filter escaping its parentheses through an E-string',
      withPolicy({ filter: "'x' = E'\\'' ) OR (true --'\n" }),
      /policies\.0\.filter: must not contain E'…' escape strings/,
    ],
    [
      // A literal continued on the next line keeps E'…' escape mode in PostgreSQL.
      'filter escaping through an E-string continued on the next line',
      withPolicy({ filter: "note = E'x'\n'\\'') OR (true OR note = E'\\''" }),
      /policies\.0\.filter: must not contain E'…' escape strings/,
    ],
    [
      'filter escaping its parentheses through a quote inside a quoted identifier',
      withPolicy({ filter: `"a'b" IS NULL ) OR (true --'"\n` }),
      /policies\.0\.filter: has an unterminated quote/,
    ],
    [
      'five-field cron',
      withPolicy({ schedule: 'cron(0 2 * * *)' }),
      /policies\.0\.schedule: cron needs 6 fields/,
    ],
    [
      'unix cron without cron()',
      withPolicy({ schedule: '0 2 * * *' }),
      /policies\.0\.schedule: must be "cron\(\.\.\.\)"/,
    ],
    [
      'cron with both day fields',
      withPolicy({ schedule: 'cron(0 2 * * * *)' }),
      /policies\.0\.schedule: cron: one of day-of-month/,
    ],
    ['negative chunk size', withPolicy({ chunking: { maxRows: -5 } }), /policies\.0\.chunking\.maxRows/],
    [
      'unknown chunking key',
      withPolicy({ chunking: { rows: 5 } }),
      /policies\.0\.chunking: Unrecognized key.*"rows"/,
    ],
    [
      'storage tiers too close',
      withPolicy({ archive: { storage: { glacierInstantRetrievalAfterDays: 40 } } }),
      /policies\.0\.archive\.storage\.glacierInstantRetrievalAfterDays: must be at least 30 days after/,
    ],
    [
      'IA before 30 days',
      withPolicy({ archive: { storage: { infrequentAccessAfterDays: 7 } } }),
      /policies\.0\.archive\.storage\.infrequentAccessAfterDays/,
    ],
    [
      'bad partition granularity',
      withPolicy({ archive: { partitionBy: 'week' } }),
      /policies\.0\.archive\.partitionBy/,
    ],
    [
      'archive options on purge',
      withPolicy({ action: 'purge', archive: {} }),
      /policies\.0: Unrecognized key.*"archive"/,
    ],
    [
      'bad secret ARN',
      {
        database: {
          secretArn: 'my-secret',
          vpcId: 'vpc-1',
          subnetIds: ['subnet-1'],
          availabilityZones: ['a'],
          securityGroupId: 'sg-1',
        },
        policies: [validPolicy],
      },
      /database\.secretArn: must be a Secrets Manager secret ARN/,
    ],
    [
      'subnets and zones differ',
      {
        database: {
          secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf',
          vpcId: 'vpc-1',
          subnetIds: ['subnet-1', 'subnet-2'],
          availabilityZones: ['eu-west-1a'],
          securityGroupId: 'sg-1',
        },
        policies: [validPolicy],
      },
      /database\.availabilityZones: subnetIds and availabilityZones must have the same length/,
    ],
    [
      'database and sandbox',
      {
        sandbox: true,
        database: {
          secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf',
          vpcId: 'vpc-1',
          subnetIds: ['subnet-1'],
          availabilityZones: ['eu-west-1a'],
          securityGroupId: 'sg-1',
        },
        policies: [validPolicy],
      },
      /sandbox: choose either "database" or "sandbox"/,
    ],
    [
      'bad bucket name',
      { sandbox: true, bucketName: 'My_Bucket', policies: [validPolicy] },
      /bucketName: must be a valid S3 bucket name/,
    ],
    ['bad alarm email', { sandbox: true, alarmEmail: 'ops', policies: [validPolicy] }, /alarmEmail/],
  ];

  it.each(malformed)('rejects %s with a message naming the field', (_label, config, expected) => {
    // Act
    const issues = issuesOf(config);
    // Assess
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.join('\n')).toMatch(expected);
  });
});

describe('lifecycle.schema.json', () => {
  it('is the current JSON Schema of the config (run `npm run schema` after changing the schema)', async () => {
    const { readFileSync } = await import('node:fs');
    const { buildConfigJsonSchema } = await import('../../lib/config-file.ts');
    const committed = JSON.parse(
      readFileSync(new URL('../../lifecycle.schema.json', import.meta.url), 'utf8'),
    );
    expect(committed).toEqual(buildConfigJsonSchema());
  });
});

describe('config schema: partitions', () => {
  const issues = (partitions: unknown) => {
    const result = LifecycleConfigSchema.safeParse(withPolicy({ partitions }));
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('defaults to enabled, dropping retired partitions', () => {
    const policy = LifecycleConfigSchema.parse(withPolicy({})).policies[0];
    expect(policy && 'partitions' in policy ? policy.partitions : undefined).toEqual({
      enabled: true,
      keepDetached: false,
    });
  });

  it('accepts keepDetached with a detachedSchema, on purge policies too', () => {
    const config = LifecycleConfigSchema.parse(
      withPolicy({ action: 'purge', partitions: { keepDetached: true, detachedSchema: '"Old Data"' } }),
    );
    expect((config.policies[0] as { partitions?: unknown } | undefined)?.partitions).toMatchObject({
      keepDetached: true,
      detachedSchema: '"Old Data"',
    });
  });

  it('refuses malformed partition options', () => {
    expect(issues({ enabled: 'yes' })).toEqual([
      expect.stringMatching(/^policies\.0\.partitions\.enabled: /),
    ]);
    expect(issues({ detachedSchema: 'archive' })).toEqual([
      'policies.0.partitions.detachedSchema: only applies with keepDetached: true (dropped partitions are not moved)',
    ]);
    expect(issues({ keepDetached: true, detachedSchema: 'a.b' })).toEqual([
      'policies.0.partitions.detachedSchema: must be a single name',
    ]);
    expect(issues({ keepDetached: true, detachedSchema: 'bad name' })).toEqual([
      expect.stringMatching(/^policies\.0\.partitions\.detachedSchema: .*not a valid identifier/),
    ]);
    expect(issues({ dropAfter: 'P1Y' })).toEqual([expect.stringMatching(/^policies\.0\.partitions: /)]);
  });
});

/**
 * What `validate` must refuse because it would fail later (at deploy, at run time) or silently do something
 * else than the file says. Each rule: a valid value passes, an invalid one fails naming the field.
 */
describe('config schema: what would fail later', () => {
  const problems = (config: unknown) => issuesOf(config).join('\n');

  it.each([
    'UTC',
    'Etc/UTC',
    'GMT',
    'Etc/GMT+5',
    'Europe/Berlin',
    'US/Pacific',
    'Asia/Kolkata',
    'America/Argentina/Buenos_Aires',
  ])('accepts the IANA time zone %s', (timezone) => {
    expect(issuesOf(withPolicy({ timezone }))).toEqual([]);
  });

  it.each([
    ['Mars/Olympus', /policies\.0\.timezone: unknown time zone "Mars\/Olympus"/],
    ['utc', /policies\.0\.timezone: unknown time zone "utc" \(did you mean UTC\?\)/],
    [
      'Europe/BERLIN',
      /policies\.0\.timezone: unknown time zone "Europe\/BERLIN" \(did you mean Europe\/Berlin\?\)/,
    ],
    ['+01:00', /policies\.0\.timezone: unknown time zone "\+01:00"/],
    ['', /policies\.0\.timezone: unknown time zone ""/],
  ])('refuses the time zone %j', (timezone, expected) => {
    expect(problems(withPolicy({ timezone }))).toMatch(expected);
  });

  it.each([
    'cron(0 2 * * ? *)',
    'cron(*/5 * * * ? *)',
    'cron(0/15 8-18 ? * MON-FRI *)',
    'cron(1-5,10,20-30/2 0,12 * * ? *)',
    'cron(0 2 L * ? *)',
    'cron(0 2 LW * ? *)',
    'cron(0 2 15W * ? *)',
    'cron(0 2 ? * 6L *)',
    'cron(0 2 ? * L *)',
    'cron(0 2 ? * MON#2 *)',
    'cron(0 2 ? * 3#5 *)',
    'cron(0 2 1 JAN,jul ? 2026-2199)',
    'cron(0 2 1 */3 ? *)',
    'rate(1 minute)',
    'rate(15 minutes)',
    'rate(1 hour)',
    'rate(6 hours)',
    'rate(1 day)',
    'rate(7 days)',
  ])('accepts the EventBridge Scheduler expression %s', (schedule) => {
    expect(issuesOf(withPolicy({ schedule }))).toEqual([]);
  });

  it.each([
    ['cron(99 99 * * ? *)', /cron: minutes "99" is out of range \(0-59/],
    ['cron(0 24 * * ? *)', /cron: hours "24" is out of range \(0-23/],
    ['cron(0 2 0 * ? *)', /cron: day-of-month "0" is out of range \(1-31/],
    ['cron(0 2 32 * ? *)', /cron: day-of-month "32" is out of range/],
    ['cron(0 2 1 13 ? *)', /cron: month "13" is out of range \(1-12 or JAN-DEC/],
    ['cron(0 2 1 JANUARY ? *)', /cron: month "JANUARY" is out of range/],
    ['cron(0 2 ? * 0 *)', /cron: day-of-week "0" is out of range \(1-7 or SUN-SAT/],
    ['cron(0 2 ? * 8 *)', /cron: day-of-week "8" is out of range/],
    ['cron(0 2 * * ? 1969)', /cron: year "1969" is out of range \(1970-2199/],
    ['cron(0 2 * * ? 2200)', /cron: year "2200" is out of range/],
    ['cron(*/0 * * * ? *)', /cron: minutes increment "0" in "\*\/0" must be 1-59/],
    ['cron(*/60 * * * ? *)', /cron: minutes increment "60"/],
    ['cron(0 2 ? * */2 *)', /cron: day-of-week does not take "\/" increments/],
    ['cron(0 2 ? * 3#1,6#3 *)', /cron: day-of-week "3#1,6#3": \?, L and # stand alone/],
    ['cron(0 2 ? * 2#6 *)', /cron: day-of-week "2#6": the instance after # must be 1-5/],
    ['cron(0 2 ? * 9L *)', /cron: day-of-week "9L" is out of range/],
    ['cron(0 2 L,15 * ? *)', /cron: day-of-month "L,15": \?, L and W stand alone/],
    ['cron(0 2 32W * ? *)', /cron: day-of-month "32W" is out of range/],
    ['cron(0 2 ? * ? *)', /cron: one of day-of-month or day-of-week must be "\?", not both/],
    ['cron(0 2 1-2-3 * ? *)', /cron: day-of-month "1-2-3" is out of range/],
    ['cron(0 2 * * ? *) ', /must be "cron\(\.\.\.\)"/],
    ['rate(0 minutes)', /rate value "0" must be a whole number from 1 up/],
    ['rate(1 hours)', /write rate\(1 hour\) \(singular unit for 1\)/],
    ['rate(5 hour)', /write rate\(5 hours\) \(plural unit above 1\)/],
    ['rate(2 weeks)', /rate needs "rate\(N minutes\|hours\|days\)"/],
    ['rate(1.5 hours)', /rate needs/],
  ])('refuses the schedule %j naming the field', (schedule, expected) => {
    const found = problems(withPolicy({ schedule }));
    expect(found).toMatch(/^policies\.0\.schedule: /);
    expect(found).toMatch(expected);
  });

  it('accepts retention from one hour, refuses shorter (PT1M for P1M, PT10M for P10M)', () => {
    expect(issuesOf(withPolicy({ retention: 'PT1H' }))).toEqual([]);
    expect(issuesOf(withPolicy({ retention: 'PT12H' }))).toEqual([]);
    expect(problems(withPolicy({ retention: 'PT1M' }))).toMatch(
      /^policies\.0\.retention: "PT1M" is shorter than one hour \(PT1H\), the minimum$/,
    );
    expect(issuesOf(withPolicy({ retention: 'P1M' }))).toEqual([]);
    expect(problems(withPolicy({ retention: 'PT59M59S' }))).toMatch(
      /^policies\.0\.retention: .*shorter than one hour/,
    );
  });

  it('accepts policy names up to 55 characters (manual execution names stay within 80)', () => {
    expect(issuesOf(withPolicy({ name: `a${'b'.repeat(54)}` }))).toEqual([]);
    expect(problems(withPolicy({ name: `a${'b'.repeat(55)}` }))).toMatch(/^policies\.0\.name: .*\(max 55\)/);
  });

  describe('chunking merged from built-in defaults, defaults.chunking and the policy', () => {
    const purgeWith = (
      chunking: Record<string, unknown> | undefined,
      defaults?: Record<string, unknown>,
    ) => ({
      sandbox: true,
      ...(defaults ? { defaults: { chunking: defaults } } : {}),
      policies: [
        {
          name: 'sessions',
          action: 'purge',
          table: 'user_sessions',
          timeColumn: 'ended_at',
          retention: 'P90D',
          ...(chunking ? { chunking } : {}),
        },
      ],
    });

    it('accepts bounds that hold together, and a lone maxRows below the built-in initialRows', () => {
      expect(issuesOf(withPolicy({ chunking: { initialRows: 100, minRows: 100, maxRows: 100 } }))).toEqual(
        [],
      );
      // The built-in initialRows (10000) starts at maxRows: nothing the user wrote is overridden.
      expect(issuesOf(withPolicy({ chunking: { maxRows: 2000 } }))).toEqual([]);
      expect(issuesOf(purgeWith({ minRows: 400_000 }))).toEqual([]);
    });

    it('refuses minRows above maxRows, within the policy or across defaults and built-ins', () => {
      expect(problems(withPolicy({ chunking: { minRows: 900, maxRows: 800 } }))).toBe(
        'policies.0.chunking: minRows 900 (this policy) is larger than maxRows 800 (this policy)',
      );
      // The purge default maxRows is 500000; defaults.chunking.minRows 600000 exceeds it.
      expect(problems(purgeWith(undefined, { minRows: 600_000 }))).toBe(
        'policies.0.chunking: minRows 600000 (defaults.chunking) is larger than maxRows 500000 (the built-in purge default)',
      );
    });

    it('refuses an initialRows the run would silently replace by a bound', () => {
      expect(problems(withPolicy({ chunking: { initialRows: 100 } }))).toBe(
        'policies.0.chunking: initialRows 100 (this policy) lies outside minRows 500 (the built-in archive default) to maxRows 50000 (the built-in archive default)',
      );
      expect(problems(purgeWith({ maxRows: 1000 }, { initialRows: 5000 }))).toMatch(
        /^policies\.0\.chunking: initialRows 5000 \(defaults\.chunking\) lies outside .* maxRows 1000 \(this policy\)$/,
      );
    });

    it('resolves with the same checks validate makes (one merge): a config that skipped validation is refused', () => {
      const valid = LifecycleConfigSchema.parse(purgeWith({ minRows: 100, maxRows: 200 }));
      const policy = valid.policies[0] as never as { chunking: Record<string, number> };
      expect(resolveChunking(valid, policy as never)).toMatchObject({
        minRows: 100,
        maxRows: 200,
        initialRows: 200,
      });
      expect(() =>
        resolveChunking(valid, { ...policy, chunking: { minRows: 900, maxRows: 800 } } as never),
      ).toThrow(
        'policy sessions: chunking: minRows 900 (this policy) is larger than maxRows 800 (this policy)',
      );
    });

    it('refuses a target transaction time the statement timeout would cancel', () => {
      expect(problems(withPolicy({ chunking: { statementTimeoutMs: 2000 } }))).toBe(
        'policies.0.chunking: targetTransactionMs 2000 (the built-in archive default) must be below statementTimeoutMs 2000 (this policy)',
      );
      // The purge target (250 ms) fits under the same timeout.
      expect(issuesOf(purgeWith({ statementTimeoutMs: 2000 }))).toEqual([]);
    });
  });

  it.each([
    [
      'lifecycle.runs',
      /policies\.0\.table: lifecycle\.runs: no policy may touch it \(schema lifecycle holds pg-lifecycle's own ledger\)/,
    ],
    ['LIFECYCLE.leases', /policies\.0\.table: LIFECYCLE\.leases: no policy may touch it \(schema lifecycle/],
    ['pg_catalog.pg_class', /policies\.0\.table: .*\(pg_catalog is a PostgreSQL system schema\)/],
    [
      'information_schema.tables',
      /policies\.0\.table: .*\(information_schema is a PostgreSQL system schema\)/,
    ],
    ['pg_toast.pg_toast_16384', /policies\.0\.table: .*\(pg_toast is a PostgreSQL system schema\)/],
    ['pg_temp_3.scratch', /policies\.0\.table: .*\(pg_temp_3 is a PostgreSQL system schema\)/],
  ])('refuses a policy on %s (the ledger or a system schema)', (table, expected) => {
    expect(problems(withPolicy({ table }))).toMatch(expected);
  });

  it('accepts tables merely named like protected schemas, and a quoted schema of another case', () => {
    for (const table of ['public.lifecycle', 'lifecycle_archive.runs', '"Lifecycle".runs', 'pgx.t']) {
      expect(issuesOf(withPolicy({ table })), table).toEqual([]);
    }
  });

  it('refuses moving detached partitions into the ledger or a system schema', () => {
    const partitions = (detachedSchema: string) =>
      withPolicy({ partitions: { keepDetached: true, detachedSchema } });
    expect(issuesOf(partitions('old_partitions'))).toEqual([]);
    expect(problems(partitions('lifecycle'))).toMatch(
      /^policies\.0\.partitions\.detachedSchema: no partition may move there \(schema lifecycle holds/,
    );
    expect(problems(partitions('pg_catalog'))).toMatch(
      /^policies\.0\.partitions\.detachedSchema: .*system schema/,
    );
  });

  it.each([
    'arn:aws:kms:eu-west-1:123456789012:key/0b5d9c1e-0000-4000-8000-000000000000',
    'arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab',
  ])('accepts the KMS key ARN %s (a multi-Region key too) for logs and the database secret', (keyArn) => {
    const database = {
      secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf',
      secretKmsKeyArn: keyArn,
      vpcId: 'vpc-0123abcd',
      subnetIds: ['subnet-0123abcd'],
      availabilityZones: ['eu-west-1a'],
      securityGroupId: 'sg-0123abcd',
    };
    expect(issuesOf({ ...withPolicy({}), observability: { logKmsKeyArn: keyArn } })).toEqual([]);
    expect(issuesOf({ ...withPolicy({}), sandbox: false, database })).toEqual([]);
  });

  it.each([
    'arn:aws:kms:eu-west-1:123456789012:key/-',
    'arn:aws:kms:eu-west-1:123456789012:key/mrk-',
    'arn:aws:kms:eu-west-1:123456789012:key/mrk-1234',
    'arn:aws:kms:eu-west-1:123456789012:key/0b5d9c1e',
    'arn:aws:kms:eu-west-1:123456789012:alias/logs',
  ])('refuses %s: not a key id (a UUID, or mrk- and 32 hex digits)', (keyArn) => {
    expect(problems({ ...withPolicy({}), observability: { logKmsKeyArn: keyArn } })).toMatch(
      /^observability\.logKmsKeyArn: must be a KMS key ARN/,
    );
  });

  it.each([
    'public.is_test_account(integer)',
    'is_test_account(bigint, text)',
    '"My Schema"."odd(name"(integer)',
    'citext_eq(citext, citext)',
  ])('accepts the filterFunctions signature %s', (signature) => {
    expect(issuesOf(withPolicy({ filterFunctions: [signature] }))).toEqual([]);
  });

  it.each([
    ['1 + 1(int)', /"1 \+ 1" is not a valid identifier/],
    ['a.b.c.d(int)', /"a\.b\.c\.d": must be name or schema\.name/],
    ['db.public.f(int)', /must be name or schema\.name/],
    ['public.(int)', /ends with "\."/],
    ['f int', /must be a function signature/],
  ])('refuses the filterFunctions signature %j, naming the name part', (signature, expected) => {
    const found = problems(withPolicy({ filterFunctions: [signature] }));
    expect(found).toMatch(/^policies\.0\.filterFunctions\.0: /);
    expect(found).toMatch(expected);
  });

  it('refuses filterFunctions without a filter: they would vouch for nothing', () => {
    expect(problems(withPolicy({ filter: undefined, filterFunctions: ['public.f(integer)'] }))).toBe(
      'policies.0.filterFunctions: only applies with a filter (the functions it lists are those the filter may call)',
    );
  });

  describe('two policies doing the same to the same rows', () => {
    const second = { ...validPolicy, name: 'second', table: 'PUBLIC.counting_results', retention: 'P3Y' };

    it('refuses two enabled archives of one table with the same filter', () => {
      expect(problems({ sandbox: true, policies: [validPolicy, second] })).toBe(
        'policies.1.table: policy "counting-results" already archives PUBLIC.counting_results with the same filter; merge the two or give each its own filter',
      );
      const unfiltered = { ...validPolicy, filter: undefined };
      expect(problems({ sandbox: true, policies: [unfiltered, { ...second, filter: undefined }] })).toMatch(
        /^policies\.1\.table: policy "counting-results" already archives PUBLIC\.counting_results; merge/,
      );
    });

    it('accepts them with different filters, or with one of them disabled', () => {
      expect(
        issuesOf({ sandbox: true, policies: [validPolicy, { ...second, filter: "count_type = 'x'" }] }),
      ).toEqual([]);
      expect(issuesOf({ sandbox: true, policies: [validPolicy, { ...second, enabled: false }] })).toEqual([]);
    });
  });
});
