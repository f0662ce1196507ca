// src/uapi protocol: the streaming parser (every key, every error and its errno as wireguard-go
// gives it, chunking, several requests per connection, bounds) and the get/set formatters.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import {
  UapiParser,
  formatGet,
  formatSet,
  formatErrno,
  formatCidr,
  parseCidr,
  parseEndpoint,
  UAPI_E2BIG,
  UAPI_EINVAL,
  UAPI_EIO,
  UAPI_EPROTO,
  UAPI_MAX_LINE_BYTES,
  UAPI_MAX_SET_LINES,
  type Cidr,
  type UapiDeviceState,
  type UapiPeerChange,
  type UapiRequest,
  type UapiSet,
} from '../src/uapi/index.ts';

const K1 = '11'.repeat(32);
const K2 = 'ab'.repeat(32);
const Z = '0'.repeat(64);
const key = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'));

function parseAll(text: string | Buffer): UapiRequest[] {
  const p = new UapiParser();
  p.feed(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
  const out: UapiRequest[] = [];
  for (let r = p.next(); r !== null; r = p.next()) out.push(r);
  return out;
}

function parseSet(body: string): UapiSet {
  const r = parseAll(`set=1\n${body}\n`);
  if (r.length !== 1 || r[0].kind !== 'set') throw new Error(`not a set: ${JSON.stringify(r)}`);
  return r[0].set;
}

function errnoOf(body: string): number {
  const r = parseAll(`set=1\n${body}\n`);
  if (r.length !== 1 || r[0].kind !== 'error') return 0;
  return r[0].errno;
}

function peer(body: string): UapiPeerChange {
  const s = parseSet(`public_key=${K1}\n${body}`);
  return s.peers[0];
}

const v4 = (a: number, b: number, c: number, d: number, len: number): Cidr => ({ family: 4, addr: new Uint8Array([a, b, c, d]), prefixLen: len });

// ---- operations ----

test('get=1 and set=1 are the only operations; anything else is -EPROTO and closes', (t) => {
  t.deepEqual(parseAll('get=1\n\n'), [{ kind: 'get' }]);
  t.deepEqual(parseAll('set=1\n\n'), [{ kind: 'set', set: { replacePeers: false, peers: [] } }]);
  for (const op of ['get=2\n', 'GET=1\n', 'get=1 \n', 'set=1\r\n', '\n', 'hello\n', 'errno=0\n']) {
    const p = new UapiParser();
    p.feed(Buffer.from(op + 'get=1\n\n'));
    t.deepEqual(p.next(), { kind: 'error', errno: UAPI_EPROTO }, JSON.stringify(op));
    t.true(p.closed);
    t.is(p.next(), null);
    p.feed(Buffer.from('get=1\n\n'));
    t.is(p.next(), null, 'nothing is read after an error');
  }
});

test('get=1 must be followed by exactly "\\n" (wireguard-go reads one byte): else -EINVAL', (t) => {
  t.deepEqual(parseAll('get=1\nx\n'), [{ kind: 'error', errno: UAPI_EINVAL }]);
  const p = new UapiParser();
  p.feed(Buffer.from('get=1\n'));
  t.is(p.next(), null, 'waits for the second newline');
  t.true(p.midRequest);
  p.feed(Buffer.from('\n'));
  t.deepEqual(p.next(), { kind: 'get' });
  t.false(p.midRequest);
});

test('several requests on one connection, in one write', (t) => {
  const text = `get=1\n\nset=1\nlisten_port=1\n\nget=1\n\nset=1\npublic_key=${K1}\nremove=true\n\nget=1\n\n`;
  const r = parseAll(text);
  t.deepEqual(
    r.map((x) => x.kind),
    ['get', 'set', 'get', 'set', 'get'],
  );
  t.is((r[1] as { set: UapiSet }).set.listenPort, 1);
  t.true((r[3] as { set: UapiSet }).set.peers[0].remove);
});

// ---- device keys ----

test('private_key: 64 hex digits of either case; all zeros clears (null); else -EINVAL', (t) => {
  t.deepEqual(parseSet(`private_key=${K2}\n`).privateKey, key(K2));
  t.deepEqual(parseSet(`private_key=${K2.toUpperCase()}\n`).privateKey, key(K2));
  t.is(parseSet(`private_key=${Z}\n`).privateKey, null);
  t.false('privateKey' in parseSet(''));
  for (const bad of ['', K2.slice(2), K2 + 'ab', 'g' + K2.slice(1), ' ' + K2.slice(1), Buffer.from(key(K2)).toString('base64')]) {
    t.is(errnoOf(`private_key=${bad}\n`), UAPI_EINVAL, bad);
  }
});

test('listen_port: decimal 0–65535 (strconv.ParseUint 16); else -EINVAL', (t) => {
  t.is(parseSet('listen_port=0\n').listenPort, 0);
  t.is(parseSet('listen_port=51820\n').listenPort, 51820);
  t.is(parseSet('listen_port=65535\n').listenPort, 65535);
  t.is(parseSet('listen_port=080\n').listenPort, 80, 'leading zeros, as ParseUint');
  t.is(parseSet('listen_port=1\nlisten_port=2\n').listenPort, 2, 'the last wins');
  for (const bad of ['', '65536', '-1', '+1', '1 ', '0x10', '1e3', '99999999999999999999999']) t.is(errnoOf(`listen_port=${bad}\n`), UAPI_EINVAL, bad);
});

test('fwmark: decimal 0–2^32−1; else -EINVAL', (t) => {
  t.is(parseSet('fwmark=0\n').fwmark, 0);
  t.is(parseSet('fwmark=4294967295\n').fwmark, 4294967295);
  for (const bad of ['', '4294967296', '-1', 'x']) t.is(errnoOf(`fwmark=${bad}\n`), UAPI_EINVAL, bad);
});

test('replace_peers: only "true"; else -EINVAL', (t) => {
  t.true(parseSet('replace_peers=true\n').replacePeers);
  t.false(parseSet('').replacePeers);
  for (const bad of ['false', 'TRUE', '1', '']) t.is(errnoOf(`replace_peers=${bad}\n`), UAPI_EINVAL, bad);
});

test('unknown keys, and keys in the wrong section, are -EINVAL; a line without "=" is -EPROTO', (t) => {
  t.is(errnoOf('bogus=1\n'), UAPI_EINVAL);
  t.is(errnoOf('=1\n'), UAPI_EINVAL);
  t.is(errnoOf('jc=4\n'), UAPI_EINVAL, 'no AmneziaWG keys');
  for (const k of ['remove=true', 'update_only=true', `preshared_key=${K1}`, 'endpoint=1.2.3.4:5', 'persistent_keepalive_interval=1', 'replace_allowed_ips=true', 'allowed_ip=10.0.0.0/8', 'protocol_version=1']) {
    t.is(errnoOf(`${k}\n`), UAPI_EINVAL, `peer key before public_key: ${k}`);
  }
  for (const k of [`private_key=${K2}`, 'listen_port=1', 'fwmark=1', 'replace_peers=true', 'last_handshake_time_sec=1', 'tx_bytes=1']) {
    t.is(errnoOf(`public_key=${K1}\n${k}\n`), UAPI_EINVAL, `device or get-only key in a peer: ${k}`);
  }
  t.is(errnoOf('listen_port\n'), UAPI_EPROTO);
  t.is(errnoOf(`public_key=${K1}\nremove\n`), UAPI_EPROTO);
  t.is(errnoOf('listen_port=1\nnonsense\nlisten_port=2\n'), UAPI_EPROTO);
});

// ---- peer keys ----

test('public_key: 64 hex digits; each occurrence starts a section, in order', (t) => {
  const s = parseSet(`public_key=${K1}\npublic_key=${K2}\npublic_key=${K1}\n`);
  t.deepEqual(
    s.peers.map((p) => Buffer.from(p.publicKey).toString('hex')),
    [K1, K2, K1],
  );
  t.deepEqual(s.peers[0], { publicKey: key(K1), remove: false, updateOnly: false, replaceAllowedIps: false, allowedIpsAdd: [], allowedIpsRemove: [] });
  for (const bad of ['', K1.slice(1), `${K1}0`, 'z'.repeat(64)]) t.is(errnoOf(`public_key=${bad}\n`), UAPI_EINVAL, bad);
});

test('remove: only "true"; drops what the section said before, ignores (but still checks) what follows', (t) => {
  const p = peer(`endpoint=1.2.3.4:5\nallowed_ip=10.0.0.0/8\nremove=true\nallowed_ip=11.0.0.0/8\npreshared_key=${K2}\npersistent_keepalive_interval=5\nreplace_allowed_ips=true\n`);
  t.deepEqual(p, { publicKey: key(K1), remove: true, updateOnly: false, replaceAllowedIps: false, allowedIpsAdd: [], allowedIpsRemove: [] });
  t.is(errnoOf(`public_key=${K1}\nremove=true\nallowed_ip=10.0.0.0/33\n`), UAPI_EINVAL, 'lines after remove are still validated');
  t.is(errnoOf(`public_key=${K1}\nremove=yes\n`), UAPI_EINVAL);
  const s = parseSet(`public_key=${K1}\nremove=true\npublic_key=${K1}\nallowed_ip=10.0.0.0/8\n`);
  t.true(s.peers[0].remove);
  t.false(s.peers[1].remove, 'a later section for the same key is its own');
  t.is(s.peers[1].allowedIpsAdd.length, 1);
});

test('remove with update_only on either side of it is a plain removal, and formats back to itself (found by fuzz/targets/uapi.ts)', (t) => {
  for (const lines of ['update_only=true\nremove=true\n', 'remove=true\nupdate_only=true\n']) {
    const p = peer(lines);
    t.deepEqual(p, { publicKey: key(K1), remove: true, updateOnly: false, replaceAllowedIps: false, allowedIpsAdd: [], allowedIpsRemove: [] }, lines);
    const again = new UapiParser();
    again.feed(Buffer.from(formatSet({ replacePeers: false, peers: [p] }).join('')));
    const r = again.next();
    t.deepEqual(r?.kind === 'set' ? r.set.peers[0] : r, p);
  }
});

test('update_only: only "true"; flags the section', (t) => {
  const p = peer('allowed_ip=10.0.0.0/8\nupdate_only=true\nendpoint=1.2.3.4:5\n');
  t.true(p.updateOnly);
  t.is(p.allowedIpsAdd.length, 1);
  t.truthy(p.endpoint);
  t.is(errnoOf(`public_key=${K1}\nupdate_only=false\n`), UAPI_EINVAL);
});

test('preshared_key: 64 hex digits; all zeros is null (no key); else -EINVAL', (t) => {
  t.deepEqual(peer(`preshared_key=${K2}\n`).presharedKey, key(K2));
  t.is(peer(`preshared_key=${Z}\n`).presharedKey, null);
  t.false('presharedKey' in peer(''));
  t.is(errnoOf(`public_key=${K1}\npreshared_key=${K2.slice(1)}\n`), UAPI_EINVAL);
});

test('endpoint: a.b.c.d:port or [v6]:port (netip.ParseAddrPort); zones, names and bad ports are -EINVAL', (t) => {
  t.deepEqual(peer('endpoint=192.0.2.1:51820\n').endpoint, { family: 4, addr: new Uint8Array([192, 0, 2, 1]), port: 51820 });
  t.deepEqual(peer('endpoint=[::1]:5\n').endpoint, { family: 6, addr: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), port: 5 });
  t.deepEqual(parseEndpoint('[FD00::A]:0'), { family: 6, addr: new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa]), port: 0 });
  t.deepEqual(parseEndpoint('[::ffff:1.2.3.4]:9')?.addr, new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]));
  t.is(peer('endpoint=1.1.1.1:1\nendpoint=[::2]:2\n').endpoint?.port, 2, 'the last wins');
  for (const bad of [
    '', '1.2.3.4', '1.2.3.4:', '1.2.3.4:65536', '1.2.3.4:-1', '1.2.3:5', '1.2.3.4.5:5', '01.2.3.4:5', '256.1.1.1:5',
    '::1:5', '[::1]', '[::1]:', '[::1]5', '[1.2.3.4]:5', '[fe80::1%eth0]:51820', '[fe80::1%25eth0]:1', 'example.com:51820',
    '[::1:5', '::1]:5', ' 1.2.3.4:5', '1.2.3.4:5 ',
  ]) {
    t.is(errnoOf(`public_key=${K1}\nendpoint=${bad}\n`), UAPI_EINVAL, bad);
  }
});

