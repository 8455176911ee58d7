/**
 * The compression of backup parts: gzip (levels 1-9) everywhere, zstd where node:zlib has it (Node 22.15+,
 * the Lambda's Node 24). On an older Node a zstd backup or restore is refused with a named error before
 * anything is read or written, instead of failing on a missing function halfway through a part.
 */
import type { Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { CompressionUnavailableError } from '../../core/parquet/errors.ts';

// Parquet's error: one name for one condition, whatever asks for the codec.
export { CompressionUnavailableError };

/** How a part is compressed (the manifest's `compression`): gzip levels 1-9, zstd 1-19 (as contract.ts). */
export type PartCompression =
  | { readonly codec: 'gzip'; readonly level: number }
  | { readonly codec: 'zstd'; readonly level: number };

/** The codec's extension, the last of a part's key: `part-00001.sql.gz`. */
export const PART_EXTENSIONS = { gzip: 'gz', zstd: 'zst' } as const;

/** The zstd half of node:zlib, absent from the typings of Node 20 (and from its runtime). */
interface ZstdZlib {
  createZstdCompress?: (options?: { params?: Record<number, number> }) => Transform;
  createZstdDecompress?: () => Transform;
  constants: { ZSTD_c_compressionLevel?: number };
}

const zstdZlib = zlib as unknown as ZstdZlib;

/** ZSTD_c_compressionLevel in zstd's parameter enum, when node:zlib's constants do not name it. */
const ZSTD_COMPRESSION_LEVEL_PARAMETER = 100;

function zstdUnavailable(): CompressionUnavailableError {
  return new CompressionUnavailableError(
    `zstd needs node:zlib's createZstdCompress (Node 22.15 or later); this is Node ${process.versions.node}: ` +
      'use gzip, or run on a newer Node',
  );
}

/** Fails with CompressionUnavailableError or RangeError before a part is started, not midway. */
export function checkCompression(compression: PartCompression): void {
  const { codec, level } = compression;
  const [min, max] = codec === 'gzip' ? [1, 9] : [1, 19];
  if (!Number.isInteger(level) || level < min || level > max)
    throw new RangeError(`${codec} level must be an integer from ${min} to ${max}, not ${level}`);
  if (codec === 'zstd' && zstdZlib.createZstdCompress === undefined) throw zstdUnavailable();
}

/** A compressing stream for `compression`. */
export function createCompressor(compression: PartCompression): Transform {
  checkCompression(compression);
  if (compression.codec === 'gzip') return zlib.createGzip({ level: compression.level });
  const create = zstdZlib.createZstdCompress;
  if (create === undefined) throw zstdUnavailable();
  const parameter = zstdZlib.constants.ZSTD_c_compressionLevel ?? ZSTD_COMPRESSION_LEVEL_PARAMETER;
  return create({ params: { [parameter]: compression.level } });
}

/** Fails with CompressionUnavailableError before a part is downloaded that this Node could not read. */
export function checkDecompression(codec: PartCompression['codec']): void {
  if (codec === 'zstd' && zstdZlib.createZstdDecompress === undefined) throw zstdUnavailable();
}

/** A decompressing stream for parts written with `codec`. */
export function createDecompressor(codec: PartCompression['codec']): Transform {
  if (codec === 'gzip') return zlib.createGunzip();
  const create = zstdZlib.createZstdDecompress;
  if (create === undefined) throw zstdUnavailable();
  return create();
}
