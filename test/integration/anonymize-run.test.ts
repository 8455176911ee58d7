/**
 * Anonymize end to end: the synthesized state machine run locally with the real handlers against a real
 * PostgreSQL. Exactly the rows past retention are masked (every strategy of the policy, mixed-case names),
 * newer rows stay byte for byte, a re-run updates nothing (xmin unchanged), a row another session holds is
 * left for the next run without waiting, and bad input (no hash key, a strategy the column's type cannot take)
 * changes nothing. Original values never reach the logs.
 */
import type { StepLogger } from '../../functions/run/dependencies.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

const KEY = 'test hash key: not a secret';
const TABLE = 'app."User Profiles"';

/** 1200 profiles, one every 3 days back from NOW: those older than 5 years (P5Y) are due. */
async function seedProfiles(db: TestDatabase): Promise<void> {
  await db.pool.query(`
    DROP SCHEMA IF EXISTS app CASCADE; CREATE SCHEMA app;
    CREATE TABLE ${TABLE} (
      id bigint PRIMARY KEY,
      "Last Login" timestamptz NOT NULL,
      first_name text NOT NULL,
      email text,
      phone varchar(20),
      ip inet,
      birth_date date,
      prefs jsonb,
      notes text,
      customer_ref text);
    CREATE INDEX ON ${TABLE} ("Last Login");
    INSERT INTO ${TABLE}
      SELECT g, '${NOW.toISOString()}'::timestamptz - g * interval '3 days',
             'First' || g, 'person.' || g || '@mail' || (g % 7) || '.example.com',
             '+44 20 7946 ' || lpad((g % 10000)::text, 4, '0'),
             ('10.' || (g % 200) || '.' || (g % 250) || '.' || (1 + g % 250))::inet,
             date '1950-01-01' + (g * 17) % 20000,
             jsonb_build_object('address', g || ' Example Street', 'phone', '555-' || g, 'theme', 'dark'),
             CASE WHEN g % 3 = 0 THEN NULL ELSE 'note ' || g END,
             'C-' || (g % 500)
        FROM generate_series(1, 1200) g;
    ANALYZE ${TABLE};`);
}

function profilesPolicy(overrides: Partial<PolicyInput> = {}): PolicyInput {
  return {
    name: 'old-profiles',
    action: 'anonymize',
    table: TABLE,
    timeColumn: '"Last Login"',
    retention: 'P5Y',
    chunking: { initialRows: 100, minRows: 50, maxRows: 200 },
    anonymize: {
      columns: {
        first_name: { strategy: 'fixed', value: 'ANONYMIZED' },
        email: { strategy: 'email', keepDomain: false },
        phone: { strategy: 'partial', keepLast: 2 },
        customer_ref: { strategy: 'hash' },
        ip: { strategy: 'ip' },
        birth_date: { strategy: 'generalize', to: 'year' },
        prefs: { strategy: 'jsonb', removeKeys: ['address', 'phone'] },
        notes: { strategy: 'null' },
      },
    },
    ...overrides,
  } as PolicyInput;
}

const DUE = `"Last Login" < '${NOW.toISOString()}'::timestamptz - interval 'P5Y'`;

/** Each row's full text and xmin, by id. */
async function rowsById(
  db: TestDatabase,
  where = 'true',
): Promise<Map<string, { text: string; xmin: string }>> {
  const { rows } = await db.pool.query<{ id: string; text: string; xmin: string }>(
    `SELECT id::text AS id, p::text AS text, xmin::text AS xmin FROM ${TABLE} p WHERE ${where} ORDER BY id`,
  );
  return new Map(rows.map((r) => [r.id, { text: r.text, xmin: r.xmin }]));
}

function capturingLogger(lines: string[]): StepLogger {
  const write = (message: string, fields?: Record<string, unknown>) =>
    lines.push(JSON.stringify({ message, ...fields }));
  return { info: write, warn: write, error: write };
}

