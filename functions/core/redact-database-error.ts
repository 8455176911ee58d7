/**
 * The one way a PostgreSQL error becomes text (error causes, the ledger's error_cause, CLI output, logs).
 *
 * PostgreSQL quotes the value it choked on (`invalid input syntax for type integer: "payload-1000"`) and
 * puts key values or the whole row into DETAIL (`Key (id)=(42) already exists.`, `Failing row contains
 * (…)`). Those are row contents, and they would reach Step Functions history, CloudWatch and the ledger.
 * What stays: the SQLSTATE, the message's wording (with the type, for casts), the identifiers PostgreSQL
 * names (table, column, constraint, type, from the error fields or after a noun such as `relation`), and
 * the key columns of a key DETAIL. Data values are replaced by `…`.
 */

/** The fields of a server error (pg's DatabaseError) this module reads. */
export interface PostgresErrorFields {
  readonly code: string;
  readonly message: string;
  readonly severity?: string | undefined;
  readonly detail?: string | undefined;
  readonly schema?: string | undefined;
  readonly table?: string | undefined;
  readonly column?: string | undefined;
  readonly constraint?: string | undefined;
  readonly dataType?: string | undefined;
  /** Where in the statement's text the error lies: set when the server raised it while parsing that text. */
  readonly position?: string | undefined;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** An error the server sent (it has a SQLSTATE and a severity), as opposed to a network or client error. */
export function isPostgresError(error: unknown): error is Error & PostgresErrorFields {
  if (!(error instanceof Error)) return false;
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  return typeof code === 'string' && SQLSTATE.test(code) && typeof severity === 'string';
}

/** Data exceptions and integrity violations: their message and DETAIL may quote the row's values. */
const DATA_CLASSES = new Set(['22', '23']);
/** RAISE in a function or trigger, external routines: the message is the function's own text, with anything in it. */
const ROUTINE_CLASSES = new Set(['P0', '2F', '38', '39']);

/**
 * Classes whose messages name only the statement's objects or the server's state, never a value: connection,
 * unsupported feature, transaction state, authorization, transaction rollback, resources, limits, object
 * state (locks), operator intervention (timeouts, cancels), system errors.
 */
const STATE_CLASSES = new Set(['08', '0A', '25', '28', '3D', '40', '53', '54', '55', '57', '58', 'XX']);

/** Whether an error of this SQLSTATE may carry row values (so neither it nor its DETAIL may be kept as is). */
export function mayCarryRowValues(code: string): boolean {
  const errorClass = code.slice(0, 2);
  return DATA_CLASSES.has(errorClass) || ROUTINE_CLASSES.has(errorClass);
}

/**
 * Whether this error may quote a value of a row. Besides data and routine errors, any error raised while
 * a statement ran (no `position`: nothing in its text is at fault) outside the state classes: a value cast
 * to regclass that names no relation is `42P01: relation "<the value>" does not exist`, and `make_date`
 * of a row's numbers reports them unquoted. Errors raised while parsing name what the statement says.
 */
export function carriesRowValues(error: PostgresErrorFields): boolean {
  if (mayCarryRowValues(error.code)) return true;
  if (error.code === '42501') return false; // permission denied: names the statement's objects
  return !error.position && !STATE_CLASSES.has(error.code.slice(0, 2));
}

/** Digits (row numbers, positions, dates) in a message about a value: `index # out of valid range, #..#`. */
const NUMBERS = /\b\d+\b/g;

/** Words after which PostgreSQL quotes an identifier, not a value. */
const IDENTIFIER_NOUNS =
  /\b(?:relation|table|column|constraint|index|type|schema|function|sequence|view|domain|parameter|encoding|operator|collation|database|role|trigger|partition)\s*$/i;

/** `0xc3 0x28` in "invalid byte sequence" messages: the bytes are the data. */
const BYTE_SEQUENCE = /\b0x[0-9a-f]{2}(?:\s+0x[0-9a-f]{2})*/gi;

/**
 * `message` with every quoted value replaced by `"…"`: a quoted segment is kept only when it names one of
 * `identifiers` or follows an identifier noun (`relation "events"`, `constraint "events_pkey"`).
 */
export function redactQuotedValues(
  message: string,
  identifiers: ReadonlySet<string> = new Set(),
  options: { identifierNouns?: boolean } = {},
): string {
  const nouns = options.identifierNouns ?? true;
  const namesIdentifier = (before: string) => nouns && IDENTIFIER_NOUNS.test(before);
  // PostgreSQL does not escape quotes inside a value: `…: "a"b"` ends the message. Take that tail whole.
  const trailing = /^(.*?): "(.*)"$/s.exec(message);
  let head = message;
  let tail = '';
  if (trailing && !namesIdentifier(trailing[1] ?? '') && !identifiers.has(trailing[2] ?? '')) {
    head = trailing[1] ?? '';
    tail = ': "…"';
  }
  const redacted = head.replace(/"([^"]*)"/g, (quoted, inner: string, offset: number) =>
    identifiers.has(inner) || namesIdentifier(head.slice(0, offset)) ? quoted : '"…"',
  );
  return `${redacted}${tail}`.replace(BYTE_SEQUENCE, '0x…');
}

