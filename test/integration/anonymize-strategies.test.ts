/**
 * Masking strategies as a run relies on them, on real PostgreSQL: each strategy on each base type it accepts
 * gives exactly the masked values documented, keeps NULL as NULL (but fixed), and is idempotent — a second
 * UPDATE with the same expressions changes nothing and every row reads as done. The SQL HMAC is Node's; a
 * strategy that cannot apply is refused by name before any row is touched; checkMasks finds what only the
 * server can tell; the preview never shows a row of the table.
 */

import { createHmac } from 'node:crypto';
import pg from 'pg';
import type { MaskStrategy } from '../../functions/actions/anonymize/contract.ts';
import { type HashKey, hashKeyFrom, hmacSql } from '../../functions/actions/anonymize/hash-key.ts';
import { checkMasks, previewMasks } from '../../functions/actions/anonymize/mask-probes.ts';
import { type MaskedColumn, readMaskedColumns } from '../../functions/actions/anonymize/masked-columns.ts';
import { ParamList } from '../../functions/actions/anonymize/param-list.ts';
import { compileMask } from '../../functions/actions/anonymize/strategies.ts';
import { CatalogError, HashKeyError } from '../../functions/core/errors.ts';
import { quoteIdent } from '../../lib/contracts/identifiers.ts';
import { afterAll, beforeAll, describe, expect, it } from '../support/fixture.ts';

const SECRET = 'test hash key';
const KEY = hashKeyFrom(SECRET);

/** Node's HMAC-SHA-256, hex. */
const hmac = (value: string, secret: string | Buffer = SECRET) =>
  createHmac('sha256', secret).update(value, 'utf8').digest('hex');