test('persistent_keepalive_interval: 0–65535; else -EINVAL', (t) => {
  t.is(peer('persistent_keepalive_interval=0\n').persistentKeepaliveS, 0);
  t.is(peer('persistent_keepalive_interval=65535\n').persistentKeepaliveS, 65535);
  for (const bad of ['', '65536', '-1', '1.5']) t.is(errnoOf(`public_key=${K1}\npersistent_keepalive_interval=${bad}\n`), UAPI_EINVAL, bad);
});

test('allowed_ip: v4 and v6 prefixes with host bits cleared; -cidr removes; bad ones are -EINVAL', (t) => {
  const p = peer('allowed_ip=10.1.2.3/8\nallowed_ip=fd00:1:2:3::5/48\nallowed_ip=0.0.0.0/0\nallowed_ip=::/0\nallowed_ip=::ffff:10.0.0.1/128\nallowed_ip=-192.168.1.1/24\nallowed_ip=-fd00::1/128\n');
  t.deepEqual(p.allowedIpsAdd.map(formatCidr), ['10.0.0.0/8', 'fd00:1:2::/48', '0.0.0.0/0', '::/0', '::ffff:10.0.0.1/128']);
  t.deepEqual(p.allowedIpsRemove.map(formatCidr), ['192.168.1.0/24', 'fd00::1/128']);
  t.deepEqual(parseCidr('10.255.255.255/9', 0), v4(10, 128, 0, 0, 9));
  t.deepEqual(parseCidr('10.255.255.255/32', 0), v4(10, 255, 255, 255, 32));
  for (const bad of [
    '', '10.0.0.0', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/08', '10.0.0.0/+8', '10.0.0.0/8/8', '10.0.0/8', '010.0.0.0/8',
    'fd00::/129', 'fd00::/0128', 'fe80::1%eth0/64', 'fd00::g/64', '--10.0.0.0/8', '-', '10.0.0.0/ 8', ' 10.0.0.0/8',
  ]) {
    t.is(errnoOf(`public_key=${K1}\nallowed_ip=${bad}\n`), UAPI_EINVAL, bad);
  }
});

