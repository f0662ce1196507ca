// The operator CLI end to end, as a user runs it (bin/sixpn), against a topology file and
// against a real etcd (skipped when etcd is not installed): orgs, apps, hosts, machines,
// peers, topology validate/export/import, errors naming the object and the rule, two CLI
// processes racing allocations.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIXPN } from './helpers/netns.ts';
import { EtcdServer, HAVE_ETCD } from './helpers/etcd.ts';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}
const env = { ...process.env, SIXPN_NODE: process.execPath };
function sixpn(args: string[], cwd: string): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(SIXPN, args, { env, cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0, stdout, stderr });
    });
  });
}

let etcd: EtcdServer | undefined;
const dirs: string[] = [];
test.before(async () => {
  if (HAVE_ETCD) etcd = await EtcdServer.start();
});
test.after.always(async () => {
  await etcd?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'sixpn-ops-'));
  dirs.push(d);
  return d;
}

async function operator(t: import('ava').ExecutionContext, store: string): Promise<void> {
  const dir = tmp();
  const run = (...args: string[]) => sixpn([...args, '--store', store], dir);
  const ok = async (...args: string[]) => {
    const r = await run(...args);
    t.is(r.code, 0, `sixpn ${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  const json = async (...args: string[]) => JSON.parse((await ok(...args, '--json')).stdout);
  const fails = async (re: RegExp, ...args: string[]) => {
    const r = await run(...args);
    t.is(r.code, 1, `sixpn ${args.join(' ')} should fail: ${r.stdout}`);
    t.regex(r.stderr, re);
  };

  t.regex((await ok('org', 'create', 'acme')).stdout, /^org acme created: network 0:1, fdaa:0:1::\/48$/m);
  t.is((await json('org', 'create', 'initech')).network, '0:2');
  await fails(/^sixpn org create: org "acme": already exists \(org names are unique\)$/m, 'org', 'create', 'acme');
  await ok('app', 'create', 'web', '--org', 'acme');
  await ok('app', 'create', 'ledger', '--org', 'initech');
  await fails(/app "x": org "nope" does not exist/, 'app', 'create', 'x', '--org', 'nope');
  const h1 = await json('host', 'add', 'ams1', '--region', 'ams', '--endpoint', '192.0.2.1:51820');
  t.is(h1.id, '0:2'); // 0:1 is the service addresses' block
  t.is(statSync(join(dir, 'ams1.key')).mode & 0o777, 0o600, 'the private key file is 0600');
  t.is(h1.config.privateKeyFile, join(dir, 'ams1.key'));
  t.is(store.startsWith('etcd') ? h1.config.store : h1.config.topology, store, 'the config names the same store');
  const h2 = await ok('host', 'add', 'ord1', '--region', 'ord', '--endpoint', '[2001:db8::2]:51820');
  t.regex(h2.stdout, /host config for `sixpn up -c FILE`:\n\{\n {2}"host": "ord1"/);
  await fails(/hosts\[2\] "ord2": endpoint: 192.0.2.1:51820 is also the endpoint of host "ams1"/, 'host', 'add', 'ord2', '--region', 'ord', '--endpoint', '192.0.2.1:51820');
  t.throws(() => statSync(join(dir, 'ord2.key')), undefined, 'the key of a refused host is removed');

  const m1 = await json('machine', 'create', 'web', '--region', 'ams', '--metadata', 'role=primary', '--process-group', 'db');
  t.regex(m1.id, /^[a-z0-9]{14}$/);
  t.is(m1.address, 'fdaa:0:1:0:2:0:1:2');
  t.deepEqual(m1.metadata, { role: 'primary' });
  const m2 = await json('machine', 'create', 'ledger', '--region', 'ams');
  t.is(m2.address, 'fdaa:0:2:0:2:0:2:2', 'the next instance on ams1');
  await fails(/new machine of app "web": no host in region "syd" \(regions with hosts: ams, ord\)/, 'machine', 'create', 'web', '--region', 'syd');
  await fails(/new machine of app "web": host "ord1" is in region "ord", not "ams"/, 'machine', 'create', 'web', '--region', 'ams', '--host', 'ord1');
  const table = (await ok('machine', 'list')).stdout;
  t.regex(table, /^ID +APP +REGION +HOST +ADDRESS +STATE/m);
  t.regex(table, new RegExp(`^${m1.id} +web +ams +ams1 +fdaa:0:1:0:2:0:1:2 +started +db +role=primary$`, 'm'));
  t.is((await json('machine', 'stop', m1.id)).state, 'stopped');
  t.is((await json('machine', 'start', m1.id)).state, 'started');
  const moved = await json('machine', 'migrate', m1.id, '--host', 'ord1');
  t.is(moved.host, 'ord1');
  t.is(moved.region, 'ord');
  t.deepEqual(moved.previous, ['fdaa:0:1:0:2:0:1:2']);
  await fails(/host "ord1": runs 1 machine \(.*\); migrate or destroy them first/, 'host', 'remove', 'ord1');
  await fails(/app "web": has 1 machine/, 'app', 'remove', 'web');

  const peer = await ok('peer', 'create', 'acme', 'ams', 'laptop');
  t.regex(peer.stderr, /cannot be recovered/);
  const conf = readFileSync(join(dir, 'laptop.conf'), 'utf8');
  t.regex(conf, /^PrivateKey = [A-Za-z0-9+/]{43}=$/m);
  t.regex(conf, /^Address = fdaa:0:1:0:2:0:3:2\/120$/m, 'a /120 on the gateway, on an instance no machine uses');
  t.regex(conf, /^DNS = fdaa:0:1::3$/m);
  t.regex(conf, /^Endpoint = 192.0.2.1:51821$/m);
  t.regex(conf, /^AllowedIPs = fdaa:0:1::\/48$/m);
  t.regex(conf, /^PersistentKeepalive = 15$/m);
  t.is(statSync(join(dir, 'laptop.conf')).mode & 0o777, 0o600);
  const peer2 = await json('peer', 'create', 'acme', 'ams', 'ci', '--out', 'ci.conf');
  t.is(peer2.address, 'fdaa:0:1:0:2:0:3:102/120', 'the next /120 of the same instance');
  t.deepEqual((await json('peer', 'list')).map((p: { name: string }) => p.name).sort(), ['ci', 'laptop']);
  await fails(/org "acme": has 1 app/, 'org', 'remove', 'acme');

  // validate, export, import
  t.regex((await ok('topology', 'validate')).stdout, /valid \(2 orgs, 2 apps, 2 hosts, 2 machines, 2 peers\)/);
  const exported = JSON.parse((await ok('topology', 'export')).stdout);
  t.is(exported.machines.length, 2);
  const bad = structuredClone(exported);
  bad.machines[0].app = 'ghost';
  writeFileSync(join(dir, 'bad.json'), JSON.stringify(bad));
  await fails(/machines\[0\] "[a-z0-9]{14}": app: unknown app "ghost"/, 'topology', 'import', 'bad.json');
  const fewer = structuredClone(exported);
  fewer.peers = [];
  writeFileSync(join(dir, 'fewer.json'), JSON.stringify(fewer));
  t.regex((await ok('topology', 'import', 'fewer.json')).stdout, /0 peers/);
  t.deepEqual(await json('peer', 'list'), []);
  await ok('machine', 'destroy', m1.id);
  await ok('machine', 'destroy', m2.id);
  await ok('host', 'remove', 'ord1');
  t.deepEqual((await json('host', 'list')).map((h: { name: string }) => h.name), ['ams1']);
  await fails(/machine "nosuchmachine00": does not exist/, 'machine', 'stop', 'nosuchmachine00');
  const usage = await run('machine', 'create');
  t.is(usage.code, 2);
  t.regex(usage.stderr, /missing APP/);
}

test('the operator CLI against a topology file', async (t) => {
  const dir = tmp();
  await operator(t, join(dir, 'topology.json'));
});

(HAVE_ETCD ? test : test.skip)('the operator CLI against etcd', async (t) => {
  await operator(t, `${etcd!.url}/ops`);
});

(HAVE_ETCD ? test : test.skip)('two CLI processes racing allocations against etcd: unique ids, no lost edit', async (t) => {
  const dir = tmp();
  const store = `${etcd!.url}/race`;
  const run = (...args: string[]) => sixpn([...args, '--store', store, '--json'], dir);
  t.is((await run('org', 'create', 'acme')).code, 0);
  t.is((await run('app', 'create', 'web', '--org', 'acme')).code, 0);
  t.is((await run('host', 'add', 'ams1', '--region', 'ams', '--endpoint', '192.0.2.1:51820')).code, 0);
  const results = await Promise.all([
    ...Array.from({ length: 4 }, () => run('machine', 'create', 'web', '--region', 'ams')),
    ...Array.from({ length: 2 }, (_, i) => run('org', 'create', `org${i}`)),
  ]);
  for (const r of results) t.is(r.code, 0, r.stderr);
  const list = JSON.parse((await run('machine', 'list')).stdout) as { id: string; instance: string }[];
  t.is(list.length, 4);
  t.is(new Set(list.map((m) => m.instance)).size, 4);
  const orgs = JSON.parse((await run('org', 'list')).stdout) as { network: string }[];
  t.is(new Set(orgs.map((o) => o.network)).size, 3);
});

