/**
 * Reading PostgreSQL node trees (what the filter guard checks): every function and operator field is found
 * wherever it sits, and names the server escaped (aliases, column names) cannot add or hide a field.
 */
import { describe, expect, it } from 'vitest';
import { readNodeTreeReferences, tokenizeNodeTree } from '../../functions/core/node-tree.ts';

// Shaped like PostgreSQL 15's debug_print_parse output (trimmed), line breaks where the server puts them.
const TREE = String.raw`{QUERY :commandType 1 :utilityStmt <> :hasForUpdate false :rtable
({RANGETBLENTRY :alias {ALIAS :aliasname odd\ :funcid\ 99\ \{x\} :colnames <>} :eref {ALIAS :aliasname t
:colnames ("id" "a\ b")} :rtekind 0 :relid 16433 :relkind r :rellockmode 1} {RANGETBLENTRY :rtekind 1
:relid 0 :relkind <> :subquery {QUERY :hasForUpdate false :rowMarks <> :rtable ({RANGETBLENTRY :rtekind 0
:relid 16450 :relkind v})}}) :jointree {FROMEXPR :quals {BOOLEXPR :boolop and :args ({OPEXPR :opno 1322
:opfuncid 1154 :args ({VAR :varno 1 :vartype 1184} {PARAM :paramid 1})} {FUNCEXPR :funcid 16407
:funcresulttype 25 :args ({CONST :consttype 25 :constvalue 4 [ 58 102 117 110 ]})} {SCALARARRAYOPEXPR
:opno 96 :opfuncid 65 :hashfuncid 0 :negfuncid 0} {ROWCOMPARE :rctype 1 :opnos (o 97 521) :opfamilies
(o 1976 1976)} {RELABELTYPE :arg {COERCETODOMAIN :arg {VAR :vartype 23} :resulttype 16445} :resulttype 23}
{COERCEVIAIO :arg {VAR :vartype 25} :resulttype 16500} {AGGREF :aggfnoid 2147 :aggtype 20}
{SORTGROUPCLAUSE :tleSortGroupRef 1 :eqop 96 :sortop 97 :nulls_first false :hashable true})}}}`;

describe('node trees', () => {
  it('tokenizes as pg_strtok does: brackets stand alone, a backslash escapes the next character', () => {
    expect(tokenizeNodeTree(String.raw`{A :x odd\ name\} :y (o 1 2)}`)).toEqual([
      '{',
      'A',
      ':x',
      String.raw`odd\ name\}`,
      ':y',
      '(',
      'o',
      '1',
      '2',
      ')',
      '}',
    ]);
  });

  it('collects functions, operators, made types and relations wherever they are', () => {
    const refs = readNodeTreeReferences(TREE);
    expect([...refs.functions].sort()).toEqual(['1154', '16407', '2147', '65']);
    expect([...refs.operators].sort()).toEqual(['1322', '521', '96', '97']);
    // Made: literals, function results, the domain coercion, the relabel, the I/O cast, the aggregate.
    expect([...refs.producedTypes].sort()).toEqual(['16445', '16500', '20', '23', '25']);
    // Only read (a column of the table): reading a value runs no CHECK.
    expect(refs.producedTypes.has('1184')).toBe(false);
    expect([...refs.relations]).toEqual([
      ['16433', 'r'],
      ['16450', 'v'],
    ]);
    expect(refs.locksRows).toBe(false);
  });

  it('does not read an escaped alias as a field (its ":funcid 99" is part of a name)', () => {
    expect(readNodeTreeReferences(TREE).functions.has('99')).toBe(false);
  });

  it('notices row locks in any (sub)query', () => {
    expect(readNodeTreeReferences('{QUERY :hasForUpdate true :rowMarks <>}').locksRows).toBe(true);
    expect(
      readNodeTreeReferences('{QUERY :rowMarks ({ROWMARKCLAUSE :rti 1 :strength 2 :waitPolicy 0})}')
        .locksRows,
    ).toBe(true);
  });
});
