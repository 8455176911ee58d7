/**
 * Bind parameters of the chunk statement, numbered from `firstIndex` (the statement's own come first). An
 * equal value added twice gets the same number, so the pads travel once however many columns are hashed.
 */
export class ParamList {
  readonly values: Array<string | Buffer> = [];
  readonly #numbers = new Map<string, string>();

  constructor(private readonly firstIndex: number) {
    if (!Number.isInteger(firstIndex) || firstIndex < 1)
      throw new RangeError('parameters are numbered from 1');
  }

  /** `$n` for `value`. */
  add(value: string | Buffer): string {
    const identity = typeof value === 'string' ? `s${value}` : `b${value.toString('hex')}`;
    const known = this.#numbers.get(identity);
    if (known) return known;
    const number = `$${this.firstIndex + this.values.length}`;
    this.values.push(value);
    this.#numbers.set(identity, number);
    return number;
  }
}