test('allowed_ip order within a section: replace drops what came before, a removal withdraws an earlier add', (t) => {
  let p = peer('allowed_ip=10.0.0.0/8\nallowed_ip=-11.0.0.0/8\nreplace_allowed_ips=true\nallowed_ip=12.0.0.0/8\n');
  t.true(p.replaceAllowedIps);
  t.deepEqual(p.allowedIpsAdd.map(formatCidr), ['12.0.0.0/8']);
  t.deepEqual(p.allowedIpsRemove, []);
  // add A, add B, add A again, remove A → B stays, A is removed (and the removal is passed on).
  p = peer('allowed_ip=10.0.0.0/8\nallowed_ip=11.0.0.0/8\nallowed_ip=10.1.0.0/8\nallowed_ip=-10.0.0.0/8\n');
  t.deepEqual(p.allowedIpsAdd.map(formatCidr), ['11.0.0.0/8']);
  t.deepEqual(p.allowedIpsRemove.map(formatCidr), ['10.0.0.0/8']);
  // remove A then add A → A added (the device removes before it adds).
  p = peer('allowed_ip=-10.0.0.0/8\nallowed_ip=10.0.0.0/8\n');
  t.deepEqual(p.allowedIpsAdd.map(formatCidr), ['10.0.0.0/8']);
  t.deepEqual(p.allowedIpsRemove.map(formatCidr), ['10.0.0.0/8']);
  // add, remove, add again → added.
  p = peer('allowed_ip=10.0.0.0/8\nallowed_ip=-10.0.0.0/8\nallowed_ip=10.0.0.0/8\n');
  t.deepEqual(p.allowedIpsAdd.map(formatCidr), ['10.0.0.0/8']);
  t.true(peer('replace_allowed_ips=true\n').replaceAllowedIps);
  t.is(errnoOf(`public_key=${K1}\nreplace_allowed_ips=1\n`), UAPI_EINVAL);
});

