/**
 * A backup's manifest as restore, verify and drills read it: a complete one parses; one cut short, edited
 * so its totals or consistency lie, or listing a part twice is refused naming the field.
 */
import { describe, expect, it } from 'vitest';
import { type BackupManifest, backupKeys, parseManifest } from '../../functions/actions/backup/manifest.ts';

const SHA = 'a'.repeat(64);

function manifest(overrides: Partial<BackupManifest> = {}): BackupManifest {
  const keys = backupKeys('nightly', '20261202T010000Z-1a2b3c4d');
  return {
    formatVersion: 1,
    backupId: '20261202T010000Z-1a2b3c4d',
    policy: 'nightly',
    runId: '00000000-0000-4000-8000-000000000001',
    startedAt: '2026-12-02T01:00:00.000Z',
    finishedAt: '2026-12-02T01:05:00.000Z',
    serverVersion: '15.8',
    compression: { codec: 'gzip', level: 6 },
    consistency: 'snapshot',
    schemaKey: keys.schema,
    postDataKey: keys.postData,
    tables: [
      {
        table: '"Sales"."Order Lines"',
        rows: 3,
        bytes: 30,
        consistency: 'snapshot',
        columns: ['id', 'Line Text'],
        contentChecksum: 'md5-64:3:-1234567890123456789',
        parts: [
          { key: keys.part('Sales', 'Order Lines', 1, 'gz'), rows: 2, bytes: 20, sha256: SHA },
          { key: keys.part('Sales', 'Order Lines', 2, 'gz'), rows: 1, bytes: 10, sha256: SHA },
        ],
      },
    ],
    notIncluded: ['"Sales"."Order Lines": 1 trigger'],
    ...overrides,
  };
}

describe('backup manifest', () => {
  it('reads back what was written', () => {
    expect(parseManifest(JSON.stringify(manifest()))).toEqual(manifest());
  });

  it('puts parts under data/<schema>.<table>/ with names that cannot fake a dot', () => {
    expect(backupKeys('nightly', 'b1').part('a.b', 'Order Lines', 12, 'gz')).toBe(
      'backup/nightly/b1/data/a%2Eb.Order%20Lines/part-00012.sql.gz',
    );
  });

  it.each([
    ['cut short', (text: string) => text.slice(0, text.length / 2), /not JSON/],
    [
      'a table’s rows that its parts do not add up to',
      edit((m) => ({ ...m, tables: [{ ...first(m), rows: 4 }] })),
      /tables\.0\.rows: is 4 but the parts hold 3/,
    ],
    [
      'a table’s bytes that its parts do not add up to',
      edit((m) => ({ ...m, tables: [{ ...first(m), bytes: 1 }] })),
      /tables\.0\.bytes: is 1 but the parts hold 30/,
    ],
    [
      'a snapshot claim a table does not make',
      edit((m) => ({ ...m, tables: [{ ...first(m), consistency: 'per-part' }] })),
      /consistency: is snapshot but a table says per-part/,
    ],
    [
      'a part listed twice',
      edit((m) => ({
        ...m,
        tables: [{ ...first(m), parts: [first(m).parts[0], { ...first(m).parts[0], rows: 1 }] as never }],
      })),
      /tables\.0\.parts\.1\.key: listed twice/,
    ],
    [
      'a table listed twice',
      edit((m) => ({ ...m, tables: [first(m), first(m)] })),
      /tables\.1\.table: listed twice/,
    ],
    [
      'a checksum that is not SHA-256',
      edit((m) => ({
        ...m,
        tables: [{ ...first(m), parts: first(m).parts.map((p) => ({ ...p, sha256: 'x' })) }],
      })),
      /sha256: must be a lowercase hex SHA-256/,
    ],
    ['an unknown field', edit((m) => ({ ...m, extra: true }) as never), /Unrecognized key/],
    [
      'a finish before the start',
      edit((m) => ({ ...m, finishedAt: '2026-12-01T00:00:00.000Z' })),
      /finishedAt: is before startedAt/,
    ],
  ])('refuses a manifest with %s', (_what, change, message) => {
    expect(() => parseManifest(change(JSON.stringify(manifest())))).toThrow(message);
  });
});

function first(m: BackupManifest) {
  return m.tables[0] as BackupManifest['tables'][number];
}

function edit(change: (m: BackupManifest) => BackupManifest): (text: string) => string {
  return (text) => JSON.stringify(change(JSON.parse(text) as BackupManifest));
}
