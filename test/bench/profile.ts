/**
 * In-process CPU profile of one phase (node:inspector), written as a .cpuprofile (Chrome DevTools / speedscope)
 * and summarised: self time per area of the code, and the hottest functions.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  readonly file: string;
  readonly seconds: number;
  /** Self seconds per area, largest first. */
  readonly areas: Array<{ area: string; seconds: number; share: number }>;
  readonly top: Array<{ function: string; where: string; seconds: number }>;
}

const AREAS: Array<[RegExp, string]> = [
  [/hyparquet/, 'parquet writer (hyparquet-writer)'],
  [/functions\/core\/parquet\//, 'parquet value conversion (functions/core/parquet)'],
  [/\/(pg|pg-protocol|pg-types)\//, 'pg client (protocol, rows)'],
  [/@aws-sdk|@smithy|@aws-crypto/, 'AWS SDK'],
  [/fauxqs|fastify|avvio|light-my-request/, 'S3 server (in-process)'],
  [/aws-local-stepfunctions/, 'local Step Functions'],
  [/\/zod\//, 'zod'],
  [/functions\/|lib\//, 'product code (other)'],
  [/^node:|^internal\//, 'node internals (streams, http, crypto glue)'],
];

function areaOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (functionName === '(idle)') return 'idle (waiting on PostgreSQL / S3)';
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (functionName === '(program)') return '(program: native, unattributed)';
  for (const [pattern, area] of AREAS) if (pattern.test(url)) return area;
  if (url === '') return `native: ${functionName || '(anonymous)'}`;
  return 'other JS';
}

export async function profilePhase<T>(
  file: string,
  work: () => Promise<T>,
): Promise<{ result: T; summary: ProfileSummary }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 500 });
    await session.post('Profiler.start');
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await work() };
    } catch (error) {
      outcome = { ok: false, error };
    }
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
    await writeFile(file, JSON.stringify(profile));
    if (!outcome.ok) throw outcome.error;
    return { result: outcome.value, summary: summarise(file, profile) };
  } finally {
    session.disconnect();
  }
}

export function summarise(file: string, profile: Profile): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; attribute it to the sample that follows it.
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, deltas[i + 1] ?? 0));
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const areas = new Map<string, number>();
  const functions = new Map<string, { where: string; us: number }>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const area = areaOf(node);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const name = node.callFrame.functionName || '(anonymous)';
    const where = node.callFrame.url
      ? `${shortUrl(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`
      : area;
    const key = `${name}@${where}`;
    const entry = functions.get(key) ?? { where, us: 0 };
    entry.us += us;
    functions.set(key, entry);
  }
  return {
    file,
    seconds: total / 1e6,
    areas: [...areas]
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, seconds: us / 1e6, share: total > 0 ? us / total : 0 })),
    top: [...functions]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, 15)
      .map(([key, { where, us }]) => ({
        function: key.slice(0, key.indexOf('@')),
        where,
        seconds: us / 1e6,
      })),
  };
}

function shortUrl(url: string): string {
  const nodeModules = url.lastIndexOf('node_modules/');
  if (nodeModules >= 0) return url.slice(nodeModules + 'node_modules/'.length);
  const cwd = `file://${process.cwd()}/`;
  return url.startsWith(cwd) ? url.slice(cwd.length) : url;
}
