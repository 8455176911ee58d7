/**
 * RSS of one backup part far larger than the upload queue: `node --import tsx test/bench/backup-part-memory.ts
 * [rows]`. The S3 server runs in a child process (its memory is not ours). A bench note, not a test: RSS on a
 * shared machine is too noisy for a timed assertion.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
const pg = (await import('pg')).default;
const { writePart } = await import('../../functions/actions/backup/part-writer.ts');
const { SESSION_OPTIONS } = await import('../../functions/commons/database.ts');
const { startBenchServices } = await import('./services.ts');

const rows = Number(process.argv[2] ?? 2_000_000);
const services = await startBenchServices('child');
const s3 = new S3Client({
  endpoint: services.s3Endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  forcePathStyle: true,
});
const client = new pg.Client({ connectionString: services.databaseUrl, options: SESSION_OPTIONS });
await client.connect();
try {
  await s3.send(new CreateBucketCommand({ Bucket: 'bench' }));
  await client.query(`DROP TABLE IF EXISTS bench_part`);
  // ~190 bytes of text per row, half of it hex that gzip cannot shrink much.
  await client.query(`CREATE TABLE bench_part AS
    SELECT g AS id, now() - g * interval '1 s' AS at, md5(g::text) || md5((-g)::text) AS hex,
           repeat('lorem ipsum ', 8) AS filler FROM generate_series(1, ${rows}) g`);
  const partSizeBytes = 5 * 1024 * 1024;
  const queueSize = 2;
  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  const started = performance.now();
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  const part = await writePart({
    client,
    table: { quotedName: 'public.bench_part', columns: ['id', 'at', 'hex', 'filler'] },
    s3,
    bucket: 'bench',
    key: 'bench/part-00001.sql.gz',
    compression: { codec: 'gzip', level: 1 },
    upload: { partSizeBytes, queueSize },
  });
  await client.query('COMMIT');
  clearInterval(sampler);
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  const seconds = (performance.now() - started) / 1000;
  console.log(
    JSON.stringify({
      rows: part.rows,
      uncompressed: mib(part.uncompressedBytes),
      stored: mib(part.bytes),
      seconds: Number(seconds.toFixed(1)),
      rowsPerSecond: Math.round(part.rows / seconds),
      uploadBuffers: mib(partSizeBytes * (queueSize + 1)),
      rssBaseline: mib(baseline),
      rssPeak: mib(peak),
      rssGrowth: mib(peak - baseline),
    }),
  );
} finally {
  await client.end();
  s3.destroy();
  await services.stop();
}
