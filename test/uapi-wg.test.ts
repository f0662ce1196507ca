// src/uapi against the real `wg` (Debian wireguard-tools) over /var/run/wireguard/IFNAME.sock,
// serving an in-memory device: no network interface exists, `wg` finds the interface by its
// socket alone (wireguard-tools ipc.c asks userspace_has_wireguard_interface first).
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chosenBackend, generatePrivateKeyBytes, keyToBase64 } from '../src/noise/index.ts';
import { MemoryDevice, formatCidr, UAPI_SOCKET_DIR, type MemoryDeviceOptions } from '../src/uapi/index.ts';
import { UapiServer, uapiSocketPath } from '../src/uapi/server.ts';
import { isRoot } from './helpers/netns.ts';

const rootSerial = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root

const WG = '/usr/bin/wg';
const BASE = `sxu${process.pid % 100000}`;
let serial = 0;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(cmd: string, args: string[]): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 1 << 28, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1;
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

async function wg(t: ExecutionContext, ...args: string[]): Promise<Run> {
  const r = await run(WG, args);
  if (r.code !== 0) t.log(`wg ${args.slice(0, 4).join(' ')} … exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}

interface Iface {
  name: string;
  dev: MemoryDevice;
  srv: UapiServer;
}

async function up(t: ExecutionContext, options: MemoryDeviceOptions = {}): Promise<Iface> {
  const name = `${BASE}${String.fromCharCode(97 + serial++)}`;
  const path = uapiSocketPath(name);
  let srv: UapiServer | null = null;
  t.teardown(async () => {
    await srv?.close();
    rmSync(path, { force: true }); // even if listen() or the test failed half-way
  });
  const dev = new MemoryDevice(options);
  srv = await UapiServer.listen(name, dev);
  return { name, dev, srv };
}

function keyPair(): { priv: Uint8Array; pub: Uint8Array; privB64: string; pubB64: string } {
  const priv = generatePrivateKeyBytes();
  const pub = chosenBackend.x25519.importPrivate(priv).publicKey;
  return { priv, pub, privB64: keyToBase64(priv), pubB64: keyToBase64(pub) };
}

function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sixpn-uapi-wg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function file(dir: string, name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text, { mode: 0o600 });
  return p;
}

const state = (dev: MemoryDevice): string => JSON.stringify(dev.uapiGet(), (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));

rootSerial('wg finds the interface by its socket alone; the socket directory is 0755', async (t) => {
  const { name } = await up(t);
  t.is(statSync(UAPI_SOCKET_DIR).mode & 0o777, 0o755);
  t.is(statSync(uapiSocketPath(name)).mode & 0o777, 0o600);
  const ip = await run('ip', ['link', 'show', name]);
  t.not(ip.code, 0, 'there is no network interface of that name');
  const list = await wg(t, 'show', 'interfaces');
  t.is(list.code, 0);
  t.true(list.stdout.trim().split(/\s+/).includes(name), list.stdout);
  const show = await wg(t, 'show', name);
  t.is(show.code, 0);
  t.is(show.stdout, `interface: ${name}\n`);
});

rootSerial('wg set with every option, read back by wg show, show dump, showconf; handshake time is Unix time', async (t) => {
  const { name, dev } = await up(t);
  const dir = scratch(t);
  const me = keyPair();
  const peer = keyPair();
  const psk = generatePrivateKeyBytes();
  const r = await wg(t, 'set', name, 'private-key', file(dir, 'priv', me.privB64 + '\n'), 'listen-port', '51821', 'fwmark', '0x2a',
    'peer', peer.pubB64, 'allowed-ips', '10.0.0.0/8,fd00::1/64', 'endpoint', '[::1]:5', 'persistent-keepalive', '25', 'preshared-key', file(dir, 'psk', keyToBase64(psk) + '\n'));
  t.is(r.code, 0);
  t.deepEqual(dev.privateKey, me.priv);
  t.is(dev.listenPort, 51821);
  t.is(dev.fwmark, 42);
  const p = dev.peer(peer.pub)!;
  t.truthy(p);
  t.deepEqual(p.presharedKey, psk);
  t.is(p.endpoint, '[::1]:5');
  t.is(p.persistentKeepaliveS, 25);
  t.deepEqual([...p.allowed.values()].map(formatCidr), ['10.0.0.0/8', 'fd00::/64']);

  const nowS = Math.floor(Date.now() / 1000);
  p.lastHandshakeUnixMs = Date.now() - 42_000;
  p.rxBytes = 1240;
  p.txBytes = 3 * 1024 * 1024;
  const show = await wg(t, 'show', name);
  t.is(show.code, 0);
  t.log(show.stdout);
  t.regex(show.stdout, new RegExp(`^interface: ${name}\n  public key: ${escape(me.pubB64)}\n  private key: \\(hidden\\)\n  listening port: 51821\n  fwmark: 0x2a\n`));
  t.true(show.stdout.includes(`peer: ${peer.pubB64}\n  preshared key: (hidden)\n  endpoint: [::1]:5\n  allowed ips: 10.0.0.0/8, fd00::/64\n`));
  t.regex(show.stdout, /latest handshake: 4[1-4] seconds ago\n/);
  t.notRegex(show.stdout, /year/);
  t.true(show.stdout.includes('transfer: 1.21 KiB received, 3.00 MiB sent\n'));
  t.true(show.stdout.includes('persistent keepalive: every 25 seconds\n'));

  const dump = await wg(t, 'show', name, 'dump');
  const [dev0, peer0, ...rest] = dump.stdout.trim().split('\n').map((l) => l.split('\t'));
  t.deepEqual(rest, []);
  t.deepEqual(dev0, [me.privB64, me.pubB64, '51821', '0x2a']);
  t.deepEqual(peer0.slice(0, 4), [peer.pubB64, keyToBase64(psk), '[::1]:5', '10.0.0.0/8,fd00::/64']);
  t.true(Math.abs(Number(peer0[4]) - (nowS - 42)) <= 2, `latest handshake ${peer0[4]} is Unix time`);
  t.deepEqual(peer0.slice(5), ['1240', String(3 * 1024 * 1024), '25']);

  const conf = await wg(t, 'showconf', name);
  t.is(
    conf.stdout,
    `[Interface]\nListenPort = 51821\nFwMark = 0x2a\nPrivateKey = ${me.privB64}\n\n` +
      `[Peer]\nPublicKey = ${peer.pubB64}\nPresharedKey = ${keyToBase64(psk)}\nAllowedIPs = 10.0.0.0/8, fd00::/64\nEndpoint = [::1]:5\nPersistentKeepalive = 25\n`,
  );

  // showconf → setconf into a second interface gives the same configuration.
  const other = await up(t);
  t.is((await wg(t, 'setconf', other.name, file(dir, 'conf', conf.stdout))).code, 0);
  t.is((await wg(t, 'showconf', other.name)).stdout, conf.stdout);
  // syncconf (a get, then a set of the differences) with one prefix changed.
  t.is((await wg(t, 'syncconf', other.name, file(dir, 'conf2', conf.stdout.replace('10.0.0.0/8', '10.1.0.0/16')))).code, 0);
  t.deepEqual([...other.dev.peer(peer.pub)!.allowed.values()].map(formatCidr), ['10.1.0.0/16', 'fd00::/64']);
});

function escape(s: string): string {
  return s.replace(/[+/=]/g, '\\$&');
}

rootSerial('wg set peer KEY remove removes that peer only; listen-port 0 makes the device pick', async (t) => {
  const { name, dev } = await up(t, { pickPort: () => 40123 });
  const a = keyPair();
  const b = keyPair();
  t.is((await wg(t, 'set', name, 'listen-port', '0', 'peer', a.pubB64, 'allowed-ips', '10.1.0.0/16', 'peer', b.pubB64, 'allowed-ips', '10.2.0.0/16')).code, 0);
  t.is(dev.peers.size, 2);
  t.is((await wg(t, 'show', name, 'listen-port')).stdout, '40123\n');
  t.is((await wg(t, 'set', name, 'peer', a.pubB64, 'remove')).code, 0);
  t.is(dev.peers.size, 1);
  t.truthy(dev.peer(b.pub));
  t.is((await wg(t, 'show', name, 'peers')).stdout, `${b.pubB64}\n`);
});

rootSerial('a failing set makes wg exit non-zero and leaves the device unchanged', async (t) => {
  const { name, dev } = await up(t, { portsInUse: [5555] });
  const a = keyPair();
  const b = keyPair();
  t.is((await wg(t, 'set', name, 'listen-port', '1000', 'peer', a.pubB64, 'allowed-ips', '10.1.0.0/16')).code, 0);
  const before = state(dev);
  const sets = dev.sets;

  // The device refuses: the port is taken.
  const inUse = await wg(t, 'set', name, 'listen-port', '5555', 'peer', b.pubB64, 'allowed-ips', '10.2.0.0/16');
  t.is(inUse.code, 1);
  t.regex(inUse.stderr, /Address already in use/);
  t.is(state(dev), before);

  // The socket refuses: wg resolves a scoped link-local endpoint and sends it with its zone
  // ("[fe80::1%lo]:5"), after a listen_port line that wireguard-go would already have applied.
  const zone = await wg(t, 'set', name, 'listen-port', '1234', 'peer', a.pubB64, 'allowed-ips', '10.9.0.0/16', 'endpoint', '[fe80::1%lo]:5');
  t.is(zone.code, 1);
  t.regex(zone.stderr, /Invalid argument/);
  t.is(state(dev), before);
  t.is(dev.sets, sets, 'the device never saw either request');

  // setconf replaces every peer; a bad endpoint in the last one keeps the old peers.
  const dir = scratch(t);
  const conf = `[Interface]\nListenPort = 2000\n\n[Peer]\nPublicKey = ${b.pubB64}\nAllowedIPs = 10.3.0.0/16\n\n[Peer]\nPublicKey = ${keyPair().pubB64}\nEndpoint = [fe80::2%lo]:9\n`;
  const r = await wg(t, 'setconf', name, file(dir, 'bad.conf', conf));
  t.not(r.code, 0);
  t.is(state(dev), before);
  t.deepEqual([...dev.peers.values()].map((p) => keyToBase64(p.publicKey)), [a.pubB64]);
});

function countAllowedIps(out: string): { peers: number; prefixes: number } {
  let peers = 0;
  let prefixes = 0;
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const [, ips] = line.split('\t');
    peers++;
    if (ips !== '(none)') prefixes += ips.split(' ').length;
  }
  return { peers, prefixes };
}

rootSerial('wg setconf of one peer with 130,560 allowed IPs, read back complete by wg show allowed-ips', async (t) => {
  const { name, dev } = await up(t);
  const dir = scratch(t);
  const peer = keyPair();
  const lines = ['[Interface]', `PrivateKey = ${keyPair().privB64}`, '[Peer]', `PublicKey = ${peer.pubB64}`];
  // wireguard-go tests/netns.sh: 255 × 256 × (a v4 /16 and a v6 /128).
  for (let a = 1; a <= 255; a++) {
    const ips: string[] = [];
    for (let b = 0; b <= 255; b++) ips.push(`${a}.${b}.0.0/16`, `${a.toString(16)}::${b.toString(16)}/128`);
    lines.push(`AllowedIPs = ${ips.join(',')}`);
  }
  const set = await wg(t, 'setconf', name, file(dir, 'big.conf', lines.join('\n') + '\n'));
  t.is(set.code, 0);
  t.is(dev.peer(peer.pub)!.allowed.size, 130_560);
  const show = await wg(t, 'show', name, 'allowed-ips');
  t.is(show.code, 0);
  t.deepEqual(countAllowedIps(show.stdout), { peers: 1, prefixes: 130_560 });
  t.true(show.stdout.includes(' 255.255.0.0/16 ff::ff/128\n'));
  const dump = await wg(t, 'show', name, 'dump');
  t.log(`wg setconf 130,560 prefixes: ${set.ms.toFixed(0)} ms; wg show allowed-ips: ${show.ms.toFixed(0)} ms; wg show dump: ${dump.ms.toFixed(0)} ms`);
  t.true(set.ms < 10_000 && show.ms < 10_000);
});

rootSerial('wg setconf of 40 peers × 52 prefixes, read back complete', async (t) => {
  const { name, dev } = await up(t);
  const dir = scratch(t);
  const lines = ['[Interface]', `PrivateKey = ${keyPair().privB64}`];
  for (let a = 1; a <= 40; a++) {
    lines.push('[Peer]', `PublicKey = ${keyPair().pubB64}`);
    for (let b = 1; b <= 52; b++) lines.push(`AllowedIPs = ${a}.${b}.0.0/16`);
  }
  const set = await wg(t, 'setconf', name, file(dir, 'peers.conf', lines.join('\n') + '\n'));
  t.is(set.code, 0);
  t.is(dev.peers.size, 40);
  const show = await wg(t, 'show', name, 'allowed-ips');
  t.deepEqual(countAllowedIps(show.stdout), { peers: 40, prefixes: 2080 });
  t.log(`wg setconf 40 × 52: ${set.ms.toFixed(0)} ms; wg show allowed-ips: ${show.ms.toFixed(0)} ms`);
});