test('protocol_version: only 1, only in a peer section', (t) => {
  t.notThrows(() => peer('protocol_version=1\n'));
  for (const bad of ['0', '2', '', '01']) t.is(errnoOf(`public_key=${K1}\nprotocol_version=${bad}\n`), UAPI_EINVAL, bad);
});

// ---- errors: drained to the blank line, then reported; nothing of the set survives ----

test('a failing set is reported only at its blank line, and the parser closes', (t) => {
  const p = new UapiParser();
  p.feed(Buffer.from(`set=1\nlisten_port=99999\npublic_key=${K1}\nallowed_ip=10.0.0.0/8\n`));
  t.is(p.next(), null, 'the client is still writing: keep reading');
  p.feed(Buffer.from('allowed_ip=11.0.0.0/8\n\nget=1\n\n'));
  t.deepEqual(p.next(), { kind: 'error', errno: UAPI_EINVAL });
  t.true(p.closed);
  t.is(p.next(), null, 'the get after it is not served');
});

test('the first error decides the errno', (t) => {
  t.is(errnoOf('nonsense\nlisten_port=x\n'), UAPI_EPROTO);
  t.is(errnoOf('listen_port=x\nnonsense\n'), UAPI_EINVAL);
});

test('a line longer than UAPI_MAX_LINE_BYTES is -EIO, without buffering it', (t) => {
  const p = new UapiParser();
  p.feed(Buffer.from(`set=1\npublic_key=${K1}\nallowed_ip=`));
  for (let i = 0; i < 100; i++) p.feed(Buffer.alloc(1 << 16, 0x31)); // 6.5 MB in one line
  t.is(p.next(), null);
  p.feed(Buffer.from('\nallowed_ip=10.0.0.0/8\n\n'));
  t.deepEqual(p.next(), { kind: 'error', errno: UAPI_EIO });
  // Exactly at the limit is fine; one more byte is not (split over chunks either way).
  const at = `set=1\npublic_key=${K1}\nallowed_ip=${'1'.repeat(UAPI_MAX_LINE_BYTES - 'allowed_ip='.length)}\n\n`;
  t.is(errnoOf(at.slice(6, -1)), UAPI_EINVAL, 'a long line at the limit is read (and is a bad prefix)');
  const over = `set=1\nlisten_port=${'1'.repeat(UAPI_MAX_LINE_BYTES)}\n\n`;
  const q = new UapiParser();
  for (let i = 0; i < over.length; i += 1000) q.feed(Buffer.from(over.slice(i, i + 1000)));
  t.deepEqual(q.next(), { kind: 'error', errno: UAPI_EIO });
  const op = new UapiParser();
  op.feed(Buffer.alloc(UAPI_MAX_LINE_BYTES + 1, 0x61));
  t.deepEqual(op.next(), { kind: 'error', errno: UAPI_EPROTO }, 'an over-long first line fails before its newline');
});

