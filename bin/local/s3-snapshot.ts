/**
 * Disk persistence for the local S3 server, which keeps everything in memory (fauxqs has no storage of its
 * own): a snapshot of every bucket and object, written when the kept demo's server stops and read back when
 * it starts. Only through the S3 API, so nothing depends on the server's internals. Object bodies, content
 * types and user metadata survive; LastModified becomes the time of the restore, and an object uploaded in
 * parts comes back as one (another ETag). Each object is the file `objects/<bucket>/<key>`, so that DuckDB
 * can read a stopped demo's archive from disk (a key that is no plain relative path is stored by number).
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { z } from 'zod';

const ManifestSchema = z.object({
  version: z.literal(1),
  buckets: z.array(z.string()),
  objects: z.array(
    z.object({
      bucket: z.string(),
      key: z.string(),
      file: z.string(),
      contentType: z.string().optional(),
      metadata: z.record(z.string(), z.string()),
    }),
  ),
});

type Manifest = z.output<typeof ManifestSchema>;

const MANIFEST = 'manifest.json';

/** A path-style client of the local server (it accepts any credentials). */
export function localS3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'demo', secretAccessKey: 'demo' },
  });
}

/**
 * Writes every bucket and object of the server to `dir`, replacing an earlier snapshot only once the new
 * one is complete. Returns the number of objects.
 */
export async function saveS3Snapshot(s3: S3Client, dir: string): Promise<number> {
  const staging = `${dir}.saving`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(path.join(staging, 'objects'), { recursive: true });
  const manifest: Manifest = { version: 1, buckets: [], objects: [] };
  const { Buckets = [] } = await s3.send(new ListBucketsCommand({}));
  for (const { Name: bucket } of Buckets) {
    if (!bucket) continue;
    manifest.buckets.push(bucket);
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const { Key: key } of page.Contents ?? []) {
        if (key === undefined) continue;
        const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const body = await (object.Body?.transformToByteArray() ?? new Uint8Array());
        const file = await writeObjectFile(
          path.join(staging, 'objects'),
          bucket,
          key,
          manifest.objects.length,
          body,
        );
        manifest.objects.push({
          bucket,
          key,
          file,
          ...(object.ContentType ? { contentType: object.ContentType } : {}),
          metadata: object.Metadata ?? {},
        });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
  await writeFile(path.join(staging, MANIFEST), `${JSON.stringify(manifest)}\n`);
  await rm(dir, { recursive: true, force: true });
  await rename(staging, dir);
  return manifest.objects.length;
}

/** Writes the body as `<bucket>/<key>` when the key is a plain relative path that is free, else `_/<n>`. */
async function writeObjectFile(
  root: string,
  bucket: string,
  key: string,
  n: number,
  body: Uint8Array,
): Promise<string> {
  const segments = key.split('/');
  if (!segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\'))) {
    const file = path.posix.join(bucket, key);
    try {
      await mkdir(path.dirname(path.join(root, file)), { recursive: true });
      await writeFile(path.join(root, file), body, { flag: 'wx' });
      return file;
    } catch {
      // A key that is also another key's folder (`a` and `a/b`): stored by number instead.
    }
  }
  const file = path.posix.join('_', String(n));
  await mkdir(path.join(root, '_'), { recursive: true });
  await writeFile(path.join(root, file), body);
  return file;
}

/** Puts a snapshot's buckets and objects back; nothing when `dir` holds none. Returns the number of objects. */
export async function loadS3Snapshot(s3: S3Client, dir: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(path.join(dir, MANIFEST), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  const manifest = ManifestSchema.parse(JSON.parse(text));
  for (const bucket of manifest.buckets) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  for (const object of manifest.objects) {
    // Upload: one PutObject for a small object, multipart above the server's 11 MiB request limit.
    await new Upload({
      client: s3,
      partSize: 8 * 1024 * 1024,
      params: {
        Bucket: object.bucket,
        Key: object.key,
        Body: await readFile(path.join(dir, 'objects', object.file)),
        ContentType: object.contentType,
        Metadata: object.metadata,
      },
    }).done();
  }
  return manifest.objects.length;
}
