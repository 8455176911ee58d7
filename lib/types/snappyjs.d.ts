/** snappyjs 0.7 ships no types; this covers the compressor module the Parquet writer imports (CommonJS). */
declare module 'snappyjs/snappy_compressor.js' {
  export class SnappyCompressor {
    constructor(uncompressed: Uint8Array);
    /** The most bytes `compressToBuffer` can write for this input. */
    maxCompressedLength(): number;
    /** Writes the Snappy stream (length varint, then 64 KiB fragments) from offset 0; returns its length. */
    compressToBuffer(output: Uint8Array): number;
  }
}