test('a set of more than UAPI_MAX_SET_LINES lines is -E2BIG; the count stops at the limit', (t) => {
  const line = Buffer.from('protocol_version=1\n');
  const head = Buffer.from(`set=1\npublic_key=${K1}\n`);
  const body = Buffer.alloc(line.length * UAPI_MAX_SET_LINES);
  for (let i = 0; i < UAPI_MAX_SET_LINES; i++) line.copy(body, i * line.length);
  let p = new UapiParser();
  p.feed(head);
  p.feed(body.subarray(line.length)); // limit − 1 lines after public_key: at the limit
  p.feed(Buffer.from('\n'));
  t.is(p.next()?.kind, 'set');
  p = new UapiParser();
  p.feed(head);
  p.feed(body);
  p.feed(Buffer.from('\n'));
  t.deepEqual(p.next(), { kind: 'error', errno: UAPI_E2BIG });
});

// ---- chunking ----

const SAMPLE =
  `get=1\n\nset=1\nprivate_key=${K2}\nlisten_port=51820\nfwmark=7\nreplace_peers=true\n` +
  `public_key=${K1}\npreshared_key=${K2}\nendpoint=[fd00::1]:51820\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\n` +
  `allowed_ip=10.0.0.0/8\nallowed_ip=fd00::/8\nallowed_ip=-11.0.0.0/8\nprotocol_version=1\n` +
  `public_key=${K2}\nupdate_only=true\nendpoint=192.0.2.1:1\n\nget=1\n\n`;

