/**
 * Reading JSON as a person wrote it. `JSON.parse` lets a repeated key win silently (a second
 * `"retention": "PT1S"` replaces `"P10Y"` without a word) and its syntax errors quote the text around the
 * problem, invisible characters included. This scanner accepts exactly the JSON `JSON.parse` accepts,
 * lists every repeated key with the path of its object, and places a syntax error by line and column,
 * naming the offending character by code point when it cannot be seen.
 */

/** A syntax error, placed in the text (1-based line and column, counted in characters). */
export class JsonSyntaxError extends Error {
  public override readonly name = 'JsonSyntaxError';

  public constructor(
    message: string,
    public readonly line: number,
    public readonly column: number,
  ) {
    super(`line ${line}, column ${column}: ${message}`);
  }
}

/** A key that appears more than once in one object. */
export interface DuplicateKey {
  /** Path of the object holding the key (`['policies', 0]`); empty for the top level. */
  readonly path: ReadonlyArray<string | number>;
  readonly key: string;
}

/** Deeper nesting than any config needs; a bound keeps the recursion off the stack limit. */
const MAX_DEPTH = 256;

/**
 * `text` with every character a reader cannot see (controls, format characters such as the byte order
 * mark or zero-width space, line/paragraph separators, spaces other than U+0020) written `\uXXXX`.
 */
export function visibleText(text: string): string {
  return text.replace(
    /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}]|(?! )\p{Zs}/gu,
    (char) => `\\u${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`,
  );
}

/** A character for a message: itself in quotes when visible, else its code point. */
function describeChar(char: string): string {
  const visible = visibleText(char);
  if (visible !== char) return `U+${visible.slice(2)}`;
  return char === ' ' ? 'a space' : `"${char}"`;
}

class Scanner {
  private pos = 0;
  public readonly duplicates: DuplicateKey[] = [];

  public constructor(private readonly text: string) {}

  public scanDocument(): void {
    this.skipWhitespace();
    this.scanValue([], 0);
    this.skipWhitespace();
    if (this.pos < this.text.length)
      this.fail(`unexpected ${this.describeHere()} after the end of the JSON value`);
  }

  private scanValue(path: ReadonlyArray<string | number>, depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
    const char = this.text[this.pos];
    if (char === '{') this.scanObject(path, depth);
    else if (char === '[') this.scanArray(path, depth);
    else if (char === '"') this.scanString();
    else if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) this.scanNumber();
    else if (!this.scanLiteral()) this.fail(`unexpected ${this.describeHere()} where a value should start`);
  }

  private scanObject(path: ReadonlyArray<string | number>, depth: number): void {
    this.pos++; // {
    const seen = new Set<string>();
    const reported = new Set<string>();
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"')
        this.fail(`unexpected ${this.describeHere()} where a "key" should start`);
      const start = this.pos;
      this.scanString();
      // Keys compare as JSON.parse decodes them: "a" and "\u0061" are the same key.
      const key = JSON.parse(this.text.slice(start, this.pos)) as string;
      if (seen.has(key) && !reported.has(key)) {
        this.duplicates.push({ path, key });
        reported.add(key);
      }
      seen.add(key);
      this.skipWhitespace();
      this.expect(':', 'after a key');
      this.skipWhitespace();
      this.scanValue([...path, key], depth + 1);
      this.skipWhitespace();
      if (this.text[this.pos] === ',') {
        this.pos++;
        continue;
      }
      this.expect('}', 'after a value in an object (a missing comma?)');
      return;
    }
  }

  private scanArray(path: ReadonlyArray<string | number>, depth: number): void {
    this.pos++; // [
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return;
    }
    for (let index = 0; ; index++) {
      this.skipWhitespace();
      this.scanValue([...path, index], depth + 1);
      this.skipWhitespace();
      if (this.text[this.pos] === ',') {
        this.pos++;
        continue;
      }
      this.expect(']', 'after a value in an array (a missing comma?)');
      return;
    }
  }

  private scanString(): void {
    this.pos++; // "
    for (;;) {
      const char = this.text[this.pos];
      if (char === undefined) this.fail('unterminated string');
      if (char === '"') {
        this.pos++;
        return;
      }
      if (char < ' ') this.fail(`${describeChar(char)} inside a string (write it as an escape such as \\n)`);
      if (char === '\\') {
        const escaped = this.text[this.pos + 1];
        if (escaped === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos + 2, this.pos + 6))) {
            this.fail('\\u must be followed by four hexadecimal digits');
          }
          this.pos += 6;
          continue;
        }
        if (escaped === undefined || !'"\\/bfnrt'.includes(escaped)) {
          this.pos++;
          this.fail(`invalid escape \\${escaped === undefined ? '' : visibleText(escaped)} in a string`);
        }
        this.pos += 2;
        continue;
      }
      this.pos++;
    }
  }

  private scanNumber(): void {
    const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(
      this.text.slice(this.pos, this.pos + 400),
    );
    if (!match) this.fail(`invalid number at ${this.describeHere()}`);
    this.pos += match[0].length;
  }

  private scanLiteral(): boolean {
    for (const literal of ['true', 'false', 'null']) {
      if (this.text.startsWith(literal, this.pos)) {
        this.pos += literal.length;
        return true;
      }
    }
    return false;
  }

  private skipWhitespace(): void {
    while (/[ \t\n\r]/.test(this.text[this.pos] ?? '')) this.pos++;
  }

  private expect(char: string, context: string): void {
    if (this.text[this.pos] !== char)
      this.fail(`expected "${char}" ${context}, found ${this.describeHere()}`);
    this.pos++;
  }

  private describeHere(): string {
    const char = this.text.codePointAt(this.pos);
    return char === undefined ? 'end of the file' : describeChar(String.fromCodePoint(char));
  }

  private fail(message: string): never {
    const before = this.text.slice(0, this.pos);
    const line = before.split('\n').length;
    const column = this.pos - before.lastIndexOf('\n');
    throw new JsonSyntaxError(message, line, column);
  }
}

/**
 * Parses JSON text, also returning every key repeated within one object (which `JSON.parse` resolves by
 * keeping the last).
 *
 * @throws JsonSyntaxError placing the first syntax error by line and column
 */
export function parseJsonSource(text: string): { value: unknown; duplicates: DuplicateKey[] } {
  const scanner = new Scanner(text);
  scanner.scanDocument();
  // The scanner accepted exactly what JSON.parse accepts; JSON.parse builds the value (own `__proto__`
  // keys and number conversion included).
  return { value: JSON.parse(text), duplicates: scanner.duplicates };
}
