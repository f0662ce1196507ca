// `sixpn capture`'s pure parts: the pcapng writer (read back by tshark and tcpdump), the
// --filter language, the stream frames and the arguments.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseFilter } from '../src/capture/filter.ts';
import { DIR_INBOUND, DIR_OUTBOUND, enhancedPacket, interfaceDescription, interfaceStatistics, sectionHeader } from '../src/capture/pcapng.ts';
import { FRAME_END, FRAME_INTERFACE, FRAME_PACKET, FRAME_STATS, FrameReader, endFrame, interfaceFrame, packetFrame, parseRequest, statsFrame } from '../src/capture/stream.ts';
import { parseCaptureArgs } from '../src/cli/capture.ts';
import { CaptureTap, FROM, MAX_CAPTURES, QUEUE_BYTES, TO } from '../src/host/capture.ts';
import type { Logger } from '../src/log.ts';
import type { Machine, Topology } from '../src/topology/index.ts';
import type { Socket } from 'node:net';
import { ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, addressBytes, buildEcho } from '../src/ipv6/index.ts';
import { buildTcp, buildUdp } from './helpers/packets.ts';

const run = promisify(execFile);
const A = addressBytes('fdaa:0:18:a7c:1:0:a:2');
const B = addressBytes('fdaa:0:18:a7c:2:0:b:2');

function echo(type: number, src: Uint8Array, dst: Uint8Array, seq: number): Uint8Array {
  const out = new Uint8Array(200);
  return out.slice(0, buildEcho(out, 0, type, src, 0, dst, 0, 0x1234, seq, new Uint8Array(16).fill(7), 0, 16));
}
function udp(dport: number): Uint8Array {
  const out = new Uint8Array(200);
  return out.slice(0, buildUdp(out, 0, A, 0, B, 0, 40000, dport, new Uint8Array(4), 0, 4));
}
function tcp(dport: number): Uint8Array {
  const out = new Uint8Array(200);
  return out.slice(0, buildTcp(out, 0, A, 0, B, 0, 40001, dport, 1, 0, 0x02, new Uint8Array(0), 0, 0));
}

test('pcapng: two interfaces, directions, statistics; tshark and tcpdump read it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sixpn-pcapng-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'x.pcapng');
  const t0 = 1_764_000_000_000_000; // µs
  const blocks = [
    sectionHeader('sixpn test', 'a comment'),
    interfaceDescription('machine:m1', 'sixpn host h1'),
    enhancedPacket(0, t0, echo(ICMPV6_ECHO_REQUEST, A, B, 1), undefined, DIR_INBOUND),
    interfaceDescription('mesh:h2'), // an IDB after packets: allowed
    enhancedPacket(1, t0 + 1500, echo(ICMPV6_ECHO_REPLY, B, A, 1), undefined, DIR_OUTBOUND),
    enhancedPacket(0, t0 + 2001, udp(53).subarray(0, 45), 52), // cut: 45 of 52 bytes
    interfaceStatistics(0, t0 + 3000, { startMicros: t0, received: 3, dropped: 1 }),
    interfaceStatistics(1, t0 + 3000, { startMicros: t0, received: 1, dropped: 0 }),
  ];
  writeFileSync(file, Buffer.concat(blocks));
  const { stdout } = await run('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', '-e', 'frame.interface_name', '-e', 'ipv6.src', '-e', 'ipv6.dst', '-e', 'icmpv6.type',
    '-e', 'frame.len', '-e', 'frame.cap_len', '-e', 'frame.time_epoch', '-e', 'pkt_comment', '-e', 'frame.p2p_dir']);
  const rows = stdout.trim().split('\n').map((l) => l.split('|'));
  t.is(rows.length, 3, stdout);
  t.deepEqual(rows[0].slice(0, 4), ['machine:m1', 'fdaa:0:18:a7c:1:0:a:2', 'fdaa:0:18:a7c:2:0:b:2', '128']);
  t.deepEqual(rows[1].slice(0, 4), ['mesh:h2', 'fdaa:0:18:a7c:2:0:b:2', 'fdaa:0:18:a7c:1:0:a:2', '129']);
  t.deepEqual(rows[2].slice(4, 6), ['52', '45']);
  t.is(Number(rows[1][6]).toFixed(4), ((t0 + 1500) / 1e6).toFixed(4));
  const flags = await run('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.packet_flags_direction']);
  t.deepEqual(flags.stdout.split('\n').slice(0, 3).map((x) => Number(x.trim() || 0)), [1, 2, 0], flags.stdout); // inbound, outbound, not given
  const td = await run('tcpdump', ['-n', '-r', file]);
  t.regex(td.stdout, /fdaa:0:18:a7c:1:0:a:2 > fdaa:0:18:a7c:2:0:b:2: ICMP6, echo request, id 4660, seq 1/);
  t.regex(td.stdout, /ICMP6, echo reply/);
  const cap = await run('capinfos', ['-T', '-r', file]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  if (cap.stdout !== '') t.regex(cap.stdout, /\t3\t/, cap.stdout); // 3 packets
});

