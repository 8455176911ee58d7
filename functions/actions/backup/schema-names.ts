/**
 * How schema-sql.ts and type-sql.ts write names and constants: the schema mapping (original schema →
 * target schema) that places what the backup recreates, and the check that a mapping can be used.
 */
import { quoteIdent, quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { QualifiedName, SchemaDefinition, SequenceOptions, TypeReference } from './schema-definition.ts';

/** Original schema → target schema; schemas not in it keep their name. */
export type SchemaMapping = ReadonlyMap<string, string>;

/** A SQL string literal (standard_conforming_strings is set on by the files). */
export function quoteLiteral(text: string): string {
  if (text.includes('\0')) throw new Error('text must not contain NUL');
  return `'${text.replaceAll("'", "''")}'`;
}

const INTEGER = /^-?[0-9]+$/;

/** A number from the catalog, checked before it is written into SQL. */
export function integer(text: string): string {
  if (!INTEGER.test(text)) throw new Error(`expected an integer, got ${JSON.stringify(text)}`);
  return text;
}

/** An object the backup does not place (a collation, an operator class): where it is. */
export function unplaced(name: QualifiedName): string {
  return quoteQualified(name.schema, name.name);
}

export class Names {
  private readonly tables: Set<string>;

  constructor(
    readonly definition: SchemaDefinition,
    private readonly mapping: SchemaMapping,
  ) {
    this.tables = new Set(definition.tables.map((t) => this.key(t)));
  }

  private key(name: QualifiedName): string {
    return `${name.schema}\0${name.name}`;
  }

  schema(original: string): string {
    return this.mapping.get(original) ?? original;
  }

  /** A backed-up object, in its target schema. */
  placed(name: QualifiedName): string {
    return quoteQualified(this.schema(name.schema), name.name);
  }

  /** Whether the backup recreates the table `name`. */
  backsUp(name: QualifiedName): boolean {
    return this.tables.has(this.key(name));
  }

  /** A table a foreign key references: placed when backed up, else where it is. */
  referenced(name: QualifiedName): string {
    return this.backsUp(name) ? this.placed(name) : unplaced(name);
  }

  type(reference: TypeReference): string {
    if (reference.kind === 'printed') return reference.text;
    return `${this.placed(reference.type)}${reference.array ? '[]' : ''}`;
  }

  /** Targets first (where the recreated objects are), then the mapped originals (everything else). */
  searchPath(): string {
    const targets = this.definition.searchPath.map((s) => this.schema(s));
    const originals = this.definition.searchPath.filter((s) => this.schema(s) !== s);
    return [...new Set([...targets, ...originals])].map(quoteIdent).join(', ');
  }
}

export function sequenceOptions(options: SequenceOptions): string {
  return [
    `START WITH ${integer(options.start)}`,
    `INCREMENT BY ${integer(options.increment)}`,
    `MINVALUE ${integer(options.min)}`,
    `MAXVALUE ${integer(options.max)}`,
    `CACHE ${integer(options.cache)}`,
    options.cycle ? 'CYCLE' : 'NO CYCLE',
  ].join(' ');
}

/**
 * A mapping (restoring next to the original) must move every schema the backup recreates objects in: a type or
 * sequence left in its original schema would collide with the original in the same database. And it must not
 * place two recreated objects on one name (two schemas mapped onto one, both with a table `t`).
 * @throws Error naming the schemas left unmapped or the names that collide
 */
export function checkMapping(definition: SchemaDefinition, mapping: SchemaMapping): void {
  if (mapping.size === 0) return;
  const unmapped = definition.searchPath.filter((schema) => (mapping.get(schema) ?? schema) === schema);
  if (unmapped.length > 0) {
    throw new Error(
      `restoring into other schemas needs a target for every schema the backup recreates objects in; ` +
        `unmapped: ${unmapped.map(quoteIdent).join(', ')}`,
    );
  }
  // Tables, sequences and types share a namespace per schema (pg_class and pg_type: a table or a composite
  // type has a row type, a range its multirange).
  const placed = new Map<string, string>();
  const collisions: string[] = [];
  const multiranges = definition.types.flatMap((t) =>
    t.kind === 'range' && t.multirange ? [t.multirange] : [],
  );
  for (const object of [...definition.tables, ...definition.sequences, ...definition.types, ...multiranges]) {
    const target = quoteQualified(mapping.get(object.schema) ?? object.schema, object.name);
    const original = quoteQualified(object.schema, object.name);
    const other = placed.get(target);
    if (other !== undefined && other !== original) collisions.push(`${other} and ${original} → ${target}`);
    placed.set(target, original);
  }
  if (collisions.length > 0)
    throw new Error(`the mapping places two objects on one name: ${collisions.join('; ')}`);
}
