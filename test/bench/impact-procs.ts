/**
 * Processes of the impact benchmark: CPU affinity with `taskset` (the pinned variant: the benchmark process and
 * the S3 server on one core, PostgreSQL and the OLTP workload on the other, as in AWS where the Lambda's CPU is
 * not the database's), the PostgreSQL server's processes, and CPU seconds of single processes from /proc.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** USER_HZ; 100 on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

interface Stat {
  readonly ppid: number;
  /** utime + stime of every thread, seconds. */
  readonly cpu: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const num = (field: number) => Number(fields[field - 3] ?? 0);
    return { ppid: num(4), cpu: (num(14) + num(15)) / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** CPU seconds a live process has used (all its threads); 0 when it is gone or unreadable. */
export function processCpuSeconds(pid: number): number {
  return readStat(pid)?.cpu ?? 0;
}

/** The postmaster and its live children (backends, walwriter, checkpointer, autovacuum…). */
export function postgresProcesses(postmasterPid: number): number[] {
  const pids = [postmasterPid];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (readStat(Number(entry))?.ppid === postmasterPid) pids.push(Number(entry));
  }
  return pids;
}

/**
 * The machine's cores: os.cpus(), not availableParallelism(), which follows this process's affinity and so
 * reads 1 once it has been pinned.
 */
export function machineCores(): number {
  return cpus().length;
}

/** Why the pinned variant cannot run here, or undefined when it can. */
export function pinningUnavailable(localPostgres: boolean): string | undefined {
  if (machineCores() < 2) return 'fewer than 2 cores';
  if (!localPostgres) return 'PostgreSQL is not local (DATABASE_URL): its processes cannot be pinned';
  const probe = spawnSync('taskset', ['-p', String(process.pid)], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'taskset not available';
  return undefined;
}

/**
 * Sets the CPU affinity of every thread of `pid` (`taskset -a -c -p`). A process or thread created later
 * inherits its creator's: pinning the postmaster covers the backends it forks afterwards. A process that
 * exited meanwhile is ignored.
 */
export function setAffinity(pid: number, cpus: string): void {
  const result = spawnSync('taskset', ['-a', '-c', '-p', cpus, String(pid)], { encoding: 'utf8' });
  if (result.status !== 0 && readStat(pid) !== undefined)
    throw new Error(`taskset -a -c -p ${cpus} ${pid} failed: ${result.stderr.trim()}`);
}

/** Core lists of the two layouts: `node` = this process and the S3 server, `database` = PostgreSQL + workload. */
export interface Layout {
  readonly name: 'unpinned' | 'pinned';
  readonly node: string;
  readonly database: string;
}

export function layout(name: Layout['name']): Layout {
  const all = `0-${machineCores() - 1}`;
  return name === 'pinned' ? { name, node: '0', database: '1' } : { name, node: all, database: all };
}

/** Applies a layout to this process, the S3 server child and every PostgreSQL process. */
export function applyLayout(
  target: Layout,
  processes: { postmasterPid: number | undefined; s3Pid: number | undefined },
): void {
  setAffinity(process.pid, target.node);
  if (processes.s3Pid !== undefined) setAffinity(processes.s3Pid, target.node);
  if (processes.postmasterPid !== undefined) {
    for (const pid of postgresProcesses(processes.postmasterPid)) setAffinity(pid, target.database);
  }
}