test('the sample request split at every byte position (and every pair) parses the same', (t) => {
  const whole = parseAll(SAMPLE);
  t.deepEqual(
    whole.map((r) => r.kind),
    ['get', 'set', 'get'],
  );
  const bytes = Buffer.from(SAMPLE);
  for (let i = 0; i <= bytes.length; i++) {
    const p = new UapiParser();
    const out: UapiRequest[] = [];
    for (const part of [bytes.subarray(0, i), bytes.subarray(i)]) {
      p.feed(part);
      for (let r = p.next(); r !== null; r = p.next()) out.push(r);
    }
    if (JSON.stringify(out) !== JSON.stringify(whole)) return t.fail(`split at ${i}`);
  }
  // One byte at a time, pulling after each.
  const p = new UapiParser();
  const out: UapiRequest[] = [];
  for (let i = 0; i < bytes.length; i++) {
    p.feed(bytes.subarray(i, i + 1));
    for (let r = p.next(); r !== null; r = p.next()) out.push(r);
  }
  t.deepEqual(out, whole);
  // Three pieces at every pair of cut points.
  for (let i = 0; i <= bytes.length; i += 3) {
    for (let j = i; j <= bytes.length; j += 5) {
      const q = new UapiParser();
      const got: UapiRequest[] = [];
      for (const part of [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]) {
        q.feed(part);
        for (let r = q.next(); r !== null; r = q.next()) got.push(r);
      }
      if (JSON.stringify(got) !== JSON.stringify(whole)) return t.fail(`split at ${i}, ${j}`);
    }
  }
  t.pass();
});

test('the parsed sample', (t) => {
  const set = (parseAll(SAMPLE)[1] as { set: UapiSet }).set;
  t.deepEqual(set, {
    privateKey: key(K2),
    listenPort: 51820,
    fwmark: 7,
    replacePeers: true,
    peers: [
      {
        publicKey: key(K1),
        remove: false,
        updateOnly: false,
        presharedKey: key(K2),
        endpoint: { family: 6, addr: new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), port: 51820 },
        persistentKeepaliveS: 25,
        replaceAllowedIps: true,
        allowedIpsAdd: [v4(10, 0, 0, 0, 8), { family: 6, addr: new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), prefixLen: 8 }],
        allowedIpsRemove: [v4(11, 0, 0, 0, 8)],
      },
      {
        publicKey: key(K2),
        remove: false,
        updateOnly: true,
        endpoint: { family: 4, addr: new Uint8Array([192, 0, 2, 1]), port: 1 },
        replaceAllowedIps: false,
        allowedIpsAdd: [],
        allowedIpsRemove: [],
      },
    ],
  });
});

