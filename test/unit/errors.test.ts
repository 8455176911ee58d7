/** Run errors: one base, spelled-out names (Step Functions matches on them) and fields without row values. */
import { describe, expect, it } from 'vitest';
import {
  CatalogError,
  classifyDatabaseError,
  DatabaseError,
  ForeignKeyError,
  LifecycleError,
  TransientDatabaseError,
} from '../../functions/core/errors.ts';
import { PgTextParseError } from '../../functions/core/parquet/errors.ts';
import { PartitionBoundError } from '../../functions/core/partitions.ts';
import { PartitionRetentionError } from '../../functions/run/partitions/strategy.ts';

/** What pg's client makes of a server error: a SQLSTATE, a severity and the fields the server set. */
function serverError(fields: { code: string; message: string; detail?: string; table?: string }): Error {
  return Object.assign(new Error(fields.message), { severity: 'ERROR', schema: 'public', ...fields });
}

describe('LifecycleError', () => {
  it('carries policy, table and sqlstate beside the message and the cause', () => {
    // Prepare
    const cause = new Error('underlying');

    // Act
    const error = new CatalogError('table events does not exist', { table: 'events', policy: 'p', cause });

    // Assess
    expect(error).toBeInstanceOf(LifecycleError);
    expect(error.name).toBe('CatalogError');
    expect(error.message).toBe('table events does not exist');
    expect(error).toMatchObject({ table: 'events', policy: 'p', sqlstate: undefined });
    expect(error.cause).toBe(cause);
  });

  it('keeps no cause property when none was given', () => {
    expect(Object.hasOwn(new CatalogError('x'), 'cause')).toBe(false);
  });

  it('is the base of the partition and Parquet errors, whose names stay their own', () => {
    const errors = [
      new PartitionRetentionError('r'),
      new PartitionBoundError('b'),
      new PgTextParseError('t'),
    ];
    expect(errors.every((e) => e instanceof LifecycleError)).toBe(true);
    expect(errors.map((e) => e.name)).toEqual([
      'PartitionRetentionError',
      'PartitionBoundError',
      'PgTextParseError',
    ]);
  });
});

describe('classifyDatabaseError', () => {
  it('keeps the SQLSTATE and the table the server named, never the value in the message or DETAIL', () => {
    // Prepare
    const unique = serverError({
      code: '23505',
      message: 'duplicate key value violates unique constraint "events_pkey"',
      detail: 'Key (id)=(secret-42) already exists.',
      table: 'events',
    });

    // Act
    const error = classifyDatabaseError(unique) as DatabaseError;

    // Assess
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({
      name: 'DatabaseError',
      sqlstate: '23505',
      code: '23505',
      table: 'public.events',
    });
    expect(error.cause).toBeUndefined();
    expect(JSON.stringify({ ...error, message: error.message })).not.toContain('secret-42');
  });

  it('gives a foreign-key violation and a transient error their SQLSTATE', () => {
    const fk = classifyDatabaseError(
      serverError({ code: '23503', message: 'update or delete violates foreign key', table: 'events' }),
    );
    const timeout = classifyDatabaseError(
      serverError({ code: '55P03', message: 'canceling statement due to lock timeout' }),
    );
    expect(fk).toBeInstanceOf(ForeignKeyError);
    expect(fk).toMatchObject({ name: 'ForeignKeyError', sqlstate: '23503', table: 'public.events' });
    expect(timeout).toBeInstanceOf(TransientDatabaseError);
    expect(timeout).toMatchObject({ name: 'TransientDatabaseError', sqlstate: '55P03' });
  });

  it('passes a LifecycleError through unchanged', () => {
    const error = new PartitionBoundError('not a range bound: DEFAULT');
    expect(classifyDatabaseError(error)).toBe(error);
  });
});
