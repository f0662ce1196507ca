// The Wireshark key log (src/keylog.ts): the file's mode and warning, its lines, and — in
// namespaces — a tcpdump capture of a ping through sixpn-wg ⇄ wireguard-go decrypted by Debian's
// tshark with the key log sixpn-wg wrote (SIXPN_KEYLOG), beside its SIXPN_METRICS.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyLog } from '../src/keylog.ts';
import type { Logger } from '../src/log.ts';
import { MESSAGE_INITIATION, StaticIdentity, chosenBackend, generatePrivateKeyBytes } from '../src/noise/index.ts';
import type { Peer } from '../src/wg/peer.ts';
import { Lab, isRoot, sh } from './helpers/netns.ts';

const rootSerial = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root

function recordingLogger(lines: string[]): Logger {
  const l: Logger = { error: (m) => void lines.push(m), info: () => undefined, debug: () => undefined, child: () => l };
  return l;
}

test('KeyLog: created 0600 (an open one is made 0600), one warning, four lines per handshake that name its keys', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sixpn-keylog-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'keys.log');
  writeFileSync(file, '', { mode: 0o644 });
  const said: string[] = [];
  const kl = KeyLog.open(file, recordingLogger(said));
  t.is(statSync(file).mode & 0o777, 0o600);
  t.is(said.length, 1);
  t.regex(said[0], /keylog: WARNING: writing WireGuard session keys to .*keys\.log/);
  // a device's identity and one ephemeral, made through the key log's backend
  const staticRaw = generatePrivateKeyBytes();
  const identity = new StaticIdentity(kl.backend, staticRaw);
  const eph = kl.backend.x25519.generate();
  const remote = new Uint8Array(32).fill(5);
  const psk = new Uint8Array(32).fill(9);
  const msg = new Uint8Array(148);
  msg[0] = MESSAGE_INITIATION;
  msg.set(eph.publicKey, 8);
  const peer = { handshake: { identity }, publicKey: remote, presharedKey: psk } as unknown as Peer;
  kl.handshakeMessage(peer, msg);
  kl.handshakeMessage(peer, msg); // the same ephemeral is written once
  kl.close();
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  t.is(lines.length, 4);
  const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
  t.is(lines[0], `LOCAL_STATIC_PRIVATE_KEY = ${b64(staticRaw)}`);
  t.is(lines[1], `REMOTE_STATIC_PUBLIC_KEY = ${b64(remote)}`);
  t.is(lines[3], `PRESHARED_KEY = ${b64(psk)}`);
  const ephRaw = Buffer.from(/^LOCAL_EPHEMERAL_PRIVATE_KEY = (\S+)$/.exec(lines[2])![1], 'base64');
  t.is(ephRaw.length, 32);
  t.deepEqual(chosenBackend.x25519.importPrivate(ephRaw).publicKey, eph.publicKey, 'the logged ephemeral is the one in the message');
  t.is(said.length, 1, 'the warning is not repeated');
});

rootSerial('tshark decrypts a capture of sixpn-wg ⇄ wireguard-go with SIXPN_KEYLOG and shows the inner ICMPv6 echo', async (t) => {
  t.timeout(120_000);
  const lab = new Lab('kl');
  t.teardown(() => lab.cleanup());
  const keylog = join(lab.dir, 'wg.keys');
  const tn = await lab.wgPair('sixpn', 'wggo', { env: { SIXPN_KEYLOG: keylog, SIXPN_METRICS: '127.0.0.1:9587' } });
  const cap = join(lab.dir, 'outer.pcap');
  // the outer side only: the veth of namespace A (the tunnel interface would show the inner packets)
  const dump = spawn('ip', ['netns', 'exec', tn.nsA, 'tcpdump', '-i', lab.name('a0'), '--immediate-mode', '-U', '-n', '-w', cap, 'udp'], { stdio: ['ignore', 'ignore', 'pipe'] });
  lab.children.push(dump);
  let err = '';
  dump.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 100 && !err.includes('listening on'); i++) await new Promise((r) => setTimeout(r, 100));
  t.regex(err, /listening on/);
  await lab.exec(tn.nsA, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', 'fd99::2'], { timeout: 30_000 });
  await new Promise((r) => setTimeout(r, 500));
  dump.kill('SIGINT');
  await new Promise((r) => dump.once('exit', r));
  t.is(statSync(keylog).mode & 0o777, 0o600, 'the key log is 0600');
  t.regex(readFileSync(keylog, 'utf8'), /^LOCAL_STATIC_PRIVATE_KEY = \S{44}\nREMOTE_STATIC_PUBLIC_KEY = \S{44}\nLOCAL_EPHEMERAL_PRIVATE_KEY = \S{44}\nPRESHARED_KEY = \S{44}$/m);
  // the inner header is the last IPv6 header of a decrypted packet
  const fields = ['-T', 'fields', '-E', 'occurrence=l', '-e', 'icmpv6.type', '-e', 'ipv6.src', '-e', 'ipv6.dst'];
  const without = await sh('tshark', ['-n', '-r', cap, '-Y', 'icmpv6', ...fields]);
  t.is(without.trim(), '', 'without the key log nothing inner is visible');
  const decrypted = await sh('tshark', ['-n', '-r', cap, '-o', `wg.keylog_file:${keylog}`, '-Y', 'icmpv6.type == 128 || icmpv6.type == 129', ...fields]);
  t.log(decrypted.trim());
  const rows = decrypted.trim().split('\n').map((l) => l.split('\t'));
  t.true(rows.filter((r) => r[0] === '128' && r[1] === 'fd99::1' && r[2] === 'fd99::2').length >= 3, `three echo requests: ${JSON.stringify(rows)}`);
  t.true(rows.filter((r) => r[0] === '129' && r[1] === 'fd99::2' && r[2] === 'fd99::1').length >= 3, 'three echo replies');
  // the same sixpn-wg serves its device metrics (SIXPN_METRICS) in its namespace
  const text = await lab.exec(tn.nsA, process.execPath, ['-e', 'fetch("http://127.0.0.1:9587/metrics").then((r) => r.text()).then((x) => process.stdout.write(x))']);
  const lint = await sh('promtool', ['check', 'metrics'], { input: text }).then(() => 'ok', (e: Error) => e.message);
  t.is(lint, 'ok');
  const tx = new RegExp(`^sixpn_wg_peer_tx_bytes_total\\{device="${tn.ifA}",peer="${tn.keyB.pub.replace(/[+/]/g, '\\$&')}"\\} (\\d+)$`, 'm').exec(text);
  t.truthy(tx, text.split('\n').filter((l) => l.includes('peer')).join('\n'));
  t.true(Number(tx![1]) > 0);
  t.regex(text, new RegExp(`^sixpn_wg_offload_enabled\\{device="${tn.ifA}",offload="udp-gso"\\} [01]$`, 'm'));
});
