// The host's own settings (`sixpn up -c FILE` and flags): parsing, flags over file, defaults,
// clear errors, the private key file and its mode, and finding this host in the topology.
import test from 'ava';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatAddress } from '../src/ipv6/index.ts';
import { DEFAULT_TOPOLOGY_FILE, HostConfigError, mergeHostConfig, parseHostConfigFile, parseHostFlags, resolveLocalHost } from '../src/topology/index.ts';
import { loadTopology } from '../src/store/index.ts';
import { loadHostConfig, readPrivateKey } from '../src/host/config-files.ts';

const EXAMPLE = fileURLToPath(new URL('../examples/topology.example.json', import.meta.url));
const PRIVATE_KEY = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='; // the wg(8) man page example

function tempDir(t: { teardown(f: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sixpn-host-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const FULL = {
  host: 'ams1',
  privateKeyFile: 'keys/ams1.key',
  listenPort: 51821,
  uplink: 'eth0',
  topology: 'topology.json',
  dnsUpstream: ['192.0.2.53', '[2001:db8::53]:5353'],
  egress: '2001:db8:e::99',
  comment: 'ams1',
};

test('a config file: every field, paths relative to the file', (t) => {
  const c = parseHostConfigFile(JSON.stringify(FULL), '/etc/sixpn/ams1.json');
  t.is(c.host, 'ams1');
  t.is(c.privateKeyFile, '/etc/sixpn/keys/ams1.key');
  t.is(c.topology, '/etc/sixpn/topology.json');
  t.is(c.listenPort, 51821);
  t.is(c.uplink, 'eth0');
  t.deepEqual(c.dnsUpstream, [
    { address: '192.0.2.53', port: 53, family: 4 },
    { address: '2001:db8::53', port: 5353, family: 6 },
  ]);
  t.is(formatAddress(c.egress!, 0), '2001:db8:e::99');
});

test('flags: both forms, repeated --dns, -c, unknown arguments left for the caller', (t) => {
  const r = parseHostFlags(
    ['up', '-c', 'host.json', '--host=a7b:7d', '--listen-port', '5000', '--dns', '192.0.2.1',
      '--dns=192.0.2.2:5353,2001:db8::1', '--private-key', 'k', '--verbose'],
    '/srv',
  );
  t.is(r.configFile, '/srv/host.json');
  t.is(r.config.host, 'a7b:7d');
  t.is(r.config.listenPort, 5000);
  t.is(r.config.privateKeyFile, '/srv/k');
  t.deepEqual(r.config.dnsUpstream!.map((e) => `${e.address}/${e.port}`), ['192.0.2.1/53', '192.0.2.2/5353', '2001:db8::1/53']);
  t.deepEqual(r.rest, ['up', '--verbose']);
});

test('flags win over the file; defaults fill the rest', (t) => {
  const file = parseHostConfigFile(JSON.stringify({ host: 'ams1', privateKeyFile: '/k', listenPort: 1, uplink: 'eth0' }), '/etc/h.json');
  const { config: flags } = parseHostFlags(['--listen-port', '2', '--uplink', 'ens3']);
  const c = mergeHostConfig(file, flags);
  t.is(c.host, 'ams1');
  t.is(c.listenPort, 2);
  t.is(c.uplink, 'ens3');
  t.is(c.topology, DEFAULT_TOPOLOGY_FILE);
  t.deepEqual(c.dnsUpstream, []);
  t.is(c.egress, undefined);
});

test('loadHostConfig reads -c FILE and merges the flags', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'ams1.json'), JSON.stringify(FULL));
  const { config, rest } = loadHostConfig(['-c', join(dir, 'ams1.json'), '--host', 'ord1', 'extra']);
  t.is(config.host, 'ord1');
  t.is(config.privateKeyFile, join(dir, 'keys/ams1.key'));
  t.deepEqual(rest, ['extra']);
  const err = t.throws(() => loadHostConfig(['-c', join(dir, 'nope.json')]), { instanceOf: HostConfigError })!;
  t.regex(err.message, /nope\.json: cannot read: ENOENT/);
});

// [what, file or flags, problem]
const BAD: [string, () => unknown, RegExp][] = [
  ['bad port in the file', () => parseHostConfigFile('{"listenPort": 70000}', '/h.json'), /\/h\.json: listenPort: 70000 is not a port/],
  ['bad port flag', () => parseHostFlags(['--listen-port', 'x']), /--listen-port: "x" is not a port/],
  ['unknown field', () => parseHostConfigFile('{"listen_port": 1}', '/h.json'), /\/h\.json: unknown field "listen_port"/],
  ['not JSON', () => parseHostConfigFile('{"host": ', '/h.json'), /\/h\.json: not valid JSON/],
  ['not an object', () => parseHostConfigFile('[]', '/h.json'), /\/h\.json: the top level must be a JSON object/],
  ['bad uplink', () => parseHostConfigFile('{"uplink": "a/b"}', '/h.json'), /uplink: "a\/b" is not an interface name/],
  ['too long uplink', () => parseHostFlags(['--uplink', 'abcdefghijklmnop']), /--uplink: .* not an interface name/],
  ['bad resolver', () => parseHostFlags(['--dns', '192.0.2.1:0']), /--dns: resolver "192.0.2.1:0" has a bad port/],
  ['bad egress', () => parseHostFlags(['--egress', 'fdaa::5']), /--egress: fdaa::5 is a 6PN address/],
  ['bad egress text', () => parseHostConfigFile('{"egress": "2001:db8::g"}', '/h.json'), /egress: "2001:db8::g" is not an IPv6 address/],
  ['bad host', () => parseHostConfigFile('{"host": ""}', '/h.json'), /host: "" is not a host name or id/],
  ['flag without value', () => parseHostFlags(['--host']), /--host: needs a value/],
  ['missing host and key', () => mergeHostConfig({}, {}), /host: missing[\s\S]*privateKeyFile: missing/],
];

