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
    expect(parent.vacuum).toEqual({ enabled: true, afterFraction: 0.2, timeoutMs: 600_000 });
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
      /policies\.1\.retention: P1Y would purge rows of counting_results before archive policy "counting-results" \(P2Y\) archives them/,
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
    expect(policy?.partitions).toEqual({ enabled: true, keepDetached: false, countTimeoutMs: 10_000 });
  });

  it('accepts keepDetached with a detachedSchema, on purge policies too', () => {
    const config = LifecycleConfigSchema.parse(
      withPolicy({ action: 'purge', partitions: { keepDetached: true, detachedSchema: '"Old Data"' } }),
    );
    expect(config.policies[0]?.partitions).toMatchObject({
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