test('filter: protocols, ports, hosts, nets, and/or/not, parentheses; clear errors', (t) => {
  const req = echo(ICMPV6_ECHO_REQUEST, A, B, 1);
  const m = (expr: string, p: Uint8Array) => parseFilter(expr)(p, 0, p.length);
  t.true(m('', req));
  t.true(m('icmp6', req));
  t.false(m('tcp', req));
  t.true(m('udp and port 53', udp(53)));
  t.true(m('udp port 53', udp(53))); // juxtaposition is "and"
  t.false(m('udp and port 54', udp(53)));
  t.true(m('dst port 53', udp(53)));
  t.false(m('src port 53', udp(53)));
  t.true(m('tcp and dst port 443', tcp(443)));
  t.true(m('tcp or udp', udp(1)));
  t.true(m('not tcp', udp(1)));
  t.true(m('! (tcp || icmp6)', udp(1)));
  t.true(m(`host ${'fdaa:0:18:a7c:2:0:b:2'}`, req));
  t.true(m(`dst host fdaa:0:18:a7c:2:0:b:2 and src host fdaa:0:18:a7c:1:0:a:2`, req));
  t.false(m(`src host fdaa:0:18:a7c:2:0:b:2`, req));
  t.true(m('net fdaa:0:18::/48', req));
  t.false(m('net fdaa:0:19::/48', req));
  t.true(m('proto 58', req));
  t.true(m('icmp6 and (host fdaa::1 or host fdaa:0:18:a7c:1:0:a:2)', req));
  t.false(m('icmp6', new Uint8Array(10)));
  t.true(m('ip6', new Uint8Array(10)));
  t.throws(() => parseFilter('tcp and'), { message: /expected at the end/ });
  t.throws(() => parseFilter('port http'), { message: /"port" takes a number/ });
  t.throws(() => parseFilter('host 10.0.0.1'), { message: /not an IPv6 address/ });
  t.throws(() => parseFilter('(tcp'), { message: /"\)"/ });
  t.throws(() => parseFilter('arp'), { message: /unknown word "arp"/ });
  t.throws(() => parseFilter('tcp )'), { message: /unexpected "\)"/ });
});

test('stream: frames survive being cut anywhere', (t) => {
  const p = echo(ICMPV6_ECHO_REQUEST, A, B, 9);
  const bytes = Buffer.concat([
    interfaceFrame(3, 'machine:x'),
    packetFrame(3, DIR_OUTBOUND, 1.5e15, 1500, p, 0, p.length),
    statsFrame({ captured: 1, dropped: 2, perInterface: { 3: { captured: 1, dropped: 2 } } }),
    endFrame({ reason: 'done' }),
  ]);
  for (const cut of [1, 3, 7, 50]) {
    const r = new FrameReader();
    const frames = [];
    for (let i = 0; i < bytes.length; i += cut) frames.push(...r.push(bytes.subarray(i, i + cut)));
    t.is(frames.length, 4);
    t.deepEqual(frames[0], { type: FRAME_INTERFACE, id: 3, name: 'machine:x' });
    const f = frames[1];
    t.true(f.type === FRAME_PACKET && f.iface === 3 && f.direction === DIR_OUTBOUND && f.micros === 1.5e15 && f.origLen === 1500 && Buffer.from(f.data).equals(Buffer.from(p)));
    t.true(frames[2].type === FRAME_STATS && frames[2].stats.dropped === 2);
    t.deepEqual(frames[3], { type: FRAME_END, reason: 'done' });
  }
  t.throws(() => parseRequest('{}'), { message: /name a machine, a peer or the mesh/ });
  t.throws(() => parseRequest('nope'), { message: /not JSON/ });
  t.deepEqual(parseRequest('{"mesh":true,"count":3}'), { machines: [], peers: [], mesh: true, filter: '', count: 3 });
});