for (const [what, f, re] of BAD) {
  test(`refused: ${what}`, (t) => {
    const err = t.throws(f, { instanceOf: HostConfigError })!;
    t.regex(err.message, re);
    t.is(err.code, 'EHOSTCONFIG');
  });
}

test('all problems of a file are collected', (t) => {
  const err = t.throws(() => parseHostConfigFile('{"listenPort": 0, "uplink": "", "x": 1}', '/h.json'), { instanceOf: HostConfigError })!;
  t.is(err.problems.length, 3);
});

test('the private key: read, warned about when group or world can read it, never echoed', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'host.key');
  writeFileSync(file, `${PRIVATE_KEY}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  const ok = readPrivateKey(file);
  t.is(Buffer.from(ok.key).toString('base64'), PRIVATE_KEY);
  t.deepEqual(ok.warnings, []);
  chmodSync(file, 0o644);
  const open = readPrivateKey(file);
  t.is(open.warnings.length, 1);
  t.regex(open.warnings[0], /host\.key is accessible to group or others \(mode 0644\); chmod 600/);
  const secretLooking = 'c2VjcmV0LXNlY3JldC1zZWNyZXQ=';
  writeFileSync(file, secretLooking);
  const err = t.throws(() => readPrivateKey(file), { instanceOf: HostConfigError })!;
  t.regex(err.message, /host\.key: key is not 32 bytes of base64/);
  t.false(err.message.includes(secretLooking));
  t.throws(() => readPrivateKey(join(dir, 'none.key')), { message: /none\.key: cannot read: ENOENT/ });
});

test('workers: 0-8 from the file or --workers; anything else is refused', (t) => {
  t.is(parseHostConfigFile('{"workers": 2}', '/h.json').workers, 2);
  t.is(parseHostConfigFile('{"workers": 0}', '/h.json').workers, 0);
  t.is(parseHostFlags(['--workers', '1'], '/srv').config.workers, 1);
  t.is(mergeHostConfig({ host: 'a', privateKeyFile: '/k' }, {}).workers, undefined, 'unset: the default of src/noise/aead-pool.ts');
  for (const bad of ['9', '-1', '1.5', '"two"', 'true']) {
    const err = t.throws(() => parseHostConfigFile(`{"workers": ${bad}}`, '/h.json'), { instanceOf: HostConfigError })!;
    t.regex(err.message, /workers: .* is not a number of workers \(0-8\)/);
  }
});

test('mesh port 65535 is refused: the gateway needs the port + 1', (t) => {
  const topo = loadTopology(EXAMPLE);
  const base = mergeHostConfig({ host: 'ord1', privateKeyFile: '/k' }, {});
  const err = t.throws(() => resolveLocalHost({ ...base, listenPort: 65535 }, topo), { instanceOf: HostConfigError })!;
  t.regex(err.message, /^ *listenPort: mesh port 65535 leaves no port for the gateway, which listens on the mesh port \+ 1; use 65534 or lower$/m);
  t.is(resolveLocalHost({ ...base, listenPort: 65534 }, topo).listenPort, 65534);
});

test('this host in the topology: by name or id, listen port and egress defaults and overrides', (t) => {
  const topo = loadTopology(EXAMPLE);
  const base = mergeHostConfig({ host: 'ord1', privateKeyFile: '/k' }, {});
  const ord = resolveLocalHost(base, topo);
  t.is(ord.host.name, 'ord1');
  t.is(ord.listenPort, 51820); // its endpoint's port
  t.is(formatAddress(ord.egress!, 0), '2001:db8:e::12');
  const syd = resolveLocalHost({ ...base, host: '0x0a7b0bea', listenPort: 4000 }, topo);
  t.is(syd.host.name, 'syd1');
  t.is(syd.listenPort, 4000);
  t.is(syd.egress, undefined);
  const over = resolveLocalHost({ ...base, host: 'a7b:7d', egress: new Uint8Array(16).fill(0x20, 0, 1) }, topo);
  t.is(over.host.name, 'ams1');
  t.is(over.egress![0], 0x20);
  const err = t.throws(() => resolveLocalHost({ ...base, host: 'lhr1' }, topo), { instanceOf: HostConfigError })!;
  t.regex(err.message, /host: "lhr1" is not a host of topology .*topology\.example\.json \(hosts: ams1 \(a7b:7d\), ord1 \(a7b:d6b\), syd1 \(a7b:bea\)\)/);
});