const pseudonym = (value: string, digits = 32) => `anon_${hmac(value).slice(0, digits)}`;
/** The local part is the HMAC of the value exactly as stored (not lowercased: `Bob@x` and `bob@x` differ). */
const emailPseudonym = (value: string, domain: string) => `anon_${hmac(value).slice(0, 16)}@${domain}`;
function uuidV8(value: string): string {
  const hex = [...hmac(value).slice(0, 32)];
  hex[12] = '8';
  hex[16] = '89ab'.charAt(Number.parseInt(hex[16] ?? '0', 16) & 3);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * One connection for the whole file, in a session whose TimeZone is not UTC: timestamptz results below are
 * printed in it, and generalize must truncate in UTC regardless.
 */
let db: pg.Client;

beforeAll(async ({ database }) => {
  db = new pg.Client({ connectionString: database.url, options: '-c TimeZone=America/New_York' });
  await db.connect();
  await db.query(`
    CREATE DOMAIN contact_text AS text CHECK (VALUE <> '');
    CREATE DOMAIN mail_text AS text CHECK (VALUE LIKE '%@%');
    CREATE DOMAIN short_name AS varchar(30);
    CREATE TYPE mood AS ENUM ('happy', 'sad');
    CREATE EXTENSION IF NOT EXISTS citext;`);
});

afterAll(async () => {
  await db?.end();
});

type Row = Record<string, string | null>;

async function columnsOf(table: string, names: readonly string[]): Promise<MaskedColumn[]> {
  const { rows } = await db.query<{ oid: string }>('SELECT $1::regclass::oid::text AS oid', [table]);
  return readMaskedColumns(db, Number(rows[0]?.oid), names);
}

/** The table's rows, every column as text, by id. */
async function rowsOf(table: string, names: readonly string[]): Promise<Row[]> {
  const list = names.map((name) => `${quoteIdent(name)}::text AS ${quoteIdent(name)}`).join(', ');
  const { rows } = await db.query<Row>(`SELECT ${list} FROM ${table} ORDER BY id`);
  return rows;
}

/** The chunk UPDATE's shape: every masked column set from its current value, pads as bind parameters. */
function maskStatement(
  table: string,
  columns: MaskedColumn[],
  strategies: Record<string, MaskStrategy>,
  key: HashKey | undefined,
) {
  const params = new ParamList(1);
  const dones: string[] = [];
  const sets = columns.map((column) => {
    const strategy = strategies[column.name] as MaskStrategy;
    const mask = compileMask(column, strategy, `"t".${quoteIdent(column.name)}`, params, key);
    if (mask.done) dones.push(`(${mask.done})`);
    return `${quoteIdent(column.name)} = ${mask.set}`;
  });
  return {
    update: { text: `UPDATE ${table} AS t SET ${sets.join(', ')}`, values: params.values },
    allDone: `SELECT bool_and(${dones.join(' AND ') || 'true'}) AS done FROM ${table} AS t`,
  };
}

/**
 * Masks `table` with `strategies` twice; returns the rows after the first pass, after checking that every
 * row then reads as done and that the second pass changed nothing.
 */
async function maskTwice(
  table: string,
  strategies: Record<string, MaskStrategy>,
  key: HashKey | undefined = KEY,
): Promise<Row[]> {
  const names = Object.keys(strategies);
  const columns = await columnsOf(table, names);
  const { update, allDone } = maskStatement(table, columns, strategies, key);
  await db.query(update);
  const first = await rowsOf(table, names);
  const { rows } = await db.query<{ done: boolean }>(allDone);
  expect(rows[0]?.done).toBe(true);
  await db.query(update);
  expect(await rowsOf(table, names)).toEqual(first);
  return first;
}

const column = (rows: Row[], name: string) => rows.map((row) => row[name]);

describe('hash', () => {
  const strategies: Record<string, MaskStrategy> = Object.fromEntries(
    ['t', 'v40', 'v30', 'c30', 'c40', 'd', 'sd', 'ci', 'Full Name', 'u'].map((name) => [
      name,
      { strategy: 'hash' },
    ]),
  );

  it('pseudonymizes text, varchar(n), char(n), domains, citext and uuid, shortened to fit, NULL kept', async () => {
    await db.query(`
      CREATE TABLE hashed (id int PRIMARY KEY, t text, v40 varchar(40), v30 varchar(30), c30 char(30),
                           c40 char(40), d contact_text, sd short_name, ci citext, "Full Name" text, u uuid);
      INSERT INTO hashed VALUES
        (1, 'Jane Roe', 'Jane Roe', 'Jane Roe', 'Jane Roe', 'Jane Roe', 'Jane Roe', 'Jane Roe', 'Jane Roe',
            'Jane Roe', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
        (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (3, 'Zoë Ångström 日本', 'Zoë Ångström', 'Zoë', 'Zoë', 'Zoë', 'Zoë', 'Zoë', 'Zoë', 'Zoë',
            '6ba7b810-9dad-11d1-80b4-00c04fd430c8');`);

    const rows = await maskTwice('hashed', strategies);

    expect(rows[0]).toEqual({
      t: pseudonym('Jane Roe'),
      v40: pseudonym('Jane Roe'),
      v30: pseudonym('Jane Roe', 25),
      c30: pseudonym('Jane Roe', 25),
      c40: pseudonym('Jane Roe'),
      d: pseudonym('Jane Roe'),
      sd: pseudonym('Jane Roe', 25),
      ci: pseudonym('Jane Roe'),
      'Full Name': pseudonym('Jane Roe'),
      u: uuidV8('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
    });
    expect(Object.values(rows[1] ?? {})).toEqual(Array(10).fill(null));
    expect(rows[2]?.t).toBe(pseudonym('Zoë Ångström 日本'));
    expect(rows[2]?.v30).toBe(pseudonym('Zoë', 25));
    expect(rows[2]?.u).toBe(uuidV8('6ba7b810-9dad-11d1-80b4-00c04fd430c8'));
    expect(rows[2]?.u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('takes a value already shaped like a pseudonym as masked', async () => {
    const shaped = `anon_${'0123456789abcdef'.repeat(2)}`;
    await db.query(`CREATE TABLE hashed_shaped (id int PRIMARY KEY, t text, u uuid)`);
    await db.query(`INSERT INTO hashed_shaped VALUES (1, $1, '00000000-0000-8000-8000-000000000000')`, [
      shaped,
    ]);

    const rows = await maskTwice('hashed_shaped', { t: { strategy: 'hash' }, u: { strategy: 'hash' } });

    expect(rows).toEqual([{ t: shaped, u: '00000000-0000-8000-8000-000000000000' }]);
  });

  it('gives the same pseudonym in every table under one key, another under another key', async () => {
    await db.query(`
      CREATE TABLE customers_a (id int PRIMARY KEY, name text);
      CREATE TABLE customers_b (id int PRIMARY KEY, name varchar(100));
      CREATE TABLE customers_c (id int PRIMARY KEY, name text);
      INSERT INTO customers_a VALUES (1, 'Jane Roe');
      INSERT INTO customers_b VALUES (7, 'Jane Roe');
      INSERT INTO customers_c VALUES (1, 'Jane Roe');`);

    const a = await maskTwice('customers_a', { name: { strategy: 'hash' } });
    const b = await maskTwice('customers_b', { name: { strategy: 'hash' } });
    const c = await maskTwice('customers_c', { name: { strategy: 'hash' } }, hashKeyFrom('another key'));

    expect(a).toEqual(b);
    expect(c[0]?.name).not.toBe(a[0]?.name);
    expect(c[0]?.name).toMatch(/^anon_[0-9a-f]{32}$/);
  });

  it.each([
    ['an ASCII text', 'short key', 'jane.doe@example.com'],
    ['a non-ASCII text', 'short key', 'Zoë Ångström 日本 ключ'],
    ['a key longer than 64 bytes', 'a long key, '.repeat(10), 'jane.doe@example.com'],
    ['a non-ASCII key', 'clé ключ 鍵', 'Jane'],
  ])('computes in SQL the HMAC Node computes, for %s', async (_, secret, text) => {
    const params = new ParamList(2);
    const sql = `SELECT encode(${hmacSql('$1::text', params, hashKeyFrom(secret))}, 'hex') AS hex`;

    const { rows } = await db.query<{ hex: string }>(sql, [text, ...params.values]);

    expect(rows[0]?.hex).toBe(hmac(text, secret));
    expect(sql).not.toContain(hashKeyFrom(secret).ipad.toString('hex'));
  });
});

describe('email', () => {
  it('gives anon_<16 hex>@domain, keeping the original domain when asked', async () => {
    await db.query(`
      CREATE TABLE emails (id int PRIMARY KEY, e text, k varchar(80), m mail_text);
      INSERT INTO emails VALUES
        (1, 'Jane.Doe@Example.com', 'Jane.Doe@Example.com', 'jane@corp.example'),
        (2, 'no-at-sign', 'no-at-sign', NULL),
        (3, 'a@b@corp.example', 'a@b@corp.example', 'x@y'),
        (4, NULL, 'trailing@', NULL);`);

    const rows = await maskTwice('emails', {
      e: { strategy: 'email', keepDomain: false, domain: 'example.invalid' },
      k: { strategy: 'email', keepDomain: true, domain: 'example.invalid' },
      m: { strategy: 'email', keepDomain: false, domain: 'masked.test' },
    });

    expect(rows).toEqual([
      {
        e: emailPseudonym('Jane.Doe@Example.com', 'example.invalid'),
        k: emailPseudonym('Jane.Doe@Example.com', 'Example.com'),
        m: emailPseudonym('jane@corp.example', 'masked.test'),
      },
      {
        e: emailPseudonym('no-at-sign', 'example.invalid'),
        k: emailPseudonym('no-at-sign', 'example.invalid'),
        m: null,
      },
      {
        e: emailPseudonym('a@b@corp.example', 'example.invalid'),
        k: emailPseudonym('a@b@corp.example', 'corp.example'),
        m: emailPseudonym('x@y', 'masked.test'),
      },
      { e: null, k: emailPseudonym('trailing@', 'example.invalid'), m: null },
    ]);
  });

  it('gives two addresses differing only by case two pseudonyms (no collision on a unique column)', async () => {
    await db.query(`
      CREATE TABLE emails_cased (id int PRIMARY KEY, e text UNIQUE);
      INSERT INTO emails_cased VALUES (1, 'Bob@corp.example'), (2, 'bob@corp.example');`);

    const rows = await maskTwice('emails_cased', {
      e: { strategy: 'email', keepDomain: true, domain: 'x.test' },
    });

    expect(rows).toEqual([
      { e: emailPseudonym('Bob@corp.example', 'corp.example') },
      { e: emailPseudonym('bob@corp.example', 'corp.example') },
    ]);
  });
});

describe('nondeterministic collations', () => {
  it('hash, email (keepDomain) and ip work on a case-insensitive ICU column, and checkMasks probes under it', async () => {
    await db.query(`
      CREATE COLLATION strategies_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
      CREATE TABLE ci_values (id int PRIMARY KEY, h text COLLATE strategies_ci, e text COLLATE strategies_ci,
                              ip text COLLATE strategies_ci);
      INSERT INTO ci_values VALUES (1, 'Jane Roe', 'Jane@Corp.example', '10.1.2.3'), (2, NULL, NULL, 'x');`);
    const strategies: Record<string, MaskStrategy> = {
      h: { strategy: 'hash' },
      e: { strategy: 'email', keepDomain: true, domain: 'x.test' },
      ip: { strategy: 'ip' },
    };

    const rows = await maskTwice('ci_values', strategies);
    const columns = await columnsOf('ci_values', Object.keys(strategies));

    expect(rows).toEqual([
      { h: pseudonym('Jane Roe'), e: emailPseudonym('Jane@Corp.example', 'Corp.example'), ip: '10.1.2.0' },
      { h: null, e: null, ip: null },
    ]);
    expect(columns.map((c) => c.collation)).toEqual(Array(3).fill('public.strategies_ci'));
    expect(await checkMasks(db, columns, strategies, KEY)).toEqual([]);
  });
});

describe('partial', () => {
  it('keeps the first and last characters, masks the rest at the same length', async () => {
    await db.query(`
      CREATE TABLE partials (id int PRIMARY KEY, p text, pv varchar(12), pc char(8), pd contact_text);
      INSERT INTO partials VALUES
        (1, 'Jane Example', '555-0100-42', 'AB123456', 'Zoë Ångström'),
        (2, 'Al', '42', 'A', 'Zoë'),
        (3, '*bc*', '', 'ABC', 'x'),
        (4, NULL, NULL, NULL, NULL);`);

    const rows = await maskTwice('partials', {
      p: { strategy: 'partial', keepFirst: 1, keepLast: 2, mask: '*' },
      pv: { strategy: 'partial', keepFirst: 0, keepLast: 4, mask: 'x' },
      pc: { strategy: 'partial', keepFirst: 2, keepLast: 0, mask: '#' },
      pd: { strategy: 'partial', keepFirst: 1, keepLast: 1, mask: '•' },
    });

    expect(rows).toEqual([
      { p: 'J*********le', pv: 'xxxxxxx0-42', pc: 'AB######', pd: 'Z••••••••••m' },
      { p: '**', pv: 'xx', pc: '#', pd: 'Z•ë' },
      // The kept characters may equal the mask: a second pass keeps the same positions (asserted by maskTwice).
      { p: '**c*', pv: '', pc: 'AB#', pd: '•' },
      { p: null, pv: null, pc: null, pd: null },
    ]);
  });
});

describe('ip', () => {
  it('reduces inet, cidr and address text to the /24 or /48 network', async () => {
    await db.query(`
      CREATE TABLE addresses (id int PRIMARY KEY, i inet, c cidr, t text, n varchar(45) NOT NULL);
      INSERT INTO addresses VALUES
        (1, '192.168.17.42', '192.168.17.0/28', '192.168.17.42', 'not an address'),
        (2, '2001:db8:85a3::8a2e:370:7334', '2001:db8:85a3:1234::/64', '2001:DB8:85a3::8a2e:370:7334', '::1'),
        (3, '10.1.2.3/8', '10.0.0.0/8', '999.1.1.1', '1.2.3.4'),
        (4, NULL, NULL, NULL, '::ffff:1.2.3.4');`);

    const rows = await maskTwice(
      'addresses',
      Object.fromEntries(['i', 'c', 't', 'n'].map((name) => [name, { strategy: 'ip' }])),
    );

    expect(rows).toEqual([
      { i: '192.168.17.0/24', c: '192.168.17.0/24', t: '192.168.17.0', n: '0.0.0.0' },
      { i: '2001:db8:85a3::/48', c: '2001:db8:85a3::/48', t: '2001:db8:85a3::', n: '::' },
      { i: '10.0.0.0/8', c: '10.0.0.0/8', t: null, n: '1.2.3.0' },
      // IPv4 embedded in IPv6 is not recognized as an address: it is replaced, never cast and failing.
      { i: null, c: null, t: null, n: '0.0.0.0' },
    ]);
  });
  it('never fails a row on text that only looks like an address', async () => {
    const forms = [
      '1:2:3:4:5:6:7::',
      '::2:3:4:5:6:7:8',
      '1::8',
      'FFFF::',
      '0:0:0:0:0:0:0:0',
      '1:2:3:4:5::8',
      '::',
    ];
    const malformed = [
      ':::',
      '1:::2',
      '1.2.3',
      '01.2.3.4',
      '256.1.1.1',
      '1.2.3.4/24',
      'fe80::1%eth0',
      ' 1.2.3.4',
      '',
    ];
    // Deterministic noise over the address alphabet: most of it is not an address, some of it is.
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const noise = Array.from({ length: 2000 }, () =>
      Array.from({ length: 1 + Math.floor(random() * 16) }, () =>
        '0123456789abcdef:.'.charAt(Math.floor(random() * 18)),
      ).join(''),
    );
    const values = [...forms, ...malformed, ...noise];
    await db.query('CREATE TABLE address_texts (id int PRIMARY KEY, t text)');
    await db.query(
      'INSERT INTO address_texts SELECT n, t FROM unnest($1::text[]) WITH ORDINALITY AS x(t, n)',
      [values],
    );

    const rows = await maskTwice('address_texts', { t: { strategy: 'ip' } });

    const masked = column(rows, 't');
    expect(masked.slice(0, forms.length).every((t) => t?.endsWith('::'))).toBe(true);
    expect(masked.slice(forms.length, forms.length + malformed.length)).toEqual(malformed.map(() => null));
    expect(masked.every((t) => t == null || /(^|\.)0$|::$/.test(t))).toBe(true);
    expect(masked.filter((t) => t != null).length).toBeGreaterThan(forms.length);
  });
});

describe('generalize', () => {
  it('truncates dates and timestamps (timestamptz in UTC), buckets numbers by step', async () => {
    await db.query(`
      CREATE TABLE generalized (id int PRIMARY KEY, d date, ts timestamp, tz timestamptz, s smallint, i int,
                                b bigint, n numeric, f double precision, r real);
      INSERT INTO generalized VALUES
        (1, '2024-02-29', '2024-07-15 13:45:00', '2024-03-01 02:00:00+00', 37, 1234, 9007199254740993, 7.3,
            0.7, 1234.56),
        (2, '1984-06-01', '2021-01-01 00:00:00', '2021-12-31 23:59:59.5+00', -3, -1, -1001, -7.3, -0.05, 0),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);`);

    const rows = await maskTwice('generalized', {
      d: { strategy: 'generalize', to: 'month' },
      ts: { strategy: 'generalize', to: 'year' },
      tz: { strategy: 'generalize', to: 'month' },
      s: { strategy: 'generalize', step: 10 },
      i: { strategy: 'generalize', step: 100 },
      b: { strategy: 'generalize', step: 1000 },
      n: { strategy: 'generalize', step: 0.5 },
      f: { strategy: 'generalize', step: 0.1 },
      r: { strategy: 'generalize', step: 0.25 },
    });

    expect(rows).toEqual([
      {
        d: '2024-02-01',
        ts: '2024-01-01 00:00:00',
        // March in UTC (the session is in New York, where this instant is still 29 February).
        tz: '2024-02-29 19:00:00-05',
        s: '30',
        i: '1200',
        b: '9007199254740000',
        n: '7.0',
        f: '0.7',
        r: '1234.5',
      },
      {
        d: '1984-06-01',
        ts: '2021-01-01 00:00:00',
        tz: '2021-11-30 19:00:00-05',
        s: '-10',
        i: '-100',
        b: '-2000',
        n: '-7.5',
        f: '-0.1',
        r: '0',
      },
      { d: null, ts: null, tz: null, s: null, i: null, b: null, n: null, f: null, r: null },
    ]);
  });
});

describe('generalize within the type', () => {
  it('keeps buckets, noise and shifted dates inside the type near its ends', async () => {
    await db.query(`
      CREATE TABLE edges (id int PRIMARY KEY, s smallint, b bigint, n numeric(5,2), r real, d date,
                          ts timestamp, f double precision);
      INSERT INTO edges VALUES
        (1, -32768, -9223372036854775808, -999.99, '-3.4e38', '5874897-12-31', '4714-11-24 00:00:00 BC', 'NaN'),
        (2, 32767, 9223372036854775807, 999.99, 'Infinity', '4714-11-24 BC', 'infinity', '-Infinity'),
        (3, 120, 0, 12.34, 1.5, 'infinity', '2024-05-05 10:00:00', 7.5);`);

    const rows = await maskTwice('edges', {
      s: { strategy: 'generalize', step: 100 },
      b: { strategy: 'generalize', step: 1000 },
      n: { strategy: 'generalize', step: 10 },
      r: { strategy: 'generalize', step: 3e37 },
      d: { strategy: 'generalize', to: 'year' },
      ts: { strategy: 'generalize', to: 'month' },
      f: { strategy: 'generalize', step: 5 },
    });

    expect(rows).toEqual([
      {
        s: '-32700',
        b: '-9223372036854775000',
        n: '-990.00',
        r: '-3.3e+38',
        d: '5874897-01-01',
        ts: '4714-11-24 00:00:00 BC',
        f: 'NaN',
      },
      {
        s: '32700',
        b: '9223372036854775000',
        n: '990.00',
        r: 'Infinity',
        d: '4714-11-24 BC',
        ts: 'infinity',
        f: '-Infinity',
      },
      { s: '100', b: '0', n: '10.00', r: '0', d: 'infinity', ts: '2024-05-01 00:00:00', f: '5' },
    ]);
  });

  it('noise on numeric(p,s) stays within its precision', async () => {
    await db.query(`
      CREATE TABLE noisy_edges (id int PRIMARY KEY, n numeric(4,2), d date);
      INSERT INTO noisy_edges SELECT g, 99.99, '5874897-12-31' FROM generate_series(1, 50) g;`);
    const strategies: Record<string, MaskStrategy> = {
      n: { strategy: 'noise', amount: 5 },
      d: { strategy: 'noise', days: 3 },
    };
    const columns = await columnsOf('noisy_edges', Object.keys(strategies));
    const { update } = maskStatement('noisy_edges', columns, strategies, undefined);

    await db.query(update);

    const { rows } = await db.query<{ ok: boolean }>(
      `SELECT bool_and(n BETWEEN 94.99 AND 99.99 AND d = '5874897-12-31') AS ok FROM noisy_edges`,
    );
    expect(rows[0]?.ok).toBe(true);
  });
});

describe('jsonb', () => {
  it('replaces a json object holding an escape the json functions refuse by NULL ({} when NOT NULL)', async () => {
    await db.query(String.raw`
      CREATE TABLE json_escapes (id int PRIMARY KEY, j json, r json NOT NULL);
      INSERT INTO json_escapes VALUES
        (1, '{"\ud83d": 1, "address": "x"}', '{"a\u0000": 1}'),
        (2, '{"ok": "\ud83d\ude00", "address": "x"}', '{"address": "x", "b": "\\u0000"}'),
        (3, '{"k": "\udc00"}', '["\u0000"]');`);

    const rows = await maskTwice('json_escapes', {
      j: { strategy: 'jsonb', removeKeys: ['address'] },
      r: { strategy: 'jsonb', removeKeys: ['address'] },
    });

    expect(rows).toEqual([
      { j: null, r: '{}' },
      // A surrogate pair is fine, and so is an escaped backslash before u0000.
      { j: String.raw`{ "ok" : "\ud83d\ude00" }`, r: String.raw`{ "b" : "\\u0000" }` },
      { j: null, r: String.raw`["\u0000"]` },
    ]);
  });

  it('removes the listed top-level keys from objects, leaves other values alone', async () => {
    await db.query(`
      CREATE TABLE documents (id int PRIMARY KEY, jb jsonb, j json);
      INSERT INTO documents VALUES
        (1, '{"email": "a@b.c", "phone": "1", "kept": 1}', '{"email": "a@b.c",  "kept": 1}'),
        (2, '{"kept": {"email": "nested"}}', '{ "kept" :  2 }'),
        (3, '["email", "phone"]', '["email"]'),
        (4, '"email"', '"email"'),
        (5, NULL, NULL),
        (6, '{"phone": "1"}', '{"phone": "1", "email": [1,  2]}');`);

    const rows = await maskTwice('documents', {
      jb: { strategy: 'jsonb', removeKeys: ['email', 'phone'] },
      j: { strategy: 'jsonb', removeKeys: ['email', 'phone'] },
    });

    expect(rows).toEqual([
      { jb: '{"kept": 1}', j: '{ "kept" : 1 }' },
      { jb: '{"kept": {"email": "nested"}}', j: '{ "kept" :  2 }' },
      { jb: '["email", "phone"]', j: '["email"]' },
      { jb: '"email"', j: '"email"' },
      { jb: null, j: null },
      { jb: '{}', j: '{}' },
    ]);
  });
});

describe('null and fixed', () => {
  it('set NULL, or one value cast to the column type (also where the value was NULL)', async () => {
    await db.query(`
      CREATE TABLE fixed_values (id int PRIMARY KEY, gone text, gone_tags text[], gone_mood mood,
                                 n int NOT NULL, t text, v varchar(5), m mood, tags text[], j json, d contact_text);
      INSERT INTO fixed_values VALUES
        (1, 'Jane', '{a,b}', 'sad', 42, 'Jane', 'abc', 'sad', '{a,b}', '{"a": 1}', 'Jane'),
        (2, NULL, NULL, NULL, 7, NULL, NULL, NULL, NULL, NULL, NULL);`);

    const rows = await maskTwice('fixed_values', {
      gone: { strategy: 'null' },
      gone_tags: { strategy: 'null' },
      gone_mood: { strategy: 'null' },
      n: { strategy: 'fixed', value: '0' },
      t: { strategy: 'fixed', value: "O'Redacted" },
      v: { strategy: 'fixed', value: 'REDACTED' },
      m: { strategy: 'fixed', value: 'happy' },
      tags: { strategy: 'fixed', value: '{}' },
      j: { strategy: 'fixed', value: '{ "redacted" : true }' },
      d: { strategy: 'fixed', value: 'redacted' },
    });

    const masked = {
      gone: null,
      gone_tags: null,
      gone_mood: null,
      n: '0',
      t: "O'Redacted",
      v: 'REDAC',
      m: 'happy',
      tags: '{}',
      j: '{ "redacted" : true }',
      d: 'redacted',
    };
    expect(rows).toEqual([masked, masked]);
  });
});

describe('noise', () => {
  it('moves numbers by up to amount and dates by up to days, within the type', async () => {
    await db.query(`
      CREATE TABLE noisy (id int PRIMARY KEY, i int, s smallint, n numeric(10,2), f double precision, d date,
                          tz timestamptz);
      INSERT INTO noisy SELECT g, 1000, 32767, 100.25, 50, '2024-06-15', '2024-06-15 12:00:00+00'
        FROM generate_series(1, 200) g;
      INSERT INTO noisy VALUES (0, NULL, NULL, NULL, NULL, NULL, NULL);`);
    const strategies: Record<string, MaskStrategy> = {
      i: { strategy: 'noise', amount: 5 },
      s: { strategy: 'noise', amount: 10 },
      n: { strategy: 'noise', amount: 1 },
      f: { strategy: 'noise', amount: 0.5 },
      d: { strategy: 'noise', days: 3 },
      tz: { strategy: 'noise', days: 2 },
    };
    const columns = await columnsOf('noisy', Object.keys(strategies));
    const { update } = maskStatement('noisy', columns, strategies, undefined);

    await db.query(update);

    const { rows } = await db.query<Record<string, string | null>>(`
      SELECT min(i)::text AS min_i, max(i)::text AS max_i, count(DISTINCT i)::text AS distinct_i,
             max(s)::text AS max_s, bool_and(n = round(n, 2) AND n BETWEEN 99.25 AND 101.25)::text AS n_ok,
             bool_and(f BETWEEN 49.5 AND 50.5)::text AS f_ok,
             bool_and(d BETWEEN '2024-06-12' AND '2024-06-18')::text AS d_ok, count(DISTINCT d)::text AS distinct_d,
             bool_and(abs(extract(epoch FROM tz - '2024-06-15 12:00:00+00')) <= 2 * 86400)::text AS tz_ok,
             count(*) FILTER (WHERE i IS NULL AND s IS NULL AND n IS NULL AND f IS NULL AND d IS NULL AND tz IS NULL)::text AS nulls
        FROM noisy`);
    expect(Number(rows[0]?.min_i)).toBeGreaterThanOrEqual(995);
    expect(Number(rows[0]?.max_i)).toBeLessThanOrEqual(1005);
    expect(Number(rows[0]?.distinct_i)).toBeGreaterThan(3);
    expect(rows[0]).toMatchObject({
      max_s: '32767',
      n_ok: 'true',
      f_ok: 'true',
      tz_ok: 'true',
      d_ok: 'true',
      nulls: '1',
    });
    expect(Number(rows[0]?.distinct_d)).toBeGreaterThan(3);
    expect(
      columns.map((c) => compileMask(c, strategies[c.name] as MaskStrategy, 'x', new ParamList(1), KEY).done),
    ).toEqual(Array(6).fill(undefined));
  });
});

describe('refusals', () => {
  beforeAll(async () => {
    await db.query(`
      CREATE TABLE refused (id int PRIMARY KEY, required text NOT NULL, required_domain contact_text, i int,
                            v20 varchar(20), v25 varchar(25), c char(10), d date, v5 varchar(5), t text,
                            m mood, tags text[], g text GENERATED ALWAYS AS (t || '!') STORED,
                            ident int GENERATED ALWAYS AS IDENTITY);
      CREATE DOMAIN required_text AS text NOT NULL;
      ALTER TABLE refused ADD COLUMN rd required_text DEFAULT 'x';
      ALTER TABLE refused ADD COLUMN n61 numeric(6,1), ADD COLUMN tz timestamptz, ADD COLUMN ts timestamp,
                          ADD COLUMN tm time;`);
  });

  it.each<[string, string, MaskStrategy, HashKey | undefined, RegExp]>([
    ['a NOT NULL column', 'required', { strategy: 'null' }, KEY, /NOT NULL/],
    ['a NOT NULL domain', 'rd', { strategy: 'null' }, KEY, /NOT NULL/],
    ['an integer', 'i', { strategy: 'hash' }, KEY, /text-like columns and uuid only/],
    ['a varchar(20)', 'v20', { strategy: 'hash' }, KEY, /21 characters/],
    ['no key', 't', { strategy: 'hash' }, undefined, /hash key.*missing.*PG_LIFECYCLE_HASH_KEY/],
    [
      'no key',
      't',
      { strategy: 'email', keepDomain: true, domain: 'x.test' },
      undefined,
      /PG_LIFECYCLE_HASH_KEY/,
    ],
    [
      'a varchar(25)',
      'v25',
      { strategy: 'email', keepDomain: false, domain: 'example.invalid' },
      KEY,
      /37 characters/,
    ],
    ['an integer', 'i', { strategy: 'partial', keepFirst: 1, keepLast: 1, mask: '*' }, KEY, /text-like/],
    ['a char(10)', 'c', { strategy: 'partial', keepFirst: 1, keepLast: 1, mask: ' ' }, KEY, /space/],
    ['a date', 'd', { strategy: 'ip' }, KEY, /inet, cidr and text-like/],
    ['a varchar(5)', 'v5', { strategy: 'ip' }, KEY, /7 characters/],
    ['an integer', 'i', { strategy: 'generalize', to: 'year' }, KEY, /`step`, not `to`/],
    ['a date', 'd', { strategy: 'generalize', step: 7 }, KEY, /`to` \(month or year\), not `step`/],
    ['an integer', 'i', { strategy: 'generalize', step: 1.5 }, KEY, /integer step/],
    ['a text', 't', { strategy: 'generalize', to: 'month' }, KEY, /dates, timestamps and numbers/],
    ['a text', 't', { strategy: 'jsonb', removeKeys: ['a'] }, KEY, /jsonb and json/],
    ['an integer', 'i', { strategy: 'noise', days: 3 }, KEY, /`amount`, not `days`/],
    ['a date', 'd', { strategy: 'noise', amount: 3 }, KEY, /`days`, not `amount`/],
    ['a text', 't', { strategy: 'noise', amount: 3 }, KEY, /numbers, dates and timestamps/],
    ['an enum', 'm', { strategy: 'hash' }, KEY, /enum columns \(only null and fixed/],
    ['an array', 'tags', { strategy: 'partial', keepFirst: 0, keepLast: 0, mask: '*' }, KEY, /array columns/],
    ['a numeric(6,1)', 'n61', { strategy: 'generalize', step: 0.12 }, KEY, /multiple of 0\.1 .*got 0\.12/],
    ['a numeric(6,1)', 'n61', { strategy: 'generalize', step: 1e-7 }, KEY, /multiple of 0\.1/],
    ['a date', 'd', { strategy: 'fixed', value: ' Today ' }, KEY, /relative to the current time/],
    ['a timestamptz', 'tz', { strategy: 'fixed', value: 'now' }, KEY, /relative to the current time/],
    ['a timestamp', 'ts', { strategy: 'fixed', value: 'YESTERDAY' }, KEY, /relative to the current time/],
    ['a time', 'tm', { strategy: 'fixed', value: 'tomorrow' }, KEY, /relative to the current time/],
  ])('refuses %s for column %s', async (_, name, strategy, key, reason) => {
    const [column] = await columnsOf('refused', [name]);
    const compile = () => compileMask(column as MaskedColumn, strategy, '"t".x', new ParamList(1), key);

    expect(compile).toThrow(key ? CatalogError : HashKeyError);
    expect(compile).toThrow(reason);
    expect(compile).toThrow(
      `column ${quoteIdent(name)} (${column?.typeName}): strategy ${strategy.strategy}`,
    );
  });

  it('accepts a step that is a multiple of the numeric scale, and fixed absolute times', async () => {
    const [n61, tz] = await columnsOf('refused', ['n61', 'tz']);

    expect(() =>
      compileMask(n61 as MaskedColumn, { strategy: 'generalize', step: 2.5 }, 'x', new ParamList(1), KEY),
    ).not.toThrow();
    expect(n61?.numeric).toEqual({ precision: 6, scale: 1 });
    expect(() =>
      compileMask(tz as MaskedColumn, { strategy: 'fixed', value: 'epoch' }, 'x', new ParamList(1), KEY),
    ).not.toThrow();
  });

  it('refuses a missing, generated, identity or system column, naming each', async () => {
    const reading = columnsOf('refused', ['t', 'missing', 'g', 'ident', 'ctid']);

    await expect(reading).rejects.toThrow(CatalogError);
    await expect(reading).rejects.toThrow(
      'table refused: column "missing" does not exist; column "g" is a generated column; column "ident" is an identity column GENERATED ALWAYS; column "ctid" is a system column: it cannot be masked',
    );
  });

  it('reads a domain as its base type and a NOT NULL domain as NOT NULL', async () => {
    const [required, domain, short] = await columnsOf('refused', ['rd', 'required_domain', 'v20']);

    expect(required).toMatchObject({
      typeName: 'public.required_text',
      baseTypeName: 'text',
      notNull: true,
      isDomain: true,
    });
    expect(domain).toMatchObject({
      typeName: 'public.contact_text',
      baseTypeName: 'text',
      notNull: false,
      category: 'S',
    });
    expect(short).toMatchObject({ typeName: 'character varying(20)', maxLength: 20, isDomain: false });
  });
});

describe('checkMasks', () => {
  beforeAll(async () => {
    await db.query(`
      CREATE TABLE checked (id int PRIMARY KEY, n int, required text NOT NULL, e mail_text, t text, u uuid,
                            j jsonb, tz timestamptz, notes text);`);
  });

  const strategies: Record<string, MaskStrategy> = {
    n: { strategy: 'fixed', value: 'abc' },
    required: { strategy: 'null' },
    e: { strategy: 'hash' },
    t: { strategy: 'partial', keepFirst: 1, keepLast: 1, mask: '*' },
    u: { strategy: 'hash' },
    j: { strategy: 'jsonb', removeKeys: ['email'] },
    tz: { strategy: 'generalize', to: 'year' },
  };

  it('reports every column that cannot be masked, one problem each, without throwing', async () => {
    const columns = await columnsOf('checked', Object.keys(strategies));

    const problems = await checkMasks(db, columns, strategies, KEY);

    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(
      /^column "n" \(integer\): strategy fixed fails: invalid input syntax for type integer/,
    );
    expect(problems[1]).toBe('column "required" (text): strategy null cannot apply: the column is NOT NULL');
    // The domain refuses the pseudonym (no '@'): only the server can tell.
    expect(problems[2]).toMatch(/^column "e" \(public\.mail_text\): strategy hash fails: .*mail_text_check/);
  });

  it('reports a missing key and works inside the caller transaction, leaving it usable', async () => {
    const columns = await columnsOf('checked', ['t', 'u']);
    await db.query('BEGIN');
    try {
      const problems = await checkMasks(
        db,
        columns,
        { t: strategies.t, u: strategies.u } as never,
        undefined,
      );
      const { rows } = await db.query<{ one: number }>('SELECT 1 AS one');

      expect(problems).toEqual([
        expect.stringMatching(/^column "u" \(uuid\): strategy hash needs the hash key/),
      ]);
      expect(rows[0]?.one).toBe(1);
    } finally {
      await db.query('ROLLBACK');
    }
  });

  it('reports a domain whose CHECK refuses every synthetic value, unless the strategy is null or fixed', async () => {
    await db.query(`
      CREATE DOMAIN ref_code AS text CHECK (VALUE ~ '^C-[0-9]+$');
      CREATE TABLE domain_checked (id int PRIMARY KEY, h ref_code, p ref_code, f ref_code, z ref_code);`);
    const domainStrategies: Record<string, MaskStrategy> = {
      h: { strategy: 'hash' },
      p: { strategy: 'partial', keepFirst: 2, keepLast: 0, mask: '*' },
      f: { strategy: 'fixed', value: 'C-0' },
      z: { strategy: 'null' },
    };
    const columns = await columnsOf('domain_checked', Object.keys(domainStrategies));

    const problems = await checkMasks(db, columns, domainStrategies, KEY);

    expect(problems).toEqual([
      expect.stringMatching(
        /^column "h" \(public\.ref_code\): strategy hash could not be checked against the CHECK of domain public\.ref_code/,
      ),
      expect.stringMatching(/^column "p" \(public\.ref_code\): strategy partial could not be checked/),
    ]);
  });

  it('has nothing to report for masks that apply', async () => {
    // fixed and null ignore the value: their probe still binds it.
    const { n: _n, required: _r, e: _e, ...rest } = strategies;
    const good: Record<string, MaskStrategy> = {
      ...rest,
      n: { strategy: 'fixed', value: '42' },
      notes: { strategy: 'null' },
    };
    const columns = await columnsOf('checked', Object.keys(good));

    expect(await checkMasks(db, columns, good, KEY)).toEqual([]);
  });
});

describe('previewMasks', () => {
  it('masks synthetic values of each column type, never a row of the table', async () => {
    await db.query(`
      CREATE TABLE previewed (id int PRIMARY KEY, email text, ip inet, born date, doc jsonb, "Full Name" varchar(30));
      INSERT INTO previewed VALUES (1, 'real.person@corp.example', '10.20.30.40', '1971-01-02',
                                    '{"email": "real.person@corp.example"}', 'Real Person');`);
    const strategies: Record<string, MaskStrategy> = {
      email: { strategy: 'email', keepDomain: true, domain: 'example.invalid' },
      ip: { strategy: 'ip' },
      born: { strategy: 'generalize', to: 'year' },
      doc: { strategy: 'jsonb', removeKeys: ['email', 'phone'] },
      'Full Name': { strategy: 'hash' },
    };
    const columns = await columnsOf('previewed', Object.keys(strategies));

    const previews = await previewMasks(db, columns, strategies, KEY);

    const stored = Object.values((await rowsOf('previewed', Object.keys(strategies)))[0] ?? {});
    const befores = previews.flatMap((p) => p.examples.map((e) => e.before));
    for (const preview of previews) expect(preview.examples.length).toBeGreaterThanOrEqual(1);
    for (const before of befores) expect(stored).not.toContain(before);
    expect(previews.map((p) => [p.column, p.strategy])).toEqual(
      Object.entries(strategies).map(([c, s]) => [c, s.strategy]),
    );
    expect(previews[0]?.examples[0]).toEqual({
      before: 'jane.doe@example.com',
      after: emailPseudonym('jane.doe@example.com', 'example.com'),
    });
    expect(previews[1]?.examples).toEqual([
      { before: '192.168.17.42', after: '192.168.17.0/24' },
      { before: '2001:db8:85a3::8a2e:370:7334', after: '2001:db8:85a3::/48' },
    ]);
    expect(previews[2]?.examples[0]).toEqual({ before: '1984-06-15', after: '1984-01-01' });
    expect(previews[3]?.examples).toEqual([
      { before: '{"kept": 1, "email": "Jane Example", "phone": "Jane Example"}', after: '{"kept": 1}' },
    ]);
    expect(previews[4]?.examples[0]).toEqual({
      before: 'Jane Example',
      after: pseudonym('Jane Example', 25),
    });
  });
});
