/**
 * Reads what a PostgreSQL node tree (the text form of `nodeToString`: a parse tree sent by
 * `debug_print_parse`, a view's `pg_rewrite.ev_action`, a policy's `pg_policy.polqual`, a domain's
 * `pg_constraint.conbin`) makes the server call: functions and operators by OID, domain types whose CHECK
 * constraints run, relations it reads. These are what PostgreSQL resolved, whatever the spelling in the
 * source text (Unicode escapes, quoting, schema qualification, OPERATOR(...), casts).
 *
 * Reading more than is there is safe (the check only refuses more); missing something is not. So every
 * field that names a function or operator is collected wherever it appears, and string-like tokens
 * (aliases, column names) can never hide a field: the server escapes whitespace and brackets inside them.
 */

/** What a node tree calls and reads (OIDs as decimal strings). */
export interface NodeTreeReferences {
  /** pg_proc OIDs: functions, operator implementations, aggregates, window functions, support functions. */
  readonly functions: ReadonlySet<string>;
  /** pg_operator OIDs (their implementing function is checked too: `opfuncid` is not always filled in). */
  readonly operators: ReadonlySet<string>;
  /**
   * Types of the values the tree produces (results of functions, operators, casts, coercions, literals,
   * row constructors, column definition lists), not of the columns it merely reads: producing a value of a
   * domain type, or of a row or array type holding one, runs the domain's CHECK constraints.
   */
  readonly producedTypes: ReadonlySet<string>;
  /** Relations read, with their relkind (`r`, `p`, `v`, `m`, `f`, …). */
  readonly relations: ReadonlyMap<string, string>;
  /** A (sub)query locks rows (FOR UPDATE / FOR SHARE). */
  readonly locksRows: boolean;
}

const OID = /^[0-9]+$/;

/** Fields holding one function OID. */
const FUNCTION_FIELDS = new Set([
  ':funcid',
  ':opfuncid',
  ':hashfuncid',
  ':negfuncid',
  ':aggfnoid',
  ':winfnoid',
  ':startInRangeFunc',
  ':endInRangeFunc',
  ':tsmhandler',
]);

/** Fields holding one operator OID. */
const OPERATOR_FIELDS = new Set([':opno', ':eqop', ':sortop']);

/** Fields holding a list of operator OIDs, written `(o 96 97)`. */
const OPERATOR_LIST_FIELDS = new Set([':opnos']);

/** Fields holding the type of a value the node produces. */
const PRODUCED_TYPE_FIELDS = new Set([
  ':resulttype',
  ':funcresulttype',
  ':opresulttype',
  ':consttype',
  ':row_typeid',
  ':aggtype',
  ':wintype',
  ':minmaxtype',
  ':array_typeid',
]);

/**
 * Fields holding a list of produced types, written `(o 23 25)`: a function's column definition list, the
 * columns of XMLTABLE (each value goes through the column type's input, domain CHECKs included), VALUES.
 */
const PRODUCED_TYPE_LIST_FIELDS = new Set([':funccoltypes', ':coltypes']);

/** The OIDs of an `(o 1 2 …)` list starting at `tokens[start]` (the `(`). */
function oidList(tokens: readonly string[], start: number): string[] {
  const oids: string[] = [];
  if (tokens[start] !== '(') return oids;
  for (let j = start + 1; j < tokens.length && tokens[j] !== ')'; j++) {
    const item = tokens[j] as string;
    if (OID.test(item) && item !== '0') oids.push(item);
  }
  return oids;
}

/** Splits node text into tokens as PostgreSQL's `pg_strtok` does: `(){}` stand alone, `\x` escapes x. */
export function tokenizeNodeTree(text: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < text.length) {
    const char = text[i] as string;
    if (char === ' ' || char === '\n' || char === '\t' || char === '\r') {
      i++;
      continue;
    }
    if (char === '(' || char === ')' || char === '{' || char === '}') {
      tokens.push(char);
      i++;
      continue;
    }
    let token = '';
    while (i < text.length) {
      const c = text[i] as string;
      if (
        c === ' ' ||
        c === '\n' ||
        c === '\t' ||
        c === '\r' ||
        c === '(' ||
        c === ')' ||
        c === '{' ||
        c === '}'
      )
        break;
      if (c === '\\' && i + 1 < text.length) {
        token += text.slice(i, i + 2);
        i += 2;
        continue;
      }
      token += c;
      i++;
    }
    tokens.push(token);
  }
  return tokens;
}

/** Collects the references of one node tree (see {@link NodeTreeReferences}). */
export function readNodeTreeReferences(text: string): NodeTreeReferences {
  const tokens = tokenizeNodeTree(text);
  const functions = new Set<string>();
  const operators = new Set<string>();
  const producedTypes = new Set<string>();
  const relations = new Map<string, string>();
  let locksRows = false;
  // Node names from the outermost `{` to the innermost; fields belong to the innermost.
  const nodes: string[] = [];
  // The relid and relkind of the RANGETBLENTRY being read (they come in that order).
  let pendingRelid: string | undefined;

  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    if (token === '{') {
      nodes.push(tokens[i + 1] ?? '');
      i++;
      continue;
    }
    if (token === '}') {
      nodes.pop();
      continue;
    }
    if (!token.startsWith(':')) continue;
    const value = tokens[i + 1] ?? '';
    const node = nodes.at(-1);
    if (FUNCTION_FIELDS.has(token) && OID.test(value)) {
      if (value !== '0') functions.add(value);
    } else if (OPERATOR_FIELDS.has(token) && OID.test(value)) {
      if (value !== '0') operators.add(value);
    } else if (OPERATOR_LIST_FIELDS.has(token)) {
      for (const oid of oidList(tokens, i + 1)) operators.add(oid);
    } else if (PRODUCED_TYPE_FIELDS.has(token) && OID.test(value)) {
      if (value !== '0') producedTypes.add(value);
    } else if (PRODUCED_TYPE_LIST_FIELDS.has(token)) {
      for (const oid of oidList(tokens, i + 1)) producedTypes.add(oid);
    } else if (token === ':relid' && node === 'RANGETBLENTRY' && OID.test(value)) {
      pendingRelid = value === '0' ? undefined : value;
    } else if (token === ':relkind' && node === 'RANGETBLENTRY' && pendingRelid !== undefined) {
      relations.set(pendingRelid, value);
      pendingRelid = undefined;
    } else if (token === ':hasForUpdate' && value === 'true') {
      locksRows = true;
    } else if (token === ':rowMarks' && value !== '<>') {
      locksRows = true;
    }
  }
  return { functions, operators, producedTypes, relations, locksRows };
}

/** The union of several trees' references. */
export function mergeNodeTreeReferences(all: readonly NodeTreeReferences[]): NodeTreeReferences {
  const union = <T>(pick: (r: NodeTreeReferences) => ReadonlySet<T>) =>
    new Set(all.flatMap((r) => [...pick(r)]));
  const relations = new Map<string, string>();
  for (const r of all) for (const [oid, kind] of r.relations) relations.set(oid, kind);
  return {
    functions: union((r) => r.functions),
    operators: union((r) => r.operators),
    producedTypes: union((r) => r.producedTypes),
    relations,
    locksRows: all.some((r) => r.locksRows),
  };
}
