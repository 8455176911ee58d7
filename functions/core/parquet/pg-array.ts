/**
 * Splitter for PostgreSQL's array output (array_out). Only one-dimensional arrays with the default
 * lower bound map onto a Parquet LIST; the others are valid PostgreSQL values that a LIST cannot
 * hold without losing their shape, so they are refused rather than flattened.
 */
import { PgTextParseError, UnrepresentableValueError } from './errors.ts';
import { preview } from './pg-text.ts';

const LEFT_BRACE = 0x7b;
const RIGHT_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Splits a one-dimensional array literal such as `{1,NULL,"a b","c\"d"}` into element texts, with
 * unquoted `NULL` as `null` (a quoted "NULL" is the string). `delimiter` is the element type's
 * typdelim: ',' for every type mapped to a LIST.
 */
export function parsePgArray(text: string, delimiter = ','): Array<string | null> {
  if (text.charCodeAt(0) !== LEFT_BRACE) {
    // '[0:2]={...}': PostgreSQL prints bounds only when the lower bound is not 1.
    if (text.startsWith('[')) {
      throw new UnrepresentableValueError(
        `array ${preview(text)} has explicit bounds; a Parquet LIST cannot keep them`,
      );
    }
    throw new PgTextParseError(`not an array: ${preview(text)}`);
  }
  if (text.length === 2 && text.charCodeAt(1) === RIGHT_BRACE) return [];
  const separator = delimiter.charCodeAt(0);
  const end = text.length;
  const items: Array<string | null> = [];
  let i = 1;
  for (;;) {
    const first = text.charCodeAt(i);
    if (first === LEFT_BRACE) {
      throw new UnrepresentableValueError(
        `array ${preview(text)} is multi-dimensional; a Parquet LIST is not`,
      );
    }
    if (first === QUOTE) {
      // Quoted element: backslash escapes the next character (only '"' and '\' in practice).
      let value = '';
      let start = ++i;
      for (;;) {
        if (i >= end) throw new PgTextParseError(`unterminated quote in array ${preview(text)}`);
        const c = text.charCodeAt(i);
        if (c === QUOTE) break;
        if (c === BACKSLASH) {
          value += text.slice(start, i);
          start = i + 1;
          i += 2;
        } else {
          i++;
        }
      }
      items.push(value + text.slice(start, i));
      i++;
    } else {
      // Unquoted element: array_out quotes anything with spaces, quotes, backslashes or delimiters.
      const start = i;
      while (i < end) {
        const c = text.charCodeAt(i);
        if (c === separator || c === RIGHT_BRACE) break;
        i++;
      }
      const token = text.slice(start, i);
      if (token === '') throw new PgTextParseError(`empty element in array ${preview(text)}`);
      items.push(token === 'NULL' ? null : token);
    }
    const next = text.charCodeAt(i);
    if (next === separator) {
      i++;
    } else if (next === RIGHT_BRACE && i === end - 1) {
      return items;
    } else {
      throw new PgTextParseError(`malformed array ${preview(text)}`);
    }
  }
}