describe('anonymize run', () => {
  it('masks exactly the rows past retention, leaves newer rows untouched, and a re-run updates nothing', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedProfiles(db);
    const before = await rowsById(db);
    const due = await rowsById(db, DUE);
    expect(due.size).toBeGreaterThan(500);
    expect(due.size).toBeLessThan(before.size);
    const originals = await db.pool.query<{ email: string; first_name: string }>(
      `SELECT email, first_name FROM ${TABLE} WHERE ${DUE}`,
    );
    const logs: string[] = [];

    // Act
    const result = await runPolicy(testConfig([profilesPolicy()]), 'old-profiles', {
      deps: { hashKey: KEY, log: capturingLogger(logs) },
    });

    // Assess: counts
    expect(result.status).toBe('succeeded');
    expect(result.summary?.rows).toBe(due.size);
    expect(result.summary?.chunks).toBeGreaterThan(2);
    // Newer rows: byte for byte, same row version.
    const after = await rowsById(db);
    for (const [id, row] of before) {
      if (!due.has(id)) expect(after.get(id)).toEqual(row);
    }
    // Due rows: every column masked as configured.
    const masked = await db.pool.query<Record<string, string | null>>(
      `SELECT id::text, first_name, email, phone, ip::text, birth_date::text, prefs::text, notes, customer_ref
         FROM ${TABLE} WHERE ${DUE} ORDER BY id`,
    );
    expect(masked.rows).toHaveLength(due.size);
    for (const row of masked.rows) {
      expect(row.first_name).toBe('ANONYMIZED');
      expect(row.email).toMatch(/^anon_[0-9a-f]{16}@example\.invalid$/);
      expect(row.phone).toMatch(/^\*+\d{2}$/);
      expect(row.ip).toMatch(/^10\.\d+\.\d+\.0\/24$/);
      expect(row.birth_date).toMatch(/^\d{4}-01-01$/);
      expect(JSON.parse(row.prefs as string)).toEqual({ theme: 'dark' });
      expect(row.notes).toBeNull();
      expect(row.customer_ref).toMatch(/^anon_[0-9a-f]+$/);
    }
    // Equal inputs, equal pseudonyms (joins survive); different inputs, different ones.
    const refs = await db.pool.query<{ distinct_in: string; distinct_out: string }>(
      `SELECT count(DISTINCT customer_ref)::text AS distinct_out FROM ${TABLE} WHERE ${DUE}`,
    );
    const ids = [...due.keys()].map(Number);
    const distinctIn = new Set(ids.map((g) => `C-${g % 500}`)).size;
    expect(Number(refs.rows[0]?.distinct_out)).toBe(distinctIn);
    // No original value in the logs.
    const logText = logs.join('\n');
    for (const original of originals.rows.slice(0, 50)) {
      expect(logText).not.toContain(original.email);
    }

    // Act again: a re-run
    const again = await runPolicy(testConfig([profilesPolicy()]), 'old-profiles', { deps: { hashKey: KEY } });

    // Assess: nothing updated, not one row version changed
    expect(again.status).toBe('succeeded');
    expect(again.summary?.rows).toBe(0);
    expect(await rowsById(db)).toEqual(after);
  });

  it('passes over a row another session holds without waiting, and the next run masks it', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedProfiles(db);
    const due = await rowsById(db, DUE);
    const heldId = [...due.keys()][10] as string;
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM ${TABLE} WHERE id = $1 FOR UPDATE`, [heldId]);

      // Act
      const result = await runPolicy(
        testConfig([
          profilesPolicy({ chunking: { initialRows: 100, minRows: 50, maxRows: 200, lockTimeoutMs: 500 } }),
        ]),
        'old-profiles',
        { deps: { hashKey: KEY } },
      );

      // Assess
      expect(result.status).toBe('succeeded');
      expect(result.summary?.rows).toBe(due.size - 1);
      const held = await db.pool.query<{ first_name: string }>(
        `SELECT first_name FROM ${TABLE} WHERE id = $1`,
        [heldId],
      );
      expect(held.rows[0]?.first_name).toBe(`First${heldId}`);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    const next = await runPolicy(testConfig([profilesPolicy()]), 'old-profiles', { deps: { hashKey: KEY } });
    expect(next.summary?.rows).toBe(1);
  });

  it('plans without changing anything: eligible rows, a preview on synthetic values, the indexed-column warning', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedProfiles(db);
    await db.pool.query(`CREATE INDEX ON ${TABLE} (email)`);
    const before = await rowsById(db);
    const due = await rowsById(db, DUE);

    // Act
    const result = await runPolicy(testConfig([profilesPolicy()]), 'old-profiles', {
      dryRun: true,
      deps: { hashKey: KEY },
    });

    // Assess
    expect(result.status).toBe('dry_run');
    const plan = result.summary?.plan;
    expect(plan?.eligibleRows).toBe(due.size);
    expect(plan?.masks?.map((m) => [m.column, m.strategy])).toEqual([
      ['first_name', 'fixed'],
      ['email', 'email'],
      ['phone', 'partial'],
      ['customer_ref', 'hash'],
      ['ip', 'ip'],
      ['birth_date', 'generalize'],
      ['prefs', 'jsonb'],
      ['notes', 'null'],
    ]);
    const values = new Set([...before.values()].map((r) => r.text));
    for (const mask of plan?.masks ?? []) {
      expect(mask.examples.length).toBeGreaterThan(0);
      for (const example of mask.examples) {
        for (const text of values) if (example.before) expect(text).not.toContain(`,${example.before},`);
      }
    }
    expect(plan?.masks?.find((m) => m.column === 'email')?.indexed).toBe(true);
    expect(plan?.warnings.some((w) => w.includes('"email" is indexed'))).toBe(true);
    expect(plan?.estimatedWalBytes).toBeGreaterThan(0);
    expect(await rowsById(db)).toEqual(before);
  });
});

describe('anonymize refusals', () => {
  it('refuses without a hash key, and a strategy the column type cannot take, before changing anything', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedProfiles(db);
    const before = await rowsById(db);

    // Act
    const noKey = await runPolicy(testConfig([profilesPolicy()]), 'old-profiles', {
      deps: { hashKey: undefined },
    });
    const wrongType = await runPolicy(
      testConfig([
        profilesPolicy({
          anonymize: { columns: { id: { strategy: 'null' }, birth_date: { strategy: 'ip' } } },
        }),
      ]),
      'old-profiles',
      { deps: { hashKey: KEY } },
    );
    const unknownColumn = await runPolicy(
      testConfig([profilesPolicy({ anonymize: { columns: { surname: { strategy: 'null' } } } })]),
      'old-profiles',
      { deps: { hashKey: KEY } },
    );

    // Assess
    expect(noKey.status).toBe('failed');
    expect(noKey.failure?.error).toBe('HashKeyError');
    expect(wrongType.status).toBe('failed');
    expect(wrongType.failure?.error).toBe('CatalogError');
    expect(wrongType.failure?.cause).toContain('primary key');
    expect(unknownColumn.failure?.error).toBe('CatalogError');
    expect(unknownColumn.failure?.cause).toContain('surname');
    expect(await rowsById(db)).toEqual(before);
  });

  it('refuses an ip strategy on a date column, naming the column', async ({ database: db, runPolicy }) => {
    await seedProfiles(db);
    const before = await rowsById(db);

    const result = await runPolicy(
      testConfig([profilesPolicy({ anonymize: { columns: { birth_date: { strategy: 'ip' } } } })]),
      'old-profiles',
      { deps: { hashKey: KEY } },
    );

    expect(result.failure?.error).toBe('CatalogError');
    expect(result.failure?.cause).toContain('birth_date');
    expect(await rowsById(db)).toEqual(before);
  });
});
