/**
 * What a backup's schema.sql and post-data.sql are generated from: the tables as read from pg_catalog
 * (table-definition.ts), in a typed form that names every backed-up object by schema and name, so that
 * schema-sql.ts can place them in another schema without rewriting catalog-printed text.
 *
 * Expressions (defaults, CHECKs, generated columns, index expressions and predicates, partition keys and
 * bounds, domain defaults and CHECKs) are PostgreSQL's own text, printed with `search_path` set to
 * `searchPath`: a reference to anything in those schemas comes out unqualified, anything elsewhere
 * qualified. The generated SQL sets an equivalent search path before using them (see schema-sql.ts).
 */

export interface QualifiedName {
  readonly schema: string;
  readonly name: string;
}

/**
 * A column's (or a domain's base, a composite's attribute, a range's subtype) type: a type the backup
 * recreates (placed by the schema mapping), or any other type as format_type printed it under `searchPath`.
 */
export type TypeReference =
  | { readonly kind: 'backed-up'; readonly type: QualifiedName; readonly array: boolean }
  | { readonly kind: 'printed'; readonly text: string };

export interface EnumDefinition extends QualifiedName {
  readonly kind: 'enum';
  /** In enumsortorder: the order comparisons use, which a restore must keep. */
  readonly labels: readonly string[];
}

export interface DomainDefinition extends QualifiedName {
  readonly kind: 'domain';
  readonly baseType: TypeReference;
  readonly collation?: QualifiedName;
  readonly default?: string;
  readonly notNull: boolean;
  /** pg_get_constraintdef: `CHECK (...)`, with ` NOT VALID` when not validated. */
  readonly checks: ReadonlyArray<{
    readonly name: string;
    readonly definition: string;
    readonly validated: boolean;
  }>;
}

/** A stand-alone composite type (CREATE TYPE … AS (…)); a table's row type is not one. */
export interface CompositeDefinition extends QualifiedName {
  readonly kind: 'composite';
  readonly attributes: ReadonlyArray<{
    readonly name: string;
    readonly type: TypeReference;
    /** Only when it differs from the type's own collation. */
    readonly collation?: QualifiedName;
  }>;
}

/**
 * A range type the backup can recreate: no canonical function (that is a C function of its own), and a
 * subtype_diff function and operator class that PostgreSQL or an extension provides.
 */
export interface RangeDefinition extends QualifiedName {
  readonly kind: 'range';
  readonly subtype: TypeReference;
  /** Only when not the subtype's default btree operator class. */
  readonly opclass?: QualifiedName;
  /** Only when not the subtype's own collation. */
  readonly collation?: QualifiedName;
  readonly subtypeDiff?: QualifiedName;
  /** PostgreSQL 14+: created with the range, placed by the mapping like it. */
  readonly multirange?: QualifiedName;
}

export type TypeDefinition = EnumDefinition | DomainDefinition | CompositeDefinition | RangeDefinition;

/** An extension whose objects (types, operator classes, functions) the backed-up tables use. */
export interface ExtensionDefinition {
  readonly name: string;
  /** Where its objects are: schema.sql creates it there (never mapped), so printed references still hold. */
  readonly schema: string;
  readonly version: string;
}

/** pg_sequence, as text: bigint bounds do not fit a JS number. */
export interface SequenceOptions {
  /** format_type of seqtypid: smallint, integer or bigint. */
  readonly dataType: string;
  readonly start: string;
  readonly increment: string;
  readonly min: string;
  readonly max: string;
  readonly cache: string;
  readonly cycle: boolean;
}

/** Where the sequence stands: what `setval(seq, lastValue, isCalled)` puts back. */
export interface SequenceState {
  readonly lastValue: string;
  readonly isCalled: boolean;
}

/**
 * A sequence owned by a backed-up column through `serial`/OWNED BY (identity sequences are on the column),
 * or one a backed-up default (`nextval('s.seq'::regclass)`) uses that no backed-up column owns: recreated
 * all the same, without an owner, else the restored default names a sequence that is not there.
 */
