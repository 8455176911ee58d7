/**
 * A filter may only read: whatever spelling it uses, a function or operator PostgreSQL resolves to a
 * volatile one (dblink_exec, pg_terminate_backend, nextval, set_config, a custom operator or cast, a view
 * or domain CHECK calling one) is refused before any statement evaluates the filter on a row — in plan
 * (dry run) and real runs alike — and its side effect never happens. Through the synthesized state
 * machine with the real handlers, on real PostgreSQL with dblink.
 *
 * Unicode escapes (U&"…", UESCAPE) never reach a run: the config screen refuses them, in the config file
 * and in any hand-made execution input. The server-side check resolves them all the same, shown here on
 * its own, below that screen.
 */

import pg from 'pg';
import type { LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import { parseExecutionInput } from '../../functions/run/payloads.ts';
import { checkFilterCalls, prepareTarget } from '../../functions/run/prepare-target.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import type { TimeCutoffPolicy } from '../../lib/contracts/policy.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, hooksOf, NOW, test } from '../support/fixture.ts';
import { listAllKeys } from '../support/s3.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

/** A session the filters try to end; it must still answer afterwards. */
let bystander: pg.Client;
let bystanderPid: number;

const policy = (filter: string, overrides: Partial<PolicyInput> = {}): PolicyInput =>
  ({
    name: 'guarded',
    action: 'archive',
    table: 'public.events',
    timeColumn: 'created_at',
    retention: 'P90D',
    filter,
    ...overrides,
  }) as PolicyInput;

/** The file's guarded policy: its runs, and the state its filters try to change. */
interface Guarded {
  /**
   * A run (or plan) of the policy with `filter` (and overrides), on the file's definition: one synth for
   * every run, as the definition does not depend on the policy's filter.
   */
  run(
    filter: string,
    options?: { dryRun?: boolean; overrides?: Partial<PolicyInput> },
  ): Promise<LocalRunResult>;
  /** What a filter's side effect would change: rows, tables, sequences, large objects, the ledger, S3. */
  state(): Promise<Record<string, unknown>>;
}

const it = test.extend(
  'guarded',
  { scope: 'file' },
  ({ database, s3, bucket, runPolicy, definition }): Guarded => ({
    run: (filter, options = {}) =>
      runPolicy(testConfig([policy(filter, options.overrides)]), 'guarded', {
        dryRun: options.dryRun ?? false,
        definition,
      }),
    state: async () => {
      const { rows } = await database.pool.query<Record<string, unknown>>(
        `SELECT (SELECT count(*)::int FROM public.events) AS events,
                to_regclass('public.victim') IS NOT NULL AS victim,
                (SELECT last_value::int FROM public.counter) AS counter,
                (SELECT count(*)::int FROM pg_largeobject_metadata) AS large_objects,
                to_regnamespace('lifecycle') IS NOT NULL AS ledger`,
      );
      return { ...rows[0], keys: await listAllKeys(s3, bucket) };
    },
  }),
);
const { beforeAll, afterAll } = hooksOf(it);

