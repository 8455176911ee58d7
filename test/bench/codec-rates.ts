/**
 * Single-thread rates of the backup's Node-side stages on a sample of the table's COPY text, with the
 * product's own compressor factory (part-compression.ts): compress at the policy's codec and level, SHA-256 of
 * the compressed bytes (what a part hashes), decompress (what a restore does). Rates are MB of COPY text per
 * second, the unit of the `ratio`, so they compare with `copy_mb_per_s` directly. Best of a few repetitions.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import * as zlib from 'node:zlib';
import {
  createCompressor,
  createDecompressor,
  type PartCompression,
} from '../../functions/actions/backup/part-compression.ts';

/** Whether this Node's zlib has zstd (Node 22.15+; the Lambdas run Node 24). */
export function zstdAvailable(): boolean {
  return typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === 'function';
}

export interface CodecRates {
  readonly sample_bytes: number;
  readonly compress_mb_per_s: number;
  readonly sha256_mb_per_s: number;
  readonly decompress_mb_per_s: number;
  /** Compressed ÷ uncompressed bytes of the sample. */
  readonly sample_compressed_ratio: number;
}

const SAMPLE_BYTES = 16 * 1024 * 1024;
const REPETITIONS = 3;
/** What a COPY stream hands over at a time, roughly: the compressor sees chunks, not one buffer. */
const CHUNK_BYTES = 64 * 1024;

async function readSample(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const sample = Buffer.alloc(SAMPLE_BYTES);
    const { bytesRead } = await handle.read(sample, 0, SAMPLE_BYTES, 0);
    return sample.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function chunks(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += CHUNK_BYTES) out.push(data.subarray(i, i + CHUNK_BYTES));
  return out;
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

/** Rates of compress / SHA-256 / decompress on the first 16 MiB of `copyTextFile`. */
export async function measureCodecRates(
  copyTextFile: string,
  compression: PartCompression,
): Promise<CodecRates> {
  const sample = await readSample(copyTextFile);
  if (sample.length === 0) throw new Error('codec rates: the COPY text sample is empty');
  const compressTimes: number[] = [];
  const shaTimes: number[] = [];
  const decompressTimes: number[] = [];
  let compressed = Buffer.alloc(0);
  for (let i = 0; i < REPETITIONS; i++) {
    const packed = await timed(() =>
      buffer(Readable.from(chunks(sample)).pipe(createCompressor(compression))),
    );
    compressTimes.push(packed.ms);
    compressed = packed.value;
    const hashed = await timed(async () => {
      const hash = createHash('sha256');
      for (const chunk of chunks(compressed)) hash.update(chunk);
      return hash.digest('hex');
    });
    shaTimes.push(hashed.ms);
    const unpacked = await timed(() =>
      buffer(Readable.from(chunks(compressed)).pipe(createDecompressor(compression.codec))),
    );
    if (unpacked.value.length !== sample.length)
      throw new Error('codec rates: round trip changed the sample');
    decompressTimes.push(unpacked.ms);
  }
  const rate = (ms: number[]) => sample.length / 1e6 / (Math.min(...ms) / 1000);
  return {
    sample_bytes: sample.length,
    compress_mb_per_s: rate(compressTimes),
    sha256_mb_per_s: rate(shaTimes),
    decompress_mb_per_s: rate(decompressTimes),
    sample_compressed_ratio: compressed.length / sample.length,
  };
}
