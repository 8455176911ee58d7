/**
 * S3 versioning over the local S3 server, which has none (fauxqs keeps one version per key and ignores VersionId).
 * The archive bucket the stack creates is versioned, and an erasure must delete the noncurrent versions too, so
 * the tests need S3's version semantics; everything else reaches the real server. Each noncurrent version is a
 * real object on the server under `NONCURRENT_PREFIX` (a scan of the bucket's bytes sees it); the stub keeps which
 * version is current, hands out VersionIds on PUT / HEAD / GET, answers ListObjectVersions, and deletes like S3:
 * by VersionId (the current one: the newest noncurrent becomes current) or, without one, by a delete marker.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

export const NONCURRENT_PREFIX = 'zz-noncurrent/';

interface Version {
  readonly id: string;
  /** Where its bytes are: the key itself for the current version, a shadow key for a noncurrent one. */
  shadow: string | undefined;
  readonly marker: boolean;
}

export interface VersionedS3 {
  readonly client: S3Client;
  /** Every version and marker id of `key`, newest first. */
  versionsOf(key: string): string[];
  /** PutObject calls seen, by key (a test's concurrent writer is one). */
  readonly puts: Map<string, number>;
}

export function versionedS3(real: S3Client, bucket: string): VersionedS3 {
  const versions = new Map<string, Version[]>(); // newest first
  const puts = new Map<string, number>();
  let next = 0;
  const newId = () => `v${String(++next).padStart(6, '0')}`;
  const bytesOf = async (key: string) => {
    const got = await real.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (await got.Body?.transformToByteArray()) ?? new Uint8Array();
  };
  const putRaw = (key: string, body: Uint8Array) =>
    real.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  /** Moves the current version's bytes aside (it becomes noncurrent). */
  const retire = async (key: string) => {
    const current = versions.get(key)?.[0];
    if (!current || current.marker || current.shadow) return;
    const shadow = `${NONCURRENT_PREFIX}${key}/${current.id}`;
    await putRaw(shadow, await bytesOf(key));
    current.shadow = shadow;
  };
  const send = async (command: unknown): Promise<unknown> => {
    if (command instanceof PutObjectCommand && command.input.Bucket === bucket && command.input.Key) {
      const key = command.input.Key;
      puts.set(key, (puts.get(key) ?? 0) + 1);
      await retire(key);
      const out = (await real.send(command)) as object;
      const id = newId();
      versions.set(key, [{ id, shadow: undefined, marker: false }, ...(versions.get(key) ?? [])]);
      return { ...out, VersionId: id };
    }
    if ((command instanceof HeadObjectCommand || command instanceof GetObjectCommand) && command.input.Key) {
      const key = command.input.Key;
      const list = versions.get(key) ?? [];
      const wanted = command.input.VersionId;
      const version = wanted ? list.find((v) => v.id === wanted) : list[0];
      if (wanted && version?.shadow) {
        const Cls = command instanceof HeadObjectCommand ? HeadObjectCommand : GetObjectCommand;
        const out = (await real.send(new Cls({ Bucket: bucket, Key: version.shadow }) as never)) as object;
        return { ...out, VersionId: version.id };
      }
      const { VersionId: _ignored, ...input } = command.input;
      const Cls = command instanceof HeadObjectCommand ? HeadObjectCommand : GetObjectCommand;
      const out = (await real.send(new Cls(input) as never)) as object;
      return version && !version.marker ? { ...out, VersionId: version.id } : out;
    }
    if (command instanceof ListObjectVersionsCommand && command.input.Bucket === bucket) {
      const prefix = command.input.Prefix ?? '';
      const Versions: Array<Record<string, unknown>> = [];
      const DeleteMarkers: Array<Record<string, unknown>> = [];
      for (const [key, list] of versions) {
        if (!key.startsWith(prefix)) continue;
        list.forEach((v, i) => {
          (v.marker ? DeleteMarkers : Versions).push({ Key: key, VersionId: v.id, IsLatest: i === 0 });
        });
      }
      return { Versions, DeleteMarkers, IsTruncated: false };
    }
    if (command instanceof DeleteObjectCommand && command.input.Bucket === bucket && command.input.Key) {
      const key = command.input.Key;
      const list = versions.get(key) ?? [];
      const wanted = command.input.VersionId;
      if (!wanted) {
        if (list.length === 0) return real.send(command);
        // Versioned bucket: a delete marker hides the current version, which stays stored.
        await retire(key);
        await real.send(command);
        versions.set(key, [{ id: newId(), shadow: undefined, marker: true }, ...list]);
        return { DeleteMarker: true };
      }
      const index = list.findIndex((v) => v.id === wanted);
      if (index < 0) return {};
      const [version] = list.splice(index, 1);
      if (version?.shadow) await real.send(new DeleteObjectCommand({ Bucket: bucket, Key: version.shadow }));
      else if (version && !version.marker)
        await real.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      // The newest remaining version becomes current again.
      const promoted = index === 0 ? list[0] : undefined;
      if (promoted && !promoted.marker && promoted.shadow) {
        await putRaw(key, await bytesOf(promoted.shadow));
        await real.send(new DeleteObjectCommand({ Bucket: bucket, Key: promoted.shadow }));
        promoted.shadow = undefined;
      }
      if (list.length === 0) versions.delete(key);
      return { VersionId: wanted };
    }
    return real.send(command as never);
  };
  const client = new Proxy(real, {
    get(target, property, receiver) {
      if (property === 'send') return send;
      return Reflect.get(target, property, receiver);
    },
  });
  return { client, puts, versionsOf: (key) => (versions.get(key) ?? []).map((v) => v.id) };
}