// ---- formatters ----

function randomCidr(): Cidr {
  const six = Math.random() < 0.5;
  const addr = new Uint8Array(randomBytes(six ? 16 : 4));
  const prefixLen = Math.floor(Math.random() * (addr.length * 8 + 1));
  return parseCidr(`${formatCidr({ family: six ? 6 : 4, addr, prefixLen })}`, 0)!; // masked
}

function randomSet(): UapiSet {
  const r = Math.random;
  const set: UapiSet = { replacePeers: r() < 0.3, peers: [] };
  if (r() < 0.5) set.privateKey = r() < 0.2 ? null : new Uint8Array(randomBytes(32));
  if (r() < 0.5) set.listenPort = Math.floor(r() * 65536);
  if (r() < 0.3) set.fwmark = Math.floor(r() * 2 ** 32);
  const n = Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const p: UapiPeerChange = { publicKey: new Uint8Array(randomBytes(32)), remove: r() < 0.2, updateOnly: false, replaceAllowedIps: false, allowedIpsAdd: [], allowedIpsRemove: [] };
    if (!p.remove) {
      p.updateOnly = r() < 0.3;
      if (r() < 0.5) p.presharedKey = r() < 0.3 ? null : new Uint8Array(randomBytes(32));
      if (r() < 0.5) p.endpoint = r() < 0.5 ? { family: 4, addr: new Uint8Array(randomBytes(4)), port: Math.floor(r() * 65536) } : { family: 6, addr: new Uint8Array(randomBytes(16)), port: Math.floor(r() * 65536) };
      if (r() < 0.5) p.persistentKeepaliveS = Math.floor(r() * 65536);
      p.replaceAllowedIps = r() < 0.5;
      const adds = Math.floor(r() * 6);
      for (let j = 0; j < adds; j++) p.allowedIpsAdd.push(randomCidr());
      // Removals of prefixes not added here (a removal of an added one withdraws it).
      const removes = Math.floor(r() * 3);
      for (let j = 0; j < removes; j++) {
        const c = randomCidr();
        if (!p.allowedIpsAdd.some((a) => formatCidr(a) === formatCidr(c))) p.allowedIpsRemove.push(c);
      }
    }
    set.peers.push(p);
  }
  return set;
}

test('model: formatSet then the parser gives the same UapiSet (500 random sets)', (t) => {
  for (let i = 0; i < 500; i++) {
    const set = randomSet();
    const r = parseAll(formatSet(set).join(''));
    if (r.length !== 1 || r[0].kind !== 'set') return t.fail(`case ${i}: ${JSON.stringify(r)}`);
    t.deepEqual(r[0].set, set, `case ${i}`);
  }
});

const STATE: UapiDeviceState = {
  privateKey: key(K2),
  listenPort: 51820,
  fwmark: 0,
  peers: [
    {
      publicKey: key(K1),
      presharedKey: null,
      endpoint: '[fd00::1]:51820',
      lastHandshakeUnixMs: 1_700_000_000_123.5,
      txBytes: 1234,
      rxBytes: 5678,
      persistentKeepaliveS: 25,
      allowedIps: [v4(10, 0, 0, 0, 8), { family: 6, addr: new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), prefixLen: 8 }],
    },
    { publicKey: key(K2), presharedKey: key(K1), endpoint: null, lastHandshakeUnixMs: 0, txBytes: 0, rxBytes: 0, persistentKeepaliveS: 0, allowedIps: [] },
  ],
};

