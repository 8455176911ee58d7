/**
 * What the backed-up tables need beyond themselves (pg_depend): the sequences their defaults use and the
 * composite and range types their columns use are recreated, the extensions they use are created where
 * they were, and what is not created (user functions, collations, types it cannot write) is listed per
 * table in notIncluded. Each restore runs the files as psql would, into a fresh database and next to the
 * original under a schema mapping.
 */
import { describeNotIncluded } from '../../functions/actions/backup/schema-definition.ts';
import { generateSchemaSql } from '../../functions/actions/backup/schema-sql.ts';
import { createTestDatabase, withClient } from '../support/database.ts';
import { describe, expect, it } from '../support/fixture.ts';
import { readDefinition, restore, snapshot } from '../support/schema-restore.ts';

describe('backup schema SQL: what the tables depend on', () => {
  it('recreates the sequences, composite and range types that defaults and columns use; the sequence keeps its place', async ({
    database,
  }) => {
    await database.pool.query(`
      CREATE SCHEMA deps;
      CREATE SEQUENCE deps.shared_seq START 1000 INCREMENT 7 CACHE 1;
      CREATE TYPE deps.mood AS ENUM ('meh', 'fine');
      CREATE TYPE deps.pair AS (a integer, b text COLLATE "C");
      CREATE TYPE deps.labelled AS (label text, pairs deps.pair[], mood deps.mood);
      CREATE TYPE deps.float_range AS RANGE (subtype = float8, subtype_diff = float8mi);
      CREATE DOMAIN deps.positive_pair AS deps.pair CHECK ((VALUE).a > 0);
      CREATE TABLE deps.orders (id bigint PRIMARY KEY DEFAULT nextval('deps.shared_seq'), p deps.pair,
        ps deps.pair[], l deps.labelled, r deps.float_range, mr deps.float_multirange, pp deps.positive_pair);
      CREATE TABLE deps.refunds (id bigint PRIMARY KEY DEFAULT nextval('deps.shared_seq'), note text);
      INSERT INTO deps.orders (p, ps, l, r, mr, pp) VALUES
        ('(1,x)', ARRAY['(2,y)', '(3,"z z")']::deps.pair[], '(tag,"{""(4,w)""}",fine)', '[1.5,2.5)',
         '{[1,2),[3,4)}', '(5,v)'),
        (NULL, NULL, NULL, 'empty', '{}', NULL);
      INSERT INTO deps.refunds (note) VALUES ('one');`);
    const definition = await readDefinition(database.url, ['deps.orders', 'deps.refunds']);
    expect(definition.types.map((t) => [t.kind, t.name])).toEqual([
      ['composite', 'pair'],
      ['range', 'float_range'],
      ['enum', 'mood'],
      ['composite', 'labelled'],
      ['domain', 'positive_pair'],
    ]);
    expect(definition.sequences.map((s) => [s.name, s.ownedBy, s.state])).toEqual([
      ['shared_seq', undefined, { lastValue: '1014', isCalled: true }],
    ]);
    expect(definition.notIncluded.tables.map((t) => t.requires)).toEqual([[], []]);

    const fresh = await createTestDatabase('backup_schema_sql_deps');
    try {
      await restore(fresh.url, definition, new Map(), async (client) => {
        // The data files' stand-in: the rows, ids and all, as text.
        for (const table of ['orders', 'refunds']) {
          const { rows } = await database.pool.query(`SELECT json_agg(t) AS rows FROM deps.${table} t`);
          await client.query(
            `INSERT INTO deps.${table} SELECT * FROM json_populate_recordset(NULL::deps.${table}, $1)`,
            [JSON.stringify(rows[0]?.rows)],
          );
        }
      });
      expect(await snapshot(fresh.url, ['deps'])).toEqual(await snapshot(database.url, ['deps']));
      const rowsOf = async (url: string) =>
        withClient(url, async (client) => {
          const { rows } = await client.query(`SELECT o::text AS row FROM deps.orders o ORDER BY id`);
          return rows;
        });
      expect(await rowsOf(fresh.url)).toEqual(await rowsOf(database.url));
      // The next id after a restore is past every restored one: the sequence stands where the source's did.
      const { rows } = await fresh.pool.query<{ id: string; max: string }>(
        `WITH added AS (INSERT INTO deps.refunds (note) VALUES ('after') RETURNING id)
         SELECT added.id::text, (SELECT max(id) FROM (SELECT id FROM deps.orders UNION ALL
                                 SELECT id FROM deps.refunds WHERE note <> 'after') AS restored)::text AS max
           FROM added`,
      );
      expect(rows).toEqual([{ id: '1021', max: '1014' }]);
    } finally {
      await fresh.drop();
    }

    // Next to the original: the default uses the restored sequence, not the original one.
    await restore(database.url, definition, new Map([['deps', 'deps_restored']]));
    expect(await snapshot(database.url, ['deps_restored'])).toEqual(await snapshot(database.url, ['deps']));
    const { rows: used } = await database.pool.query<{ id: string }>(
      `INSERT INTO deps_restored.refunds (note) VALUES ('x') RETURNING id::text AS id`,
    );
    expect(used).toEqual([{ id: '1021' }]);
    const { rows: original } = await database.pool.query(`SELECT last_value::text FROM deps.shared_seq`);
    expect(original).toEqual([{ last_value: '1014' }]);
  });

  it('creates the extensions whose types and operator classes the tables use, where they were', async ({
    database,
  }) => {
    const { rows: available } = await database.pool.query(
      `SELECT name FROM pg_available_extensions WHERE name IN ('btree_gist', 'citext') ORDER BY name`,
    );
    expect(available).toEqual([{ name: 'btree_gist' }, { name: 'citext' }]);
    await database.pool.query(`
      CREATE SCHEMA ext;
      CREATE EXTENSION btree_gist WITH SCHEMA ext;
      CREATE EXTENSION citext WITH SCHEMA ext;
      CREATE SCHEMA rooms;
      CREATE TABLE rooms.bookings (id integer PRIMARY KEY, room integer NOT NULL, guest ext.citext,
        during tsrange NOT NULL, CONSTRAINT "no double booking" EXCLUDE USING gist (room WITH =, during WITH &&));
      INSERT INTO rooms.bookings VALUES (1, 7, 'Ada', '[2026-01-01 10:00,2026-01-01 11:00)');`);
    const definition = await readDefinition(database.url, ['rooms.bookings']);
    const { rows: versions } = await database.pool.query<{ name: string; schema: string; version: string }>(
      `SELECT extname AS name, 'ext' AS schema, extversion AS version FROM pg_extension
        WHERE extname IN ('btree_gist', 'citext') ORDER BY extname`,
    );
    expect(definition.extensions).toEqual(versions);
    expect(definition.notIncluded.extensions).toEqual(versions);
    expect(describeNotIncluded(definition.notIncluded)).toContain(
      `extension btree_gist ${versions[0]?.version} (schema ext): created by schema.sql when missing; ` +
        'the target server must provide it',
    );
    expect(definition.notIncluded.tables[0]?.requires).toEqual([]);
    const sql = generateSchemaSql(definition, new Map([['rooms', 'rooms_elsewhere']]));
    expect(sql.preData).toContain('CREATE EXTENSION IF NOT EXISTS "btree_gist" WITH SCHEMA "ext";');

    const fresh = await createTestDatabase('backup_schema_sql_ext');
    try {
      await restore(fresh.url, definition, new Map(), async (client) => {
        await client.query(
          `INSERT INTO rooms.bookings VALUES (1, 7, 'Ada', '[2026-01-01 10:00,2026-01-01 11:00)')`,
        );
      });
      expect(await snapshot(fresh.url, ['rooms'])).toEqual(await snapshot(database.url, ['rooms']));
      await expect(
        fresh.pool.query(
          `INSERT INTO rooms.bookings VALUES (2, 7, 'Bo', '[2026-01-01 10:30,2026-01-01 12:00)')`,
        ),
      ).rejects.toMatchObject({ code: '23P01' });
      const { rows } = await fresh.pool.query(
        `SELECT id FROM rooms.bookings WHERE guest OPERATOR(ext.=) 'ADA'`,
      );
      expect(rows).toEqual([{ id: 1 }]);
    } finally {
      await fresh.drop();
    }
    // Where the extensions are already: IF NOT EXISTS leaves them be.
    await restore(database.url, definition, new Map([['rooms', 'rooms_restored']]));
    expect(await snapshot(database.url, ['rooms_restored'])).toEqual(await snapshot(database.url, ['rooms']));
  });

  it('lists the functions, collations and types it does not create, per table and where each is used', async ({
    database,
  }) => {
    await database.pool.query(`
      CREATE SCHEMA fn;
      CREATE FUNCTION fn.code() RETURNS text LANGUAGE sql AS 'SELECT ''A'' || floor(random() * 1000)::int';
      CREATE FUNCTION fn.is_code(text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 ~ ''^[A-Z]''';
      CREATE FUNCTION fn.norm(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT lower($1)';
      CREATE FUNCTION fn.double(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
      CREATE FUNCTION fn.positive(integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 0';
      CREATE FUNCTION fn.diff(float8, float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS 'SELECT $1 - $2';
      CREATE TYPE fn.odd_range AS RANGE (subtype = float8, subtype_diff = fn.diff);
      CREATE DOMAIN fn.qty AS integer CONSTRAINT "qty is positive" CHECK (fn.positive(VALUE));
      CREATE COLLATION fn.mine FROM "C";
      CREATE TABLE fn.items (
        code text DEFAULT fn.code() CONSTRAINT "code is upper" CHECK (fn.is_code(code)),
        n integer, twice integer GENERATED ALWAYS AS (fn.double(n)) STORED,
        qty fn.qty, name text COLLATE fn.mine, span fn.odd_range);
      CREATE INDEX "by norm" ON fn.items (fn.norm(code));`);
    const definition = await readDefinition(database.url, ['fn.items']);
    const needs = [
      'collation fn.mine used by column name',
      'function fn.code() used by the default of column code',
      'function fn.double(integer) used by generated column twice',
      'function fn.is_code(text) used by constraint "code is upper"',
      'function fn.norm(text) used by index "by norm"',
      'function fn.positive(integer) used by a CHECK of domain fn.qty of column qty',
      'range type (with a canonical function, or a subtype_diff function or operator class of its own) ' +
        'fn.odd_range used by column span',
    ];
    expect(definition.notIncluded.tables[0]?.requires).toEqual(needs);
    expect(describeNotIncluded(definition.notIncluded)).toEqual(
      expect.arrayContaining(needs.map((n) => `fn.items: needs ${n}, not created by the backup`)),
    );
    // The domain is recreated; the range, whose subtype_diff is a function of the user's, is not.
    expect(definition.types.map((t) => [t.kind, t.name])).toEqual([['domain', 'qty']]);
    expect(definition.extensions).toEqual([]);
  });
});