beforeAll(async ({ database: db }) => {
  // Side effects go through dblink (another connection), so that READ ONLY plans cannot hide them.
  const tick = pg.escapeLiteral(`SELECT nextval('public.counter')`);
  await db.pool.query(`
    CREATE EXTENSION dblink;
    CREATE TABLE public.events (id integer PRIMARY KEY, created_at timestamptz NOT NULL, note text NOT NULL);
    CREATE INDEX ON public.events (created_at);
    CREATE TABLE public.victim (id integer);
    CREATE SEQUENCE public.counter;
    SELECT nextval('public.counter');
    CREATE EXTENSION tablefunc;
    CREATE EXTENSION file_fdw;
    CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
    CREATE TABLE public.inherited (id integer);
    CREATE FOREIGN TABLE public.inherited_foreign () INHERITS (public.inherited) SERVER files OPTIONS (filename '/dev/null');
    CREATE TABLE public.parted (id integer) PARTITION BY LIST (id);
    CREATE FOREIGN TABLE public.parted_foreign PARTITION OF public.parted FOR VALUES IN (1) SERVER files OPTIONS (filename '/dev/null');
    CREATE TABLE public.common (x integer);
    INSERT INTO public.common SELECT g % 3 FROM generate_series(1, 300) g;
    ANALYZE public.common;
    CREATE FUNCTION public.tick() RETURNS integer LANGUAGE plpgsql VOLATILE AS $f$
      BEGIN PERFORM dblink_exec(${pg.escapeLiteral(conninfo(db))}, ${tick}); RETURN 1; END $f$;
    CREATE FUNCTION public.bump(integer) RETURNS integer LANGUAGE sql VOLATILE AS 'SELECT public.tick()';
    CREATE FUNCTION public.same(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 = $2';
    -- plpgsql: a SQL function would be inlined, and its operator with it, before any estimate.
    CREATE FUNCTION public.same_and_bump(integer, integer) RETURNS boolean LANGUAGE plpgsql VOLATILE
      AS 'BEGIN RETURN $1 = $2 AND public.tick() > 0; END';
    CREATE OPERATOR public.=== (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.same_and_bump);
    CREATE OPERATOR public.==== (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.same);
    CREATE OPERATOR public.=#= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.same_and_bump,
                                RESTRICT = eqsel, JOIN = eqjoinsel);
    CREATE TYPE public.mood AS ENUM ('ok');
    CREATE FUNCTION public.mood_json(public.mood) RETURNS json LANGUAGE sql VOLATILE
      AS 'SELECT to_json(public.bump(1))';
    CREATE CAST (public.mood AS json) WITH FUNCTION public.mood_json(public.mood);
    CREATE TYPE public.bumped AS (n integer);
    CREATE FUNCTION public.to_bumped(integer) RETURNS public.bumped LANGUAGE sql VOLATILE
      AS 'SELECT ROW(public.tick())::public.bumped';
    CREATE CAST (integer AS public.bumped) WITH FUNCTION public.to_bumped(integer);
    CREATE VIEW public.bumping AS SELECT public.bump(1) AS n;
    CREATE VIEW public.calm AS SELECT id FROM public.events WHERE note LIKE 'n%';
    CREATE TABLE public.guarded_ref (id integer);
    ALTER TABLE public.guarded_ref ENABLE ROW LEVEL SECURITY;
    CREATE POLICY bumps ON public.guarded_ref USING (public.bump(id) > 0);
    -- Called as events.flag (attribute notation): no parenthesis for a text screen to see.
    CREATE FUNCTION public.flag(public.events) RETURNS boolean LANGUAGE plpgsql VOLATILE
      AS 'BEGIN RETURN public.tick() > 0; END';`);
  await db.pool.query(
    `INSERT INTO public.events
       SELECT g, $1::timestamptz - interval '200 days' + g * interval '1 minute', 'n' || g
         FROM generate_series(1, 50) g`,
    [NOW.toISOString()],
  );
  // Row security does not apply to the table's owner: make it apply, as it would to another role.
  await db.pool.query('ALTER TABLE public.guarded_ref FORCE ROW LEVEL SECURITY');
  bystander = new pg.Client({ connectionString: db.url });
  bystander.on('error', () => undefined);
  await bystander.connect();
  bystanderPid = (await bystander.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
});

afterAll(async () => {
  await bystander?.end().catch(() => undefined);
});

/** dblink_exec on its own connection, outside any READ ONLY transaction of the run. */
function dropVictim(db: TestDatabase): string {
  return `dblink_exec('${conninfo(db)}', 'DROP TABLE public.victim')`;
}

/** Reaches the test database from inside it (dblink). */
function conninfo(db: TestDatabase): string {
  const url = new URL(db.url);
  return `host=${url.hostname} port=${url.port} dbname=${url.pathname.slice(1)} user=${url.username} password=${url.password}`;
}

/** A filter spelling (it may reach into the test database) and what its refusal must name. */
interface FilterCase {
  readonly title: string;
  readonly filter: (db: TestDatabase) => string;
  /** The function, operator or relation as PostgreSQL resolved it. */
  readonly names: RegExp;
}

const refused: FilterCase[] = [
  {
    title: 'a schema-qualified, quoted volatile function',
    filter: () => `"pg_catalog"."nextval"('public.counter') > 0`,
    names: /nextval\(regclass\)/,
  },
  {
    title: 'a volatile function in a subquery',
    filter: () => `EXISTS (SELECT 1 FROM public.victim WHERE public.bump(id) > 0) OR id > 0`,
    names: /bump\(integer\)/,
  },
  {
    title: 'a custom operator whose function is volatile, written OPERATOR(schema.op)',
    filter: () => `id OPERATOR(public.===) id`,
    names: /calls operator ===\(integer,integer\) \(function same_and_bump\(integer,integer\), volatile\)/,
  },
  {
    title: 'the same operator written bare',
    filter: () => `id === id`,
    names: /calls operator ===\(integer,integer\)/,
  },
  {
    title: 'a cast through a volatile cast function',
    filter: () => `(id::public.bumped).n > 0`,
    names: /to_bumped\(integer\)/,
  },
  {
    title: 'the same cast written CAST(… AS …)',
    filter: () => `CAST(id AS public.bumped) IS NOT NULL`,
    names: /to_bumped\(integer\)/,
  },
  {
    title: 'a volatile function called in attribute notation (events.flag, no parentheses)',
    filter: () => `events.flag`,
    names: /calls flag\(events\) \(volatile\)/,
  },
  {
    title: 'dblink_exec, quoted and schema-qualified, dropping a table',
    filter: (db) => `${dropVictim(db).replace('dblink_exec', '"public"."dblink_exec"')} IS NOT NULL`,
    names: /calls dblink_exec\(text,text\) \(volatile\)/,
  },
  {
    title: 'pg_terminate_backend of another session',
    filter: () => `pg_catalog.pg_terminate_backend(${bystanderPid})`,
    names: /calls pg_terminate_backend\(integer,bigint\) \(volatile\)/,
  },
  {
    title: 'pg_sleep (would hold the run for 10 minutes per row)',
    filter: () => `pg_catalog.pg_sleep(600) IS NOT NULL`,
    names: /calls pg_sleep\(double precision\) \(volatile\)/,
  },
  {
    title: 'lo_import (would create large objects)',
    filter: () => `lo_import('/etc/hostname') > 0`,
    names: /calls lo_import\(text\) \(volatile\)/,
  },
  {
    title: 'schema-qualified pg_catalog.random()',
    filter: () => `pg_catalog.random() < 2`,
    names: /calls random\(\) \(volatile\)/,
  },
  {
    title: 'a view whose definition calls a volatile function',
    filter: () => `id IN (SELECT n FROM public.bumping)`,
    names: /bump\(integer\)/,
  },
  {
    title: 'a STABLE built-in that reads the rows of a view named in a string (table_to_xml)',
    filter: () => `table_to_xml('public.bumping', true, false, '') IS NOT NULL`,
    names: /table_to_xml\(regclass,boolean,boolean,text\) \(reads rows of relations named in its arguments\)/,
  },
  {
    title: 'a table whose row-level security policy calls a volatile function',
    filter: () => `NOT EXISTS (SELECT 1 FROM public.guarded_ref r WHERE r.id = events.id)`,
    names: /bump\(integer\)/,
  },
  {
    title: "an extension's STABLE function that runs the SQL it is given (tablefunc's crosstab)",
    filter: () =>
      `EXISTS (SELECT 1 FROM crosstab('SELECT ''a''::text, ''b''::text, public.bump(1)::text') AS ct(r text, c text))`,
    names: /crosstab\(text\) \(not PostgreSQL's own: list it in filterFunctions/,
  },
  {
    title: 'to_jsonb of a type whose cast to json calls a volatile function',
    filter: () => `to_jsonb('ok'::public.mood) IS NOT NULL`,
    names:
      /to_jsonb\(anyelement\) \(calls casts to json that are not allowed: mood → json via mood_json\(mood\)\)/,
  },
  {
    // Planning would estimate the operator's selectivity (eqsel calls its function on the common values):
    // the guard parses without planning.
    title: 'a volatile operator with a selectivity estimator, in a subquery on an analysed table',
    filter: () => `id IN (SELECT x FROM public.common WHERE common.x OPERATOR(public.=#=) 1)`,
    names: /operator =#=\(integer,integer\) \(function same_and_bump\(integer,integer\), volatile\)/,
  },
  {
    title: 'a table whose inheritance child is a foreign table',
    filter: () => `EXISTS (SELECT 1 FROM public.inherited)`,
    names: /reads foreign table inherited_foreign/,
  },
  {
    title: 'a partitioned table with a foreign partition',
    filter: () => `EXISTS (SELECT 1 FROM public.parted)`,
    names: /reads foreign table parted_foreign/,
  },
  {
    title: 'set_config spelled as a quoted name',
    filter: () => `"set_config"('statement_timeout', '0', false) IS NOT NULL`,
    names: /set_config\(text,text,boolean\)/,
  },
  {
    title: 'a row lock in a subquery',
    filter: () => `id IN (SELECT id FROM public.events FOR SHARE)`,
    names: /locks rows/,
  },
];

describe('filter guard: what PostgreSQL resolved, not the text', () => {
  for (const dryRun of [true, false]) {
    for (const testCase of refused) {
      it(`${dryRun ? 'plan' : 'run'}: refuses ${testCase.title}, and nothing happens`, async ({
        database: db,
        guarded,
      }) => {
        // Prepare
        const before = await guarded.state();
        // Act
        const result = await guarded.run(testCase.filter(db), { dryRun });
        // Assess
        expect(result.status).toBe('failed');
        expect(result.failure?.error).toBe('InvalidFilterError');
        expect(result.failure?.cause).toMatch(testCase.names);
        expect(result.failure?.cause).toMatch(/Nothing was changed/);
        expect(await guarded.state()).toEqual(before);
        expect((await bystander.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one).toBe(1);
      });
    }
  }

  it("refuses a function that is not PostgreSQL's own unless filterFunctions lists it", async ({
    guarded,
  }) => {
    // Prepare: public.same is IMMUTABLE, but its label is its author's word.
    const before = await guarded.state();
    // Act
    const result = await guarded.run('id OPERATOR(public.====) id', {
      dryRun: true,
    });
    // Assess
    expect(result.failure?.error).toBe('InvalidFilterError');
    expect(result.failure?.cause).toMatch(
      /operator ====\(integer,integer\) \(function same\(integer,integer\), not PostgreSQL's own: list it in filterFunctions/,
    );
    expect(await guarded.state()).toEqual(before);
  });

  it('refuses filterFunctions naming a volatile or unknown function', async ({ guarded }) => {
    for (const [listed, message] of [
      ['public.bump(integer)', /filterFunctions: bump\(integer\) is volatile/],
      ['public.no_such(integer)', /filterFunctions: function "public.no_such\(integer\)" does not exist/],
      [
        'public.same(no_such_type)',
        /filterFunctions: "public.same\(no_such_type\)" names an argument type that does not exist/,
      ],
    ] as const) {
      const result = await guarded.run('id > 0', {
        dryRun: true,
        overrides: { filterFunctions: [listed] },
      });
      expect(result.failure?.error, listed).toBe('InvalidFilterError');
      expect(result.failure?.cause, listed).toMatch(message);
    }
  });

  it('lets stable and immutable calls, views, casts and listed functions through, and archives', async ({
    database: db,
    guarded,
  }) => {
    // Prepare: functions, operators and views that cannot change anything; public.same is vouched for.
    const filter =
      `lower(note) LIKE 'n%' AND id OPERATOR(public.====) id AND created_at < now() ` +
      `AND id::text::integer > 0 AND id IN (SELECT id FROM public.calm) AND date_trunc('day', created_at) IS NOT NULL`;
    // Act
    const result = await guarded.run(filter, {
      overrides: { filterFunctions: ['public.same(integer, integer)'] },
    });
    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.summary?.rows).toBe(50);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM public.events')).rows[0].n).toBe(0);
  });
});

describe('filter guard: Unicode escapes', () => {
  const escaped: FilterCase[] = [
    {
      title: 'dblink_exec spelled with a Unicode escape',
      filter: (db) => `${dropVictim(db).replace('dblink_exec', 'U&"dblink_exe\\0063"')} IS NOT NULL`,
      names: /calls dblink_exec\(text,text\) \(volatile\)/,
    },
    {
      title: 'pg_terminate_backend spelled with UESCAPE',
      filter: () => `U&"pg_terminate_backen!0064" UESCAPE '!'(${bystanderPid}) OR true`,
      names: /calls pg_terminate_backend\(integer,bigint\) \(volatile\)/,
    },
  ];

  it.for(escaped)(
    'a hand-made execution input with $title is refused before any connection',
    ({ filter }, { database: db }) => {
      // Prepare: a valid input, then its filter replaced as someone with StartExecution rights could.
      const input = buildExecutionInput(testConfig([policy('true')]), 'guarded', 'manual', true);
      const tampered = { ...input, policy: { ...input.policy, filter: filter(db) } };
      // Act / Assess
      expect(() => parseExecutionInput(tampered)).toThrow(/Unicode escapes/);
    },
  );

  it.for(escaped)(
    'the server-side check resolves $title all the same',
    async ({ filter, names }, { database: db, guarded }) => {
      // Prepare: the policy as the config would give it, its filter set below the screen.
      const config = testConfig([policy('true')]);
      const parsed = { ...config.policies[0], filter: filter(db) } as (typeof config.policies)[number];
      const client = new pg.Client({
        connectionString: db.url,
        types: { getTypeParser: () => (v: string) => v },
      });
      await client.connect();
      try {
        const before = await guarded.state();
        const prepared = await prepareTarget(client, parsed as TimeCutoffPolicy);
        // Act / Assess
        await expect(checkFilterCalls(client, prepared)).rejects.toThrow(names);
        expect(await guarded.state()).toEqual(before);
        expect((await bystander.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one).toBe(1);
      } finally {
        await client.end();
      }
    },
  );
});

describe('filter guard: types whose making runs a volatile domain CHECK', () => {
  beforeAll(async ({ database: db }) => {
    await db.pool.query(`
      CREATE DOMAIN public.checked AS integer CHECK (public.bump(VALUE) > 0);
      CREATE TYPE public.checked_row AS (v public.checked);
      -- IMMUTABLE, harmless, but not PostgreSQL's own: while a literal is parsed it runs, and its own query's
      -- parse tree (named like ours) would be printed before the filter's.
      CREATE FUNCTION public.decoy(v integer) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN RETURN (SELECT "DECLARECURSORSTMT".v > 0 FROM (SELECT v) AS "DECLARECURSORSTMT"(v)); END $$;
      CREATE DOMAIN public.decoyed AS integer CHECK (public.decoy(VALUE));`);
  });

  afterAll(async ({ database: db }) => {
    await db.pool.query(
      'DROP DOMAIN public.decoyed; DROP FUNCTION public.decoy(integer); DROP TYPE public.checked_row; DROP DOMAIN public.checked',
    );
  });

  const cases = [
    {
      title: 'a cast to the domain',
      filter: 'id::public.checked > 0',
      names:
        /makes values of checked \(checked: CHECK calls bump\(integer\) \(volatile\)\): making them runs a domain CHECK/,
    },
    {
      // No literal: jsonb_populate_record is STABLE, yet it makes a checked_row and so runs the CHECK.
      title: 'a STABLE built-in making a row with such a field',
      filter: 'jsonb_populate_record(NULL::public.checked_row, to_jsonb(events)) IS NOT NULL',
      names: /makes values of checked_row/,
    },
    {
      title: 'an I/O cast to a row type with such a field',
      filter: 'note::public.checked_row IS NOT NULL',
      names: /makes values of checked_row/,
    },
    {
      // PostgreSQL runs the field's CHECK while it parses this literal: the guard must not even parse it.
      title: 'a row literal with such a field',
      filter: `'(5)'::public.checked_row IS NOT NULL`,
      names:
        /has string literals, and this database has types whose domain CHECK calls what a filter may not \(checked, checked\[\], checked_row, checked_row\[\], decoyed, decoyed\[\]; checked: CHECK calls bump\(integer\) \(volatile\); decoyed: CHECK calls decoy\(integer\)/,
    },
    {
      // No literal: XMLTABLE converts each value through the column type's input, CHECK included.
      title: 'an XMLTABLE column of the domain',
      filter:
        'EXISTS (SELECT 1 FROM XMLTABLE(chr(47) PASSING xmlelement(name a, id) COLUMNS a public.checked))',
      names: /makes values of checked/,
    },
    {
      title: 'a decoy parse tree printed by a CHECK function while the literal is parsed',
      filter: `'{1}'::public.decoyed[] IS NOT NULL AND public.bump(1) > 0`,
      names: /has string literals.*decoyed: CHECK calls decoy\(integer\) \(not PostgreSQL's own/,
    },
    {
      title: 'any string literal while such types exist',
      filter: `note <> 'x'`,
      names: /has string literals/,
    },
  ];

  for (const dryRun of [true, false]) {
    it.for(cases)(
      `${dryRun ? 'plan' : 'run'}: refuses $title, and the CHECK never runs`,
      async ({ filter, names }, { guarded }) => {
        // Prepare
        const before = await guarded.state();
        // Act
        const result = await guarded.run(filter, { dryRun });
        // Assess: the counter the CHECK bumps is where it was.
        expect(result.failure?.error).toBe('InvalidFilterError');
        expect(result.failure?.cause).toMatch(names);
        expect(await guarded.state()).toEqual(before);
      },
    );
  }
});