test('formatGet: wireguard-go order and conventions', (t) => {
  t.is(
    formatGet(STATE).join(''),
    `private_key=${K2}\nlisten_port=51820\n` +
      `public_key=${K1}\npreshared_key=${Z}\nprotocol_version=1\nendpoint=[fd00::1]:51820\n` +
      'last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=123500000\ntx_bytes=1234\nrx_bytes=5678\npersistent_keepalive_interval=25\n' +
      'allowed_ip=10.0.0.0/8\nallowed_ip=fd00::/8\n' +
      `public_key=${K2}\npreshared_key=${K1}\nprotocol_version=1\n` +
      'last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n' +
      'errno=0\n\n',
  );
  t.is(formatGet({ privateKey: null, listenPort: 0, fwmark: 0, peers: [] }).join(''), 'errno=0\n\n', 'no key, no port, no fwmark: only errno');
  t.is(formatGet({ privateKey: new Uint8Array(32), listenPort: 0, fwmark: 9, peers: [] }).join(''), 'fwmark=9\nerrno=0\n\n', 'an all-zero private key is not shown');
  t.is(formatErrno(-22), 'errno=-22\n\n');
});

function bigPeerAllowedIps(): Cidr[] {
  const ips: Cidr[] = [];
  for (let a = 1; a <= 255; a++) {
    for (let b = 0; b < 256; b++) {
      ips.push(v4(a, b, 0, 0, 16));
      const addr = new Uint8Array(16);
      addr[1] = a;
      addr[15] = b;
      ips.push({ family: 6, addr, prefixLen: 128 });
    }
  }
  return ips;
}

test('130,560 prefixes: formatGet in bounded chunks, and the parser, both fast', (t) => {
  const allowedIps = bigPeerAllowedIps();
  t.is(allowedIps.length, 130_560);
  const state: UapiDeviceState = { privateKey: null, listenPort: 1, fwmark: 0, peers: [{ ...STATE.peers[0], allowedIps }] };
  let t0 = performance.now();
  const chunks = formatGet(state);
  const getMs = performance.now() - t0;
  const text = chunks.join('');
  t.is(text.split('\n').filter((l) => l.startsWith('allowed_ip=')).length, 130_560);
  t.true(text.includes('\nallowed_ip=255.255.0.0/16\nallowed_ip=ff::ff/128\nerrno=0\n\n'));
  for (const c of chunks) t.true(c.length < (1 << 16) + 200, 'chunks stay near 64 KB');

  const set = formatSet({ replacePeers: true, peers: [{ publicKey: key(K1), remove: false, updateOnly: false, replaceAllowedIps: true, allowedIpsAdd: allowedIps, allowedIpsRemove: [] }] });
  const bytes = Buffer.from(set.join(''));
  t0 = performance.now();
  const p = new UapiParser();
  for (let i = 0; i < bytes.length; i += 65536) p.feed(bytes.subarray(i, i + 65536));
  const r = p.next();
  const parseMs = performance.now() - t0;
  t.is(r?.kind, 'set');
  const got = (r as { set: UapiSet }).set.peers[0].allowedIpsAdd;
  t.is(got.length, allowedIps.length);
  const differ = got.findIndex((c, i) => c.family !== allowedIps[i].family || c.prefixLen !== allowedIps[i].prefixLen || Buffer.compare(c.addr, allowedIps[i].addr) !== 0);
  t.is(differ, -1, 'every prefix read back'); // (ava's deepEqual takes seconds on 130,560 objects)
  t.log(`formatGet 130,560 prefixes: ${getMs.toFixed(1)} ms (${(text.length / 1e6).toFixed(1)} MB); parse set of ${(bytes.length / 1e6).toFixed(1)} MB: ${parseMs.toFixed(1)} ms`);
  t.true(getMs < 2000 && parseMs < 3000);
});
