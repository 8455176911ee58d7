#!/usr/bin/env node
// The npm mirror this project is developed behind serves only linux builds of some native packages
// (Biome's CLI, DuckDB's bindings), so `npm install` writes a lockfile without the other platforms'
// optional packages, and `npm ci` then refuses it ("Missing: … from lock file"). This adds the lock
// entries a full registry would have written: exact version plus os/cpu/libc, so npm skips them on
// other platforms and fetches them normally where they apply. Run after any `npm install` that
// rewrites package-lock.json: `node .ci/complete-lockfile.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const OS = ['android', 'darwin', 'linux', 'win32', 'freebsd', 'openbsd', 'sunos', 'aix'];
const CPU = ['arm64', 'x64', 'ia32', 'arm', 'ppc64', 's390x', 'riscv64', 'loong64'];

let added = 0;
for (const [location, entry] of Object.entries(lock.packages)) {
  for (const [name, spec] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = `${location}/node_modules/${name}`;
    const hoisted = `node_modules/${name}`;
    if (lock.packages[nested] || lock.packages[hoisted]) continue;
    const parts = name.split('/').pop().split('-');
    const os = OS.find((o) => parts.includes(o));
    const cpu = CPU.find((c) => parts.includes(c));
    if (!os || !cpu || !/^\d+\.\d+\.\d+(-[\w.]+)?$/.test(spec)) continue; // only exact platform builds
    lock.packages[hoisted] = {
      version: spec,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
      os: [os],
      cpu: [cpu],
      ...(os === 'linux' ? { libc: [parts.includes('musl') ? 'musl' : 'glibc'] } : {}),
    };
    added++;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) =>
    a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0,
  ),
);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: added ${added} platform entries`);