test('sixpn capture arguments', (t) => {
  t.deepEqual(parseCaptureArgs(['h1', '--machine', 'm1', '--machine=m2', '-w', 'x.pcapng', '-c', '5', '--filter', 'icmp6']), {
    host: 'h1', file: 'x.pcapng', request: { machines: ['m1', 'm2'], peers: [], mesh: false, filter: 'icmp6', count: 5 },
  });
  t.deepEqual(parseCaptureArgs(['h1', '--mesh', '--peer', 'acme/laptop', '-w', '-']).request, { machines: [], peers: ['acme/laptop'], mesh: true, filter: '', count: 0 });
  t.throws(() => parseCaptureArgs(['h1', '-w', 'x']), { message: /--machine ID, --peer NAME or --mesh/ });
  t.throws(() => parseCaptureArgs(['h1', '--mesh']), { message: /-w FILE/ });
  t.throws(() => parseCaptureArgs(['--mesh', '-w', 'x']), { message: /name the host/ });
  t.throws(() => parseCaptureArgs(['h1', '--mesh', '-w', 'x', '-c', '0']), { message: /-c: a number/ });
  t.throws(() => parseCaptureArgs(['h1', '--mesh', '-w', 'x', '--filter', 'port x']), { message: /"port" takes a number/ });
  t.throws(() => parseCaptureArgs(['h1', '--mesh', '-w', 'x', '--bogus']), { message: /unknown option --bogus/ });
});

test('the tap: one boolean when idle; a full queue drops and counts; -c ends the stream', async (t) => {
  const written: Uint8Array[] = [];
  let ended = false;
  const socket = {
    writableLength: 0, destroyed: false,
    write: (b: Uint8Array) => void written.push(b), end: (b?: Uint8Array) => { if (b) written.push(b); ended = true; }, on: () => socket,
  };
  const machine = { id: 'm1', host: 7 } as unknown as Machine;
  const topology = { machine: (id: string) => (id === 'm1' ? machine : undefined), host: () => undefined, peersOnGateway: () => [] } as unknown as Topology;
  const log = { info: () => undefined, error: () => undefined } as unknown as Logger;
  const tap = new CaptureTap({ topology: () => topology, hostId: 7, log });
  t.false(tap.on);
  tap.serve(socket as unknown as Socket, JSON.stringify({ machines: ['m1'], count: 3, filter: 'icmp6' }));
  t.true(tap.on);
  const p = echo(ICMPV6_ECHO_REQUEST, A, B, 1);
  tap.machine(machine, FROM, udp(53), 0, 52); // filtered out
  tap.machine(machine, FROM, p, 0, p.length);
  socket.writableLength = QUEUE_BYTES; // the reader is stuck
  tap.machine(machine, TO, p, 0, p.length);
  tap.machine(machine, TO, p, 0, p.length);
  socket.writableLength = 0;
  tap.machine(machine, TO, p, 0, p.length);
  tap.machine(machine, TO, p, 0, p.length);
  tap.machine(machine, TO, p, 0, p.length); // the third captured ends it: not this one
  t.true(ended);
  t.false(tap.on);
  const frames = new FrameReader().push(Buffer.concat(written));
  t.is(frames.filter((f) => f.type === FRAME_PACKET).length, 3);
  const last = frames.filter((f) => f.type === FRAME_STATS).at(-1);
  t.true(last?.type === FRAME_STATS && last.stats.captured === 3 && last.stats.dropped === 2 && last.stats.perInterface['0'].dropped === 2, JSON.stringify(last));
  t.deepEqual(frames.at(-1), { type: FRAME_END, reason: '3 packets captured' });
  // a bad request: an end frame with the error, and no session
  written.length = 0;
  tap.serve(socket as unknown as Socket, JSON.stringify({ machines: ['m9'] }));
  t.false(tap.on);
  t.deepEqual(new FrameReader().push(Buffer.concat(written)), [{ type: FRAME_END, error: 'no machine m9 in the topology' }]);
  // at most MAX_CAPTURES at once
  for (let i = 0; i < MAX_CAPTURES; i++) tap.serve(socket as unknown as Socket, JSON.stringify({ machines: ['m1'] }));
  t.is(tap.running, MAX_CAPTURES);
  written.length = 0;
  tap.serve(socket as unknown as Socket, JSON.stringify({ machines: ['m1'] }));
  t.is(tap.running, MAX_CAPTURES);
  t.regex(JSON.stringify(new FrameReader().push(Buffer.concat(written)).at(-1)), /captures are running on this host already/);
  tap.close();
  t.is(tap.running, 0);
  t.false(tap.on);
});
