/**
 * SQL identifiers from config: parsed the way PostgreSQL reads them, never spliced raw.
 * Unquoted parts must be plain identifiers; quoted parts keep their case and may hold anything but NUL.
 */
export interface IdentifierPart {
  readonly name: string;
  readonly quoted: boolean;
}

const PLAIN = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/** Splits `schema.table`, `"Schema"."Ta.ble"` or `col` into parts; throws with a reason on anything else. */
export function parseQualifiedName(text: string): IdentifierPart[] {
  const parts: IdentifierPart[] = [];
  let i = 0;
  if (text.length === 0) throw new Error('must not be empty');
  while (i <= text.length) {
    if (text[i] === '"') {
      let name = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new Error(`unterminated quoted identifier in ${JSON.stringify(text)}`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            name += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        name += text[i];
        i++;
      }
      if (name.length === 0) throw new Error('empty quoted identifier ""');
      if (name.includes('\0')) throw new Error('identifier must not contain NUL');
      if (Buffer.byteLength(name) > 63) throw new Error(`identifier "${name}" is longer than 63 bytes`);
      parts.push({ name, quoted: true });
    } else {
      const end = text.indexOf('.', i);
      const raw = end === -1 ? text.slice(i) : text.slice(i, end);
      if (!PLAIN.test(raw)) {
        throw new Error(
          `${JSON.stringify(raw)} is not a valid identifier (letters, digits, _ and $; double-quote names with other characters)`,
        );
      }
      if (raw.length > 63) throw new Error(`identifier "${raw}" is longer than 63 bytes`);
      parts.push({ name: raw, quoted: false });
      i += raw.length;
    }
    if (i === text.length) break;
    if (text[i] !== '.') throw new Error(`unexpected ${JSON.stringify(text[i])} in ${JSON.stringify(text)}`);
    i++;
    if (i === text.length) throw new Error(`${JSON.stringify(text)} ends with "."`);
  }
  return parts;
}

/** Quotes one identifier for SQL: always quoted, embedded quotes doubled. */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error('identifier must not contain NUL');
  return `"${name.replaceAll('"', '""')}"`;
}

/** `"schema"."table"` for SQL text. */
export function quoteQualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}
