import { describe, expect, it } from 'vitest';
import { parseQualifiedName, quoteIdent, quoteQualified } from '../../lib/contracts/identifiers.ts';

describe('identifiers', () => {
  it('parses plain, quoted and mixed qualified names the way PostgreSQL reads them', () => {
    expect(parseQualifiedName('public.counting_results')).toEqual([
      { name: 'public', quoted: false },
      { name: 'counting_results', quoted: false },
    ]);
    expect(parseQualifiedName('"Sales"."Order.Lines"')).toEqual([
      { name: 'Sales', quoted: true },
      { name: 'Order.Lines', quoted: true },
    ]);
    expect(parseQualifiedName('"we""ird"')).toEqual([{ name: 'we"ird', quoted: true }]);
    expect(parseQualifiedName('s."T"')).toEqual([
      { name: 's', quoted: false },
      { name: 'T', quoted: true },
    ]);
  });

  it.each([
    ['t;drop', /not a valid identifier/],
    ['a b', /not a valid identifier/],
    ['"x', /unterminated/],
    ['""', /empty quoted identifier/],
    ['a.', /ends with "."/],
    ['.a', /not a valid identifier/],
    ['"a"b', /unexpected "b"/],
    ['1abc', /not a valid identifier/],
  ])('refuses %s', (text, message) => {
    expect(() => parseQualifiedName(text)).toThrow(message);
  });

  it('always quotes and doubles embedded quotes', () => {
    expect(quoteIdent('CameraEvents')).toBe('"CameraEvents"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteQualified('public', 'Robert"); DROP TABLE x; --')).toBe(
      '"public"."Robert""); DROP TABLE x; --"',
    );
    expect(() => quoteIdent('a\0b')).toThrow(/NUL/);
  });
});
