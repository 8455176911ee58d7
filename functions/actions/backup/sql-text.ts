/**
 * Reads the SQL text of a backup's schema files (schema-sql.ts writes them; PostgreSQL prints the expressions
 * in them) as PostgreSQL's lexer would, far enough to tell code from string literals, quoted identifiers and
 * comments. Restore needs exactly that: to move the relocatable DDL's placeholder schema (schema-relocation.ts)
 * and to run the files statement by statement (restore/ddl.ts). Pure.
 *
 * What these files never hold, and is refused rather than guessed at: dollar-quoted text (schema-sql.ts writes
 * none and PostgreSQL prints none in expressions). `E'…'` escape strings and nested block comments are read
 * correctly although neither generator writes them today.
 */

export type SqlSegmentKind = 'code' | 'literal' | 'identifier' | 'comment';

/** A piece of SQL text: a literal or identifier with its quotes, a comment with its markers. */
export interface SqlSegment {
  readonly kind: SqlSegmentKind;
  readonly text: string;
  /** A literal written `E'…'`, whose backslashes escape (its `E` ends the code segment before it). */
  readonly escapeString?: boolean;
}

const IDENTIFIER_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;

/** The SQL text cut into segments; their texts joined give `text` back exactly. */
export function sqlSegments(text: string): SqlSegment[] {
  const segments: SqlSegment[] = [];
  let code = '';
  const flushCode = () => {
    if (code !== '') segments.push({ kind: 'code', text: code });
    code = '';
  };
  let i = 0;
  while (i < text.length) {
    const char = text[i] as string;
    const next = text[i + 1];
    if (char === "'") {
      // E'…' (or e'…'): the E is a prefix only when it does not end an identifier (`name'…'` is not SQL anyway).
      const escapeString = /[Ee]/.test(code.at(-1) ?? '') && !IDENTIFIER_CHAR.test(code.at(-2) ?? '');
      const end = literalEnd(text, i, escapeString);
      flushCode();
      segments.push({
        kind: 'literal',
        text: text.slice(i, end),
        ...(escapeString ? { escapeString: true } : {}),
      });
      i = end;
    } else if (char === '"') {
      const end = quotedEnd(text, i, '"');
      flushCode();
      segments.push({ kind: 'identifier', text: text.slice(i, end) });
      i = end;
    } else if (char === '-' && next === '-') {
      const newline = text.indexOf('\n', i);
      const end = newline === -1 ? text.length : newline;
      flushCode();
      segments.push({ kind: 'comment', text: text.slice(i, end) });
      i = end;
    } else if (char === '/' && next === '*') {
      const end = blockCommentEnd(text, i);
      flushCode();
      segments.push({ kind: 'comment', text: text.slice(i, end) });
      i = end;
    } else if (
      char === '$' &&
      !IDENTIFIER_CHAR.test(code.at(-1) ?? '') &&
      /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.test(text.slice(i))
    ) {
      throw new SyntaxError('dollar-quoted text is not supported in backup schema files');
    } else {
      code += char;
      i++;
    }
  }
  flushCode();
  return segments;
}

/** The index just past the literal opening at `start`: `''` is a quote inside it, and `\'` in an E'…' one. */
function literalEnd(text: string, start: number, backslashEscapes: boolean): number {
  let i = start + 1;
  while (i < text.length) {
    const char = text[i];
    if (backslashEscapes && char === '\\') {
      i += 2;
      continue;
    }
    if (char === "'") {
      if (text[i + 1] === "'") {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  throw new SyntaxError('unterminated string literal');
}

/** The index just past the quoted identifier opening at `start` (`""` is a quote inside it). */
function quotedEnd(text: string, start: number, quote: string): number {
  let i = start + 1;
  for (;;) {
    const at = text.indexOf(quote, i);
    if (at === -1) throw new SyntaxError('unterminated quoted identifier');
    if (text[at + 1] === quote) {
      i = at + 2;
      continue;
    }
    return at + 1;
  }
}

/** Block comments nest in PostgreSQL. */
function blockCommentEnd(text: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < text.length) {
    if (text.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (text.startsWith('*/', i)) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  throw new SyntaxError('unterminated block comment');
}

/**
 * The statements of a SQL file, each without its `;` and without comments, trimmed; empty ones (blank lines,
 * comment-only lines) dropped. Literal and identifier texts are kept as written.
 */
export function splitStatements(text: string): string[] {
  const statements: string[] = [];
  let current = '';
  const push = () => {
    const statement = current.trim();
    if (statement !== '') statements.push(statement);
    current = '';
  };
  for (const segment of sqlSegments(text)) {
    if (segment.kind === 'comment') continue;
    if (segment.kind !== 'code') {
      current += segment.text;
      continue;
    }
    const pieces = segment.text.split(';');
    pieces.forEach((piece, index) => {
      if (index > 0) push();
      current += piece;
    });
  }
  push();
  return statements;
}
