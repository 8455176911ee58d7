/** Which privileges a run lacks, decided from catalog facts (functions/core/privileges.ts). */
import { describe, expect, it } from 'vitest';
import { InsufficientPrivilegeError } from '../../functions/core/errors.ts';
import {
  type LedgerPrivileges,
  type LedgerRelation,
  missingLagPrivileges,
  missingLedgerPrivileges,
  type TablePrivileges,
  tablesAlteredBy,
} from '../../functions/core/privileges.ts';

const table = (name: string, overrides: Partial<LedgerRelation> = {}): LedgerRelation => ({
  name,
  kind: 'r',
  select: true,
  insert: true,
  update: true,
  delete: true,
  usage: false,
  owner: false,
  ...overrides,
});

const ledger = (overrides: Partial<LedgerPrivileges> = {}): LedgerPrivileges => ({
  database: 'app',
  createOnDatabase: false,
  schemaExists: true,
  schemaUsage: true,
  schemaCreate: false,
  relations: [table('lifecycle.runs'), table('lifecycle.leases'), table('lifecycle.schema_migrations')],
  appliedMigrations: ['001_ledger', '002_maintenance'],
  ...overrides,
});

const migrations = [
  { version: '001_ledger', sql: 'CREATE TABLE lifecycle.runs (…); CREATE TABLE lifecycle.leases (…);' },
  { version: '002_maintenance', sql: 'ALTER TABLE lifecycle.runs ADD COLUMN maintenance jsonb;' },
];

describe('missingLedgerPrivileges', () => {
  it('needs CREATE on the database only while the ledger schema does not exist', () => {
    expect(
      missingLedgerPrivileges(ledger({ schemaExists: false, createOnDatabase: true }), migrations),
    ).toEqual([]);
    expect(missingLedgerPrivileges(ledger({ schemaExists: false }), migrations)).toEqual([
      expect.objectContaining({ privilege: 'CREATE', object: 'database app' }),
    ]);
    // An existing, current ledger: DML on it is enough, no CREATE anywhere.
    expect(missingLedgerPrivileges(ledger(), migrations)).toEqual([]);
  });

  it('names the ledger privileges a role lacks, per table', () => {
    const facts = ledger({
      schemaUsage: false,
      relations: [
        table('lifecycle.runs', { insert: false, delete: false }),
        table('lifecycle.archived_objects_object_id_seq', { kind: 'S', usage: false }),
      ],
    });
    expect(missingLedgerPrivileges(facts, migrations).map((m) => `${m.privilege} on ${m.object}`)).toEqual([
      'USAGE on schema lifecycle',
      'INSERT, DELETE on lifecycle.runs',
      'USAGE on lifecycle.archived_objects_object_id_seq',
    ]);
  });

  it('while a migration is pending, needs CREATE on the schema and to own the tables it alters', () => {
    const pending = [
      ...migrations,
      {
        version: '003_more',
        sql: 'ALTER TABLE lifecycle.leases ADD COLUMN x int; CREATE TABLE lifecycle.extra (a int); CREATE INDEX e ON lifecycle.extra (a);',
      },
    ];
    const missing = missingLedgerPrivileges(ledger(), pending).map((m) => `${m.privilege} on ${m.object}`);
    // lifecycle.extra does not exist yet: the migration creates it, owned by the role.
    expect(missing).toEqual(['CREATE on schema lifecycle', 'ownership on lifecycle.leases']);
    expect(
      missingLedgerPrivileges(
        ledger({ schemaCreate: true, relations: [table('lifecycle.leases', { owner: true })] }),
        pending,
      ),
    ).toEqual([]);
  });
});

describe('tablesAlteredBy', () => {
  it('finds the ledger tables a migration alters, indexes or drops', () => {
    expect(
      tablesAlteredBy(`ALTER TABLE lifecycle.runs ADD COLUMN a int;
        alter table if exists only lifecycle.Leases drop column b;
        CREATE INDEX i ON lifecycle.chunks (run_id);
        DROP TABLE IF EXISTS lifecycle.old;
        CREATE TABLE lifecycle.fresh (id uuid REFERENCES lifecycle.runs ON DELETE CASCADE);`),
    ).toEqual(['lifecycle.runs', 'lifecycle.leases', 'lifecycle.chunks', 'lifecycle.old']);
  });
});

describe('InsufficientPrivilegeError', () => {
  it('names each missing privilege and its object in one line', () => {
    const error = new InsufficientPrivilegeError('app', [
      { privilege: 'DELETE', object: 'public.events', reason: 'archive deletes the eligible rows' },
      { privilege: 'ownership', object: 'public.readings', reason: 'partition retention detaches it' },
    ]);
    expect(error.name).toBe('InsufficientPrivilegeError');
    expect(error.message).toBe(
      'role app lacks DELETE on public.events (archive deletes the eligible rows); ' +
        'role app does not own public.readings (partition retention detaches it). Nothing was changed.',
    );
  });
});

describe('missingLagPrivileges', () => {
  const facts = (readAllStats: boolean): TablePrivileges => ({
    role: 'app',
    table: 'public.events',
    select: true,
    update: true,
    delete: true,
    owner: true,
    vacuum: true,
    readAllStats,
  });

  it('refuses a replica-lag guard on pg_stat_replication that the role cannot see through', () => {
    const missing = missingLagPrivileges(facts(false), { lagFromStatistics: true });
    expect(new InsufficientPrivilegeError('app', missing).message).toMatch(
      /role app is not a member of role pg_monitor \(the replica-lag guard reads pg_stat_replication.*would read 0/,
    );
  });

  it('needs nothing without a guard, with pg_monitor, or with the lag read from CloudWatch', () => {
    expect(missingLagPrivileges(facts(false), { lagFromStatistics: false })).toEqual([]);
    expect(missingLagPrivileges(facts(true), { lagFromStatistics: true })).toEqual([]);
  });
});
