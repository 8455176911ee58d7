/**
 * One column as resolved from pg_catalog (domains resolved to their base type).
 *
 * Produced by the catalog adapter and consumed by pure code (chunk SQL, Parquet planning), so it
 * carries only what those need and nothing tied to a connection.
 */
export interface CatalogColumn {
  /** Exact column name (may be mixed case, contain spaces). */
  readonly name: string;
  /** `format_type(atttypid, atttypmod)`, e.g. 'numeric(12,2)', 'timestamp with time zone', 'integer[]'. */
  readonly typeName: string;
  /**
   * `pg_type.typname` of the (element) base type: 'int8', 'int4', 'int2', 'numeric', 'float4', 'float8',
   * 'bool', 'text', 'varchar', 'bpchar', 'uuid', 'json', 'jsonb', 'bytea', 'date', 'timestamp',
   * 'timestamptz', 'time', 'timetz', 'interval', 'inet', ...
   */
  readonly baseType: string;
  /**
   * The base type is pg_catalog's: false for a user type that merely shares a built-in's name (an enum called
   * `bool` in another schema). Readers of binary send formats trust `baseType` only when this is true;
   * undefined counts as false.
   */
  readonly baseTypeBuiltin?: boolean;
  /** True for array types (the element type is in `baseType`). */
  readonly isArray: boolean;
  /** `attndims` when known (often 0 even for arrays: PostgreSQL does not enforce it). */
  readonly arrayDims?: number;
  /** Declared precision of numeric(p,s). */
  readonly numericPrecision?: number;
  /** Declared scale of numeric(p,s); negative or larger than the precision since PostgreSQL 15. */
  readonly numericScale?: number;
  readonly notNull: boolean;
}
