// `sixpn help`, `sixpn status`, `sixpn conntrack` and `sixpn capture`'s argument errors work on a
// machine where the native addon cannot load (not built, wrong Node ABI) — issue 11. Node loads
// every addon through process.dlopen; a preload that makes it throw stands for an unloadable
// addon. The first test shows the block bites (`sixpn up` does need the addon), so the others
// would fail if one of these commands came to import it.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SIXPN_NODE_FLAGS } from '../src/cli/node-flags.ts';
import { StatusServer } from '../src/host/status.ts';
import { isRoot } from './helpers/netns.ts';

const CLI = fileURLToPath(new URL('../src/cli/sixpn.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sixpn-no-addon-'));
const BLOCK = join(dir, 'block-addons.cjs');
writeFileSync(BLOCK, "process.dlopen = (_m, file) => { throw new Error('test: native addons are blocked (' + file + ')'); };\n");
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function sixpn(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--require', BLOCK, CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1, stdout, stderr });
    });
  });
}

test('the block bites: sixpn up cannot load the addon', async (t) => {
  const r = await sixpn(['up', '-c', join(dir, 'nothing.json')]);
  t.is(r.code, 1);
  t.regex(r.stderr, /cannot load the native addon/);
});

test('sixpn help without the native addon', async (t) => {
  const r = await sixpn(['help']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^usage: sixpn <command>/);
  t.regex(r.stdout, /^ {2}capture HOST/m);
  t.is(r.stderr, '');
});

test('sixpn capture and status argument errors without the native addon', async (t) => {
  const c = await sixpn(['capture', 'h1', '--mesh']);
  t.is(c.code, 1);
  t.regex(c.stderr, /^sixpn: -w FILE\.pcapng/);
  const s = await sixpn(['status', '--bogus']);
  t.is(s.code, 1);
  t.regex(s.stderr, /unknown option --bogus/);
  t.notRegex(c.stderr + s.stderr, /native addon/);
});

(isRoot() ? test.serial : test.serial.skip)('sixpn status and conntrack read a running host without the native addon', async (t) => {
  const name = `noaddon${process.pid}`;
  const server = await StatusServer.listen(name, {
    status: () => ({ host: name, meshPort: 51820, gatewayPort: 51821, topology: '0123456789abcdef', machines: [], peers: [], externalPeers: [], router: { forwarded_mesh: 5 } }),
    conntrack: () => ['udp      17 29 src=fdaa::1 dst=2001:db8::1 sport=1 dport=2 [ASSURED] mark=0 use=1'],
  });
  t.teardown(() => server.close());
  const s = await sixpn(['status', name]);
  t.is(s.code, 0, s.stderr);
  t.regex(s.stdout, new RegExp(`^host ${name} \\(mesh port 51820, gateway port 51821\\)$`, 'm'));
  t.regex(s.stdout, /router: forwarded_mesh 5/);
  const j = await sixpn(['status', '--json', name]);
  t.is((JSON.parse(j.stdout) as { host: string }).host, name);
  const c = await sixpn(['conntrack', name]);
  t.is(c.code, 0, c.stderr);
  t.regex(c.stdout, /src=fdaa::1 dst=2001:db8::1/);
  t.regex(c.stderr, /1 flow entries have been shown/);
});

test('bin/sixpn runs node with the flags of src/cli/node-flags.ts, which the starters of sixpn up pass too', (t) => {
  const launcher = readFileSync(new URL('../bin/sixpn', import.meta.url), 'utf8');
  const exec = /^exec "\$node_bin" (.*) "\$here\/\.\.\/src\/cli\/sixpn\.ts" "\$@"$/m.exec(launcher);
  t.truthy(exec, 'the exec line of bin/sixpn');
  t.deepEqual(exec![1].split(' ').filter(Boolean), [...SIXPN_NODE_FLAGS]);
});
