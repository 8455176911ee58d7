/**
 * The static screen of a policy's `filter`, the one piece of config that is SQL rather than an identifier.
 * What the filter calls is checked again by PostgreSQL itself when a run starts
 * (functions/adapters/filter-references.ts); this screen keeps out what must never reach the server.
 */
import { z } from 'zod';
import { parseQualifiedName } from './identifiers.ts';

/**
 * A SQL boolean expression spliced into the chunk query. It is the one piece of config that is not an
 * identifier, so it is screened here (no statement separators, comments or transaction control) and
 * checked again with EXPLAIN against the real table when a run starts.
 */
export const FilterSchema = z
  .string()
  .min(1)
  .max(2000)
  .superRefine((value, ctx) => {
    const problem = screenFilterExpression(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * The expression with every string literal and quoted identifier replaced by a placeholder, read left to
 * right as PostgreSQL reads it ('…' with '' for a quote, "…" with ""; E'…' is refused).
 * What remains is what the screen may look at: `note <> 'a;b'` is fine, `E'\'' ) OR (true` is not.
 * Plain '…' literals take a backslash literally because every session sets standard_conforming_strings.
 */
function maskQuoted(expression: string): { masked: string; literals: number } | { problem: string } {
  let masked = '';
  let literals = 0;
  let i = 0;
  while (i < expression.length) {
    const char = expression[i] as string;
    if (char !== "'" && char !== '"') {
      masked += char;
      i++;
      continue;
    }
    // E'…' escape strings are refused: a backslash there escapes a quote, and a literal continued on the
    // next line ('…' after a newline) stays in escape mode. Only an E right before the quote says so; a
    // word ending in e must leave a space (time 'x', not time'x').
    if (char === "'" && /[eE]/.test(masked.at(-1) ?? '')) {
      return { problem: "must not contain E'…' escape strings (write the characters themselves)" };
    }
    // U&'…' and U&"…" spell characters as code points: a function name written U&"dblink_exe\0063" is
    // dblink_exec to PostgreSQL and something else to any text check. Write the characters themselves.
    if (/[uU]&$/.test(masked)) {
      return {
        problem: 'must not contain U&\'…\' or U&"…" Unicode escapes (write the characters themselves)',
      };
    }
    let j = i + 1;
    for (;;) {
      if (j >= expression.length) return { problem: 'has an unterminated quote' };
      const c = expression[j];
      if (c === char && expression[j + 1] === char) {
        j += 2;
      } else if (c === char) {
        break;
      } else {
        j++;
      }
    }
    masked += char === "'" ? ' L ' : ' I ';
    if (char === "'") literals++;
    i = j + 1;
  }
  return { masked, literals };
}

/** Whether a (screened) filter has string literals ('…'), which PostgreSQL converts while parsing. */
export function hasStringLiteral(expression: string): boolean {
  const scanned = maskQuoted(expression);
  return 'literals' in scanned && scanned.literals > 0;
}

/** Returns why a filter expression is refused, or undefined when it passes the static screen. */
export function screenFilterExpression(expression: string): string | undefined {
  const scanned = maskQuoted(expression);
  if ('problem' in scanned) return scanned.problem;
  const stripped = scanned.masked;
  if (stripped.includes(';')) return 'must not contain ";" (a single boolean expression only)';
  if (stripped.includes('--') || stripped.includes('/*')) return 'must not contain SQL comments';
  if (stripped.includes('$')) return 'must not contain "$" (parameters and dollar quoting are not allowed)';
  if (/\buescape\b/i.test(stripped)) return 'must not contain UESCAPE (Unicode escapes are not allowed)';
  if (
    /\b(insert|update|delete|drop|alter|create|truncate|grant|revoke|copy|commit|rollback|vacuum|call|do)\b/i.test(
      stripped,
    )
  ) {
    return 'must be a boolean expression, not a statement';
  }
  let depth = 0;
  for (const char of stripped) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (depth < 0) return 'has unbalanced parentheses';
  }
  if (depth !== 0) return 'has unbalanced parentheses';
  return undefined;
}

/**
 * A function signature as `to_regprocedure` reads it: `name(types)` or `schema.name(types)`, quoted parts
 * allowed. It only ever reaches the server as a bound parameter; the shape check makes mistakes visible in
 * `validate` rather than at run start.
 */
export const FunctionSignatureSchema = z
  .string()
  .min(3)
  .max(400)
  .superRefine((value, ctx) => {
    const problem = signatureProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const SIGNATURE_EXAMPLE = 'a function signature such as public.is_test_account(integer)';

/** Why `value` is not `[schema.]name(types)`, or undefined. */
function signatureProblem(value: string): string | undefined {
  const scanned = maskQuoted(value);
  if ('problem' in scanned) return scanned.problem;
  if (!/^[^();]+\([^();]*\)$/.test(scanned.masked.trim())) return `must be ${SIGNATURE_EXAMPLE}`;
  // The name is what precedes the first "(" outside a quoted identifier ("" inside one toggles twice).
  let quoted = false;
  let open = -1;
  for (let i = 0; i < value.length && open === -1; i++) {
    if (value[i] === '"') quoted = !quoted;
    else if (value[i] === '(' && !quoted) open = i;
  }
  const name = value.slice(0, open).trim();
  try {
    if (parseQualifiedName(name).length > 2) return `${JSON.stringify(name)}: must be name or schema.name`;
  } catch (error) {
    return `${(error as Error).message} (must be ${SIGNATURE_EXAMPLE})`;
  }
  return undefined;
}
