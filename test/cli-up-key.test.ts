// `sixpn up` with a private key that is not the host's (issue 11, clear errors): refused at start,
// in one message naming both public keys, with nothing left running; in a namespace of its own.
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, SIXPN, isRoot } from './helpers/netns.ts';

const rootTest = isRoot() ? test : test.skip;

rootTest('a private key whose public key is not the host\'s in the topology is refused, both keys named', async (t) => {
  const lab = new Lab('uk');
  t.teardown(() => lab.cleanup());
  const ns = await lab.ns('h');
  const hostKey = await lab.genkey();
  const otherKey = await lab.genkey();
  const dir = lab.file('placeholder', '').replace(/\/[^/]+$/, '');
  const topology = join(dir, 'topology.json');
  writeFileSync(topology, JSON.stringify({
    version: 1,
    orgs: [{ name: 'acme', network: '0x18' }],
    hosts: [{ name: 'ams1', id: 'a7b:7d', region: 'ams', publicKey: hostKey.pub, endpoint: '[fd00:77::1]:51900' }],
    apps: [{ name: 'web', org: 'acme' }],
    machines: [],
    peers: [],
  }));
  const config = join(dir, 'host.json');
  writeFileSync(config, JSON.stringify({ host: 'ams1', privateKeyFile: otherKey.file, topology, metrics: false }));
  const child = spawn('ip', ['netns', 'exec', ns, SIXPN, 'up', '-c', config], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SIXPN_NODE: process.execPath, LOG_LEVEL: 'error' },
  });
  let out = '';
  let refusedAt = 0; // when the refusal was printed: from then on the process must be gone soon
  const started = Date.now();
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
    if (refusedAt === 0 && out.includes('private key')) refusedAt = Date.now();
  });
  // generous for a loaded CI box: 90 s to start and refuse, then 20 s to be gone
  const code = await new Promise<number | null>((resolve) => {
    const timer = setInterval(() => {
      const now = Date.now();
      if (now - started < 90_000 && (refusedAt === 0 || now - refusedAt < 20_000)) return;
      clearInterval(timer);
      out += `\n[still running after ${now - started} ms, refused at ${refusedAt ? refusedAt - started : '-'} ms; wchan ${wchan(child.pid)}]`;
      child.kill('SIGKILL');
      resolve(null);
    }, 250);
    child.on('exit', (c) => {
      clearInterval(timer);
      resolve(c);
    });
  });
  t.log(`refused at ${refusedAt ? refusedAt - started : '-'} ms, exited at ${Date.now() - started} ms`);
  t.log(out.trim());
  t.not(code, null, `sixpn up kept running: ${out}`);
  t.not(code, 0);
  t.true(out.includes(otherKey.pub), `names the key it was given: ${out}`);
  t.true(out.includes(hostKey.pub), `names the host's key in the topology: ${out}`);
  t.false(out.includes(otherKey.priv) || out.includes(hostKey.priv), 'no private key in the output');
});

/** What a process is blocked in (its wchan and each thread's), for the log of a hang. */
function wchan(pid: number | undefined): string {
  try {
    return readFileSync(`/proc/${pid}/wchan`, 'utf8') + ' ' + readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter((l) => /^(State|Threads)/.test(l)).join(', ');
  } catch (err) {
    return (err as Error).message;
  }
}
