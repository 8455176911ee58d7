/**
 * Values as the catalog queries of the backup adapters receive them: the steps' connections return every
 * value as text, a pool with pg's type parsers returns booleans and parsed JSON. Both are read here.
 */
import { pgBool } from '../../adapters/catalog.ts';

export { pgBool };

/** A json/json_agg/array_to_json value: parsed already, or its text. */
export function pgJson<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

/** A `json` array that may be NULL (json_agg over no rows). */
export function pgJsonArray<T>(value: unknown): T[] {
  if (value === null || value === undefined) return [];
  return pgJson<T[] | null>(value) ?? [];
}

/** A value that is NULL or text, as `undefined` or the text. */
export function pgOptional(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}
