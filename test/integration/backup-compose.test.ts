/**
 * The backup building blocks together, as the backup action will use them: select the tables, read their
 * definition and write schema/post-data SQL under one REPEATABLE READ snapshot with the parts (COPY → gzip →
 * S3) and the content checksums, then restore next to the original (a mapped schema): pre-data, every part
 * verified and loaded, post-data. The copy must hold the same rows (content checksum) and take new rows the
 * way the original would (identity and sequence positions, constraints).
 */
import type pg from 'pg';
import { readContentChecksum } from '../../functions/actions/backup/content-checksum.ts';
import { rangePredicate } from '../../functions/actions/backup/part-plan.ts';
import { planTableParts } from '../../functions/actions/backup/part-plan-queries.ts';
import { restorePart } from '../../functions/actions/backup/part-reader.ts';
import { writePart } from '../../functions/actions/backup/part-writer.ts';
import { generateSchemaSql } from '../../functions/actions/backup/schema-sql.ts';
import { readSchemaDefinition } from '../../functions/actions/backup/table-definition.ts';
import { selectBackupTables } from '../../functions/actions/backup/table-selection.ts';
import { quoteQualified } from '../../lib/contracts/identifiers.ts';
import { describe, expect, it } from '../support/fixture.ts';

const SOURCE = 'Shop Floor';
const TARGET = 'Shop Floor Restored';

const SCHEMA = `
  CREATE SCHEMA "${SOURCE}";
  CREATE TYPE "${SOURCE}".state AS ENUM ('new', 'paid', 'shipped');
  CREATE DOMAIN "${SOURCE}".qty AS int CHECK (VALUE > 0);
  CREATE TABLE "${SOURCE}"."Customers" (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "Full Name" text NOT NULL,
    name_length int GENERATED ALWAYS AS (length("Full Name")) STORED);
  CREATE TABLE "${SOURCE}".orders (
    id bigserial PRIMARY KEY,
    customer int NOT NULL REFERENCES "${SOURCE}"."Customers" (id) ON DELETE CASCADE,
    state "${SOURCE}".state NOT NULL DEFAULT 'new',
    quantity "${SOURCE}".qty,
    placed date NOT NULL) ;
  CREATE INDEX ON "${SOURCE}".orders (placed) WHERE state <> 'shipped';
  CREATE TABLE "${SOURCE}".events (at date NOT NULL, body text) PARTITION BY RANGE (at);
  CREATE TABLE "${SOURCE}".events_2026 PARTITION OF "${SOURCE}".events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
  CREATE TABLE "${SOURCE}".events_other PARTITION OF "${SOURCE}".events DEFAULT;
  CREATE TABLE "${SOURCE}".notes (body text, n numeric);
  INSERT INTO "${SOURCE}"."Customers" ("Full Name") SELECT 'Customer ' || g || E'\\t' || repeat('x', g % 7) FROM generate_series(1, 300) g;
  INSERT INTO "${SOURCE}".orders (customer, state, quantity, placed)
    SELECT 1 + g % 300, (ARRAY['new','paid','shipped'])[1 + g % 3]::"${SOURCE}".state, NULLIF(g % 5, 0), date '2026-01-01' + g % 400
      FROM generate_series(1, 3000) g;
  INSERT INTO "${SOURCE}".events SELECT date '2025-06-01' + g % 700, CASE WHEN g % 9 = 0 THEN NULL ELSE 'e' || g END FROM generate_series(1, 2000) g;
  INSERT INTO "${SOURCE}".notes SELECT E'line\\nbreak \\\\ ' || g, CASE WHEN g % 4 = 0 THEN 'NaN' ELSE g / 7.0 END FROM generate_series(1, 1500) g;
  INSERT INTO "${SOURCE}".notes SELECT body, n FROM "${SOURCE}".notes WHERE n < 10;
  CREATE TABLE "${SOURCE}".notes_kept () INHERITS ("${SOURCE}".notes);
  INSERT INTO "${SOURCE}".notes_kept SELECT 'kept ' || g, g FROM generate_series(1, 250) g;`;

/** The columns a part carries: every stored column but generated ones (the restore computes those). */
async function partColumns(db: pg.ClientBase, quotedName: string): Promise<string[]> {
  const { rows } = await db.query<{ attname: string }>(
    `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
        AND attgenerated = '' ORDER BY attnum`,
    [quotedName],
  );
  return rows.map((r) => r.attname);
}

