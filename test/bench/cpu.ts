/**
 * CPU accounting for a measured phase: this process (process.cpuUsage), the local PostgreSQL server (postmaster
 * and all its children, from /proc, including backends that exited during the phase) and the S3 server child.
 * Together with the wall time they show which side is busy while the other waits.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ; 100 on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

export interface CpuSample {
  readonly node: number;
  readonly postgres: number | undefined;
  readonly s3: number | undefined;
}

export interface CpuUsage {
  readonly node_cpu_s: number;
  readonly postgres_cpu_s: number | undefined;
  readonly s3_server_cpu_s: number | undefined;
}

interface ProcStat {
  ppid: number;
  /** utime + stime, seconds. */
  own: number;
  /** cutime + cstime (reaped children), seconds. */
  children: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const num = (field: number) => Number(fields[field - 3] ?? 0);
    return {
      ppid: num(4),
      own: (num(14) + num(15)) / TICKS_PER_SECOND,
      children: (num(16) + num(17)) / TICKS_PER_SECOND,
    };
  } catch {
    return undefined;
  }
}

/** The postmaster of a backend (pg_backend_pid()), if it runs on this machine. */
export function postmasterOf(backendPid: number): number | undefined {
  const backend = readStat(backendPid);
  if (!backend) return undefined;
  try {
    const commandLine = readFileSync(`/proc/${backend.ppid}/cmdline`, 'utf8');
    return commandLine.includes('postgres') ? backend.ppid : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds of a process tree one level deep: the process, its live children, its reaped children. */
function treeSeconds(rootPid: number): number | undefined {
  const root = readStat(rootPid);
  if (!root) return undefined;
  let seconds = root.own + root.children;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat?.ppid === rootPid) seconds += stat.own;
  }
  return seconds;
}

export function sampleCpu(postmasterPid: number | undefined, s3Pid: number | undefined): CpuSample {
  const usage = process.cpuUsage();
  return {
    node: (usage.user + usage.system) / 1e6,
    postgres: postmasterPid === undefined ? undefined : treeSeconds(postmasterPid),
    s3: s3Pid === undefined ? undefined : readStat(s3Pid)?.own,
  };
}

export function cpuBetween(before: CpuSample, after: CpuSample): CpuUsage {
  const diff = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? undefined : b - a;
  return {
    node_cpu_s: after.node - before.node,
    postgres_cpu_s: diff(before.postgres, after.postgres),
    s3_server_cpu_s: diff(before.s3, after.s3),
  };
}

/**
 * CPU seconds the whole machine spent busy since boot (every core: /proc/stat user + nice + system + irq +
 * softirq + steal); undefined off Linux. The difference over a phase, minus this process, PostgreSQL and the
 * S3 child, is what other work on a shared machine took from it.
 */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return (
      ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) /
      TICKS_PER_SECOND
    );
  } catch {
    return undefined;
  }
}

export interface PhaseSample {
  readonly ours: CpuSample;
  readonly machine: number | undefined;
}

/** CpuUsage plus what every other process on the machine used meanwhile. */
export interface PhaseCpu extends CpuUsage {
  /** Busy CPU seconds of the machine not spent by node, PostgreSQL or the S3 child (other work). */
  readonly other_processes_cpu_s: number | undefined;
}

export function samplePhase(postmasterPid: number | undefined, s3Pid: number | undefined): PhaseSample {
  return { ours: sampleCpu(postmasterPid, s3Pid), machine: machineBusySeconds() };
}

/** `workerNodeSeconds`: CPU of a node child the phase ran in (it reports its own), added to node's. */
export function phaseCpuBetween(before: PhaseSample, after: PhaseSample, workerNodeSeconds = 0): PhaseCpu {
  const own = cpuBetween(before.ours, after.ours);
  const ours = { ...own, node_cpu_s: own.node_cpu_s + workerNodeSeconds };
  const machine =
    before.machine === undefined || after.machine === undefined ? undefined : after.machine - before.machine;
  const known = ours.node_cpu_s + (ours.postgres_cpu_s ?? 0) + (ours.s3_server_cpu_s ?? 0);
  return {
    ...ours,
    other_processes_cpu_s: machine === undefined ? undefined : Math.max(0, machine - known),
  };
}