export interface SequenceDefinition extends QualifiedName {
  readonly options: SequenceOptions;
  readonly state: SequenceState;
  readonly ownedBy?: { readonly table: QualifiedName; readonly column: string };
}

export interface IdentityDefinition {
  readonly generation: 'always' | 'by default';
  readonly sequence: QualifiedName;
  readonly options: SequenceOptions;
  readonly state: SequenceState;
}

export interface ColumnDefinition {
  readonly name: string;
  readonly type: TypeReference;
  /** Only when it differs from the type's own collation. */
  readonly collation?: QualifiedName;
  readonly notNull: boolean;
  readonly default?: string;
  readonly generated?: { readonly expression: string; readonly stored: boolean };
  readonly identity?: IdentityDefinition;
  readonly comment?: string;
}

/** A CHECK declared on this table (not one a partition inherits). */
export interface CheckDefinition {
  readonly name: string;
  /** pg_get_constraintdef: `CHECK (...)` (+ ` NO INHERIT`, ` NOT VALID`). */
  readonly definition: string;
  readonly validated: boolean;
}

/** PRIMARY KEY, UNIQUE or EXCLUDE declared on this table; pg_get_constraintdef names only its columns. */
export interface KeyDefinition {
  readonly name: string;
  readonly kind: 'primary key' | 'unique' | 'exclude';
  readonly definition: string;
}

export type ReferentialAction = 'no action' | 'restrict' | 'cascade' | 'set null' | 'set default';

export interface ForeignKeyDefinition {
  readonly name: string;
  readonly columns: readonly string[];
  /** Placed by the mapping when it is a backed-up table, else left where it is. */
  readonly references: QualifiedName;
  readonly referencedColumns: readonly string[];
  readonly matchFull: boolean;
  readonly onUpdate: ReferentialAction;
  readonly onDelete: ReferentialAction;
  /** ON DELETE SET NULL/SET DEFAULT (columns), PostgreSQL 15+. */
  readonly onDeleteColumns: readonly string[];
  readonly deferrable: boolean;
  readonly initiallyDeferred: boolean;
  readonly validated: boolean;
}

export type IndexKey = (
  | { readonly column: string }
  /** pg_get_indexdef(index, n, true): the expression without the parentheses CREATE INDEX needs. */
  | { readonly expression: string }
) & {
  readonly collation?: QualifiedName;
  /** Only when not the default operator class. */
  readonly opclass?: QualifiedName;
  readonly descending: boolean;
  readonly nullsFirst: boolean;
};

/** An index no constraint owns (those come back with their constraint). */
export interface IndexDefinition {
  readonly name: string;
  readonly unique: boolean;
  /** UNIQUE NULLS NOT DISTINCT, PostgreSQL 15+. */
  readonly nullsNotDistinct: boolean;
  readonly method: string;
  readonly keys: readonly IndexKey[];
  readonly include: readonly string[];
  readonly predicate?: string;
  readonly options: readonly string[];
}

export interface TableDefinition extends QualifiedName {
  readonly oid: string;
  readonly unlogged: boolean;
  /** pg_class.reloptions, `name=value`. */
  readonly options: readonly string[];
  /** pg_get_partkeydef, e.g. `RANGE (created_at)`, when the table is partitioned. */
  readonly partitionBy?: string;
  /** When its parent is backed up too: the parent and `FOR VALUES …` / `DEFAULT`. */
  readonly partitionOf?: { readonly parent: QualifiedName; readonly bound: string };
  readonly columns: readonly ColumnDefinition[];
  readonly checks: readonly CheckDefinition[];
  readonly keys: readonly KeyDefinition[];
  readonly foreignKeys: readonly ForeignKeyDefinition[];
  readonly indexes: readonly IndexDefinition[];
  readonly comment?: string;
}