describe('backup building blocks, composed', () => {
  it('restores a schema next to the original with the same rows and working identities', async ({
    database,
    s3,
    bucket,
  }) => {
    // Prepare
    await database.pool.query(SCHEMA);
    const source = await database.pool.connect();
    const target = await database.pool.connect();
    try {
      // Act: back up under one snapshot.
      await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const tables = await selectBackupTables(source, { tables: [`"${SOURCE}".*`], exclude: [] });
      const definition = await readSchemaDefinition(
        source,
        tables.map((t) => t.oid),
      );
      const sql = generateSchemaSql(definition, new Map([[SOURCE, TARGET]]));
      const backedUp: Array<{
        table: string;
        columns: string[];
        only: boolean;
        checksum: { rows: string };
        parts: unknown[];
      }> = [];
      for (const table of tables) {
        const quotedName = quoteQualified(table.schema, table.table);
        const columns = await partColumns(source, quotedName);
        const planned = await planTableParts(
          source,
          { schema: table.schema, name: table.table, quotedName, only: table.only },
          20_000,
        );
        const parts = [];
        for (const part of planned) {
          parts.push(
            await writePart({
              client: source,
              table: { quotedName, columns, only: table.only },
              range: rangePredicate(part.range),
              s3,
              bucket,
              key: `compose/${table.table}/part-${part.index}.sql.gz`,
              compression: { codec: 'gzip', level: 1 },
            }),
          );
        }
        backedUp.push({
          table: table.table,
          columns,
          // Own rows only on both sides (an inheritance child's rows are its own table's, not the parent's),
          // but a partitioned table's rows are all its partitions' (`only` would read none).
          only: table.only,
          checksum: await readContentChecksum(source, quotedName, columns, { only: table.only }),
          parts,
        });
      }
      await source.query('COMMIT');

      // Act: restore into the mapped schema.
      await target.query(sql.preData);
      for (const entry of backedUp) {
        await target.query('BEGIN');
        for (const part of entry.parts as Array<{
          key: string;
          bytes: number;
          sha256: string;
          rows: number;
        }>) {
          await restorePart({
            client: target,
            s3,
            bucket,
            part,
            codec: 'gzip',
            targetQuotedName: quoteQualified(TARGET, entry.table),
            columns: entry.columns,
          });
        }
        await target.query('COMMIT');
      }
      await target.query(sql.postData);

      // Assess: the same rows, table by table, and more than one part where the table is large.
      expect(backedUp.map((b) => b.table)).toEqual(['Customers', 'events', 'notes', 'notes_kept', 'orders']);
      for (const entry of backedUp) {
        const restored = await readContentChecksum(
          target,
          quoteQualified(TARGET, entry.table),
          entry.columns,
          { only: entry.only },
        );
        expect(restored, entry.table).toEqual(entry.checksum);
        expect(Number(restored.rows), entry.table).toBeGreaterThan(0);
      }
      expect(backedUp.find((b) => b.table === 'orders')?.parts.length).toBeGreaterThan(1);
      expect(backedUp.find((b) => b.table === 'notes')?.parts.length).toBeGreaterThan(1);
      // New rows: fresh identity and serial values, the generated column computed, constraints in force.
      const customer = await target.query<{ id: number; name_length: number }>(
        `INSERT INTO "${TARGET}"."Customers" ("Full Name") VALUES ('new one') RETURNING id, name_length`,
      );
      expect(customer.rows[0]).toEqual({ id: 301, name_length: 7 });
      const order = await target.query<{ id: string }>(
        `INSERT INTO "${TARGET}".orders (customer, placed) VALUES (301, '2026-12-02') RETURNING id`,
      );
      expect(order.rows[0]?.id).toBe('3001');
      await expect(
        target.query(
          `INSERT INTO "${TARGET}".orders (customer, placed, quantity) VALUES (301, '2026-12-02', 0)`,
        ),
      ).rejects.toThrow(/violates check constraint/);
      await expect(
        target.query(`INSERT INTO "${TARGET}".orders (customer, placed) VALUES (9999, '2026-12-02')`),
      ).rejects.toThrow(/violates foreign key constraint/);
      const leaves = await target.query<{ relname: string }>(
        `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = $1::regclass ORDER BY 1`,
        [`"${TARGET}".events`],
      );
      expect(leaves.rows.map((r) => r.relname)).toEqual(['events_2026', 'events_other']);
    } finally {
      source.release();
      target.release();
    }
  });

  it('refuses a mapping that leaves a recreated schema in place or puts two objects on one name', async ({
    database,
  }) => {
    await database.pool.query(`
      CREATE SCHEMA m_types; CREATE DOMAIN m_types.posint AS int CHECK (VALUE > 0);
      CREATE SCHEMA m1; CREATE TABLE m1.t (n m_types.posint);
      CREATE SCHEMA m2; CREATE TABLE m2.t (n int);`);
    const tables = await selectBackupTables(database.pool, { tables: ['m1.*', 'm2.*'], exclude: [] });
    const client = await database.pool.connect();
    try {
      const definition = await readSchemaDefinition(
        client,
        tables.map((t) => t.oid),
      );
      expect(() => generateSchemaSql(definition, new Map([['m1', 'r1']]))).toThrow(
        'unmapped: "m2", "m_types"',
      );
      expect(() =>
        generateSchemaSql(
          definition,
          new Map([
            ['m1', 'r'],
            ['m2', 'r'],
            ['m_types', 'r_types'],
          ]),
        ),
      ).toThrow('the mapping places two objects on one name: "m1"."t" and "m2"."t" → "r"."t"');
      expect(() =>
        generateSchemaSql(
          definition,
          new Map([
            ['m1', 'r1'],
            ['m2', 'r2'],
            ['m_types', 'r_types'],
          ]),
        ),
      ).not.toThrow();
    } finally {
      client.release();
    }
  });
});