/**
 * A key DETAIL with its values removed (`Key (id)=(…) already exists.`), keeping the key's columns and the
 * other table's name; undefined for any other DETAIL of a data error (`Failing row contains (…)` is the row).
 */
export function redactKeyDetail(detail: string | undefined): string | undefined {
  if (!detail?.startsWith('Key (')) return undefined;
  const columnsEnd = detail.indexOf(')=(');
  if (columnsEnd < 0) return undefined;
  const key = `${detail.slice(0, columnsEnd + 1)}=(…)`;
  const referenced = /(is not present in table|is still referenced from table) ("[^"]*")\.$/.exec(detail);
  if (referenced) return `${key} ${referenced[1]} ${referenced[2]}.`;
  if (detail.endsWith(' already exists.')) return `${key} already exists.`;
  if (detail.includes(' conflicts with existing key ')) return `${key} conflicts with an existing key.`;
  return undefined;
}

/** `table public.events, column payload, constraint …, type integer`: the error fields PostgreSQL filled in. */
function describeFields(error: PostgresErrorFields): string {
  const parts: string[] = [];
  if (error.table) parts.push(`table ${error.schema ? `${error.schema}.` : ''}${error.table}`);
  if (error.column) parts.push(`column ${error.column}`);
  if (error.constraint) parts.push(`constraint ${error.constraint}`);
  if (error.dataType) parts.push(`type ${error.dataType}`);
  return parts.join(', ');
}

/**
 * `SQLSTATE: message (key detail) [table …, column …]`, without any data value. Messages of other classes
 * (syntax errors, unknown columns, timeouts, permissions) name only SQL and identifiers and stay whole.
 */
export function describeDatabaseError(error: PostgresErrorFields): string {
  const errorClass = error.code.slice(0, 2);
  let text = error.message;
  let detail: string | undefined;
  if (ROUTINE_CLASSES.has(errorClass)) {
    text =
      'raised by a database function or trigger (message withheld: it may quote row values; the server log has it)';
  } else if (carriesRowValues(error)) {
    const identifiers = new Set(
      [error.schema, error.table, error.column, error.constraint, error.dataType].filter(
        (name): name is string => Boolean(name),
      ),
    );
    if (DATA_CLASSES.has(errorClass)) {
      text = redactQuotedValues(error.message, identifiers);
      detail = redactKeyDetail(error.detail);
    } else {
      // Raised while running: a quoted "identifier" may be a value (regclass of a column), so only the
      // error fields (from the catalog) are kept as names.
      text = redactQuotedValues(error.message, identifiers, { identifierNouns: false });
    }
    // An unquoted value after the last colon, then any digits left: `date field value out of range: …`.
    text = text.replace(/: (?!"…")[^"]+$/, ': …').replace(NUMBERS, '#');
  }
  const fields = describeFields(error);
  return `${error.code}: ${text}${detail ? ` (${detail})` : ''}${fields ? ` [${fields}]` : ''}`;
}

/** Any error as one line of text: a server error through {@link describeDatabaseError}, anything else by its message. */
export function describeError(error: unknown): string {
  if (isPostgresError(error)) return describeDatabaseError(error);
  if (error instanceof Error) return error.message;
  return String(error);
}