/** What a restore of this table will not bring back; the manifest lists it. */
export interface TableNotIncluded extends QualifiedName {
  readonly triggers: readonly string[];
  readonly rowSecurity: { readonly enabled: boolean; readonly forced: boolean };
  readonly policies: readonly string[];
  readonly rules: readonly string[];
  readonly owner: string;
  /** aclitem text of table and column privileges; empty when never granted (the owner's defaults). */
  readonly grants: readonly string[];
  readonly dependentViews: readonly QualifiedName[];
  /** `schema.name(arguments)` of functions that depend on the table or its row type. */
  readonly dependentFunctions: readonly string[];
  /** Foreign keys of tables outside the backup that reference this one. */
  readonly referencedBy: ReadonlyArray<{ readonly constraint: string; readonly table: QualifiedName }>;
  /** INHERITS parents (not partitioning): the restored table stands alone. */
  readonly inheritsFrom: readonly QualifiedName[];
  /**
   * What its columns, defaults, constraints and indexes use that the backup does not create and a fresh
   * database lacks, one `<kind> <name> used by <where>` each: user functions, operators, operator classes,
   * collations, types it cannot recreate, tables outside the backup its foreign keys reference.
   */
  readonly requires: readonly string[];
}

export interface NotIncluded {
  readonly tables: readonly TableNotIncluded[];
  /** pg_largeobject_metadata rows: large objects belong to the database, never to a table's backup. */
  readonly largeObjects: number;
  /** schema.sql creates them when missing, but the target server must provide them (and a fitting version). */
  readonly extensions: readonly ExtensionDefinition[];
}

export interface SchemaDefinition {
  /** PostgreSQL's server_version_num of the source. */
  readonly serverVersionNum: number;
  /** Every schema holding a backed-up object, in the order `search_path` had while expressions were printed. */
  readonly searchPath: readonly string[];
  /** Extensions to create first, an extension after those it requires. */
  readonly extensions: readonly ExtensionDefinition[];
  /** Enums, domains, composite and range types, each after the types it is built from. */
  readonly types: readonly TypeDefinition[];
  readonly sequences: readonly SequenceDefinition[];
  /** Partitioned parents before their partitions. */
  readonly tables: readonly TableDefinition[];
  readonly notIncluded: NotIncluded;
}

function display(name: QualifiedName): string {
  return `${name.schema}.${name.name}`;
}

/** The report as the manifest's `notIncluded` lines, one per thing left out (nothing left out: no line). */
export function describeNotIncluded(report: NotIncluded): string[] {
  const lines: string[] = [];
  const list = (items: readonly string[]) => items.join(', ');
  for (const t of report.tables) {
    const table = display(t);
    if (t.triggers.length > 0) lines.push(`${table}: triggers ${list(t.triggers)}`);
    if (t.rowSecurity.enabled || t.policies.length > 0) {
      const state = t.rowSecurity.enabled
        ? t.rowSecurity.forced
          ? 'enabled, forced'
          : 'enabled'
        : 'disabled';
      lines.push(`${table}: row level security (${state}), policies ${list(t.policies) || 'none'}`);
    }
    if (t.rules.length > 0) lines.push(`${table}: rules ${list(t.rules)}`);
    lines.push(`${table}: owner ${t.owner}${t.grants.length > 0 ? `, grants ${list(t.grants)}` : ''}`);
    if (t.dependentViews.length > 0) lines.push(`${table}: views ${list(t.dependentViews.map(display))}`);
    if (t.dependentFunctions.length > 0) lines.push(`${table}: functions ${list(t.dependentFunctions)}`);
    for (const ref of t.referencedBy) {
      lines.push(`${table}: foreign key ${ref.constraint} of ${display(ref.table)} referencing it`);
    }
    if (t.inheritsFrom.length > 0) lines.push(`${table}: inherits from ${list(t.inheritsFrom.map(display))}`);
    for (const item of t.requires) lines.push(`${table}: needs ${item}, not created by the backup`);
  }
  if (report.largeObjects > 0) lines.push(`large objects: ${report.largeObjects} in the database`);
  for (const e of report.extensions) {
    lines.push(
      `extension ${e.name} ${e.version} (schema ${e.schema}): created by schema.sql when missing; ` +
        'the target server must provide it',
    );
  }
  return lines;
}
