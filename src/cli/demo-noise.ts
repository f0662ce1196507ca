// The interim `sixpn demo`: two WireGuard protocol endpoints (src/noise) talking over real UDP
// sockets on loopback — the cookie path under load, the handshake, transport both ways, and the
// rejections a demanding user expects — printed as a table of checks.
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import {
  CookieChecker,
  Handshake,
  StaticIdentity,
  VERDICT_ACCEPT_RATE_LIMITED,
  VERDICT_SEND_COOKIE,
  chosenBackend,
  consumeInitiation,
  generatePrivateKeyBytes,
  keyToBase64,
  type Keypair,
} from '../noise/index.ts';

interface Endpoint {
  name: string;
  identity: StaticIdentity;
  checker: CookieChecker;
  peer: Handshake;
  socket: Socket;
  port: number;
  keypair: Keypair | null;
}

async function endpoint(name: string, identity: StaticIdentity, peerPublic: Uint8Array, psk: Uint8Array): Promise<Endpoint> {
  const socket = createSocket({ type: 'udp6' });
  socket.bind(0, '::1');
  await once(socket, 'listening');
  return { name, identity, checker: new CookieChecker(identity), peer: new Handshake(identity, peerPublic, psk), socket, port: socket.address().port, keypair: null };
}

function send(from: Endpoint, to: Endpoint, msg: Uint8Array, len: number): Promise<Buffer> {
  const got = once(to.socket, 'message') as Promise<[Buffer]>;
  from.socket.send(msg.subarray(0, len), to.port, '::1');
  return got.then(([m]) => m);
}

function sourceBytes(port: number): Uint8Array {
  const b = new Uint8Array(18);
  b[15] = 1; // ::1
  b[16] = port >> 8;
  b[17] = port & 0xff;
  return b;
}

export async function runNoiseDemo(): Promise<number> {
  const checks: Array<[string, boolean, string]> = [];
  const check = (what: string, ok: boolean, detail = '') => checks.push([what, ok, detail]);
  const idA = new StaticIdentity(chosenBackend, generatePrivateKeyBytes());
  const idB = new StaticIdentity(chosenBackend, generatePrivateKeyBytes());
  const psk = generatePrivateKeyBytes();
  const a = await endpoint('alice', idA, idB.publicKey, psk);
  const b = await endpoint('bob', idB, idA.publicKey, psk);
  console.log(`alice  ${keyToBase64(idA.publicKey)}  [::1]:${a.port}`);
  console.log(`bob    ${keyToBase64(idB.publicKey)}  [::1]:${b.port}   (preshared key set on both)\n`);
  try {
    const t0 = performance.now();
    // 1. alice initiates; bob is "under load" and answers with a cookie reply
    const init = new Uint8Array(148);
    a.peer.createInitiation(1001, Date.now(), init);
    a.peer.cookies.addMacs(init, 148, performance.now());
    let m = await send(a, b, init, 148);
    const verdict = b.checker.validate(m, m.length, sourceBytes(a.port), true, performance.now());
    check('initiation without mac2 under load gets a cookie reply', verdict === VERDICT_SEND_COOKIE);
    const reply = new Uint8Array(64);
    b.checker.createReply(m, m.length, sourceBytes(a.port), performance.now(), reply);
    m = await send(b, a, reply, 64);
    check('alice decrypts the cookie reply', a.peer.cookies.consumeReply(m, m.length, performance.now()));

    // 2. alice retries with mac2; bob accepts, consumes, responds
    a.peer.createInitiation(1002, Date.now() + 1, init);
    a.peer.cookies.addMacs(init, 148, performance.now());
    m = await send(a, b, init, 148);
    check('retry carries a valid mac2', b.checker.validate(m, m.length, sourceBytes(a.port), true, performance.now()) === VERDICT_ACCEPT_RATE_LIMITED);
    const consumed = consumeInitiation(b.identity, m, m.length, (pk) => (Buffer.compare(pk, a.identity.publicKey) === 0 ? b.peer : undefined), performance.now());
    check('bob consumes the initiation (static key and timestamp decrypt)', consumed.ok, consumed.ok ? '' : consumed.error);
    const resp = new Uint8Array(92);
    b.peer.createResponse(2002, resp);
    b.peer.cookies.addMacs(resp, 92, performance.now());
    m = await send(b, a, resp, 92);
    check('response mac1 verifies at alice', a.checker.checkMac1(m, m.length));
    check('alice consumes the response (PSK mixed in)', a.peer.consumeResponse(m, m.length).ok);
    a.keypair = a.peer.deriveKeypair(performance.now());
    b.keypair = b.peer.deriveKeypair(performance.now());
    check('both sides derive the transport keypair', a.keypair !== null && b.keypair !== null, `handshake ${(performance.now() - t0).toFixed(1)} ms over UDP`);

    // 3. transport: 1000 echo round trips, plus a keepalive
    const buf = new Uint8Array(2048);
    const text = new TextEncoder().encode('hello from alice through Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s');
    let echoed = 0;
    let captured: Uint8Array | null = null;
    const t1 = performance.now();
    for (let i = 0; i < 1000; i++) {
      buf.set(text, 16);
      let n = a.keypair!.seal(buf, 0, text.length, 1420);
      if (i === 0) captured = Uint8Array.from(buf.subarray(0, n));
      m = await send(a, b, buf, n);
      const p = b.keypair!.open(m, 0, m.length);
      if (p < text.length) continue;
      buf.set(m.subarray(16, 16 + text.length), 16);
      n = b.keypair!.seal(buf, 0, text.length, 1420);
      m = await send(b, a, buf, n);
      if (a.keypair!.open(m, 0, m.length) >= text.length && Buffer.compare(m.subarray(16, 16 + text.length), text) === 0) echoed++;
    }
    const rtt = (performance.now() - t1) / 1000;
    check('1000 encrypted echo round trips', echoed === 1000, `${echoed}/1000, mean RTT ${(rtt * 1000).toFixed(0)} µs`);
    const ka = a.keypair!.seal(buf, 0, 0, 1420);
    m = await send(a, b, buf, ka);
    check('keepalive (32-byte message) opens empty', ka === 32 && b.keypair!.open(m, 0, m.length) === 0);

    // 4. what must be rejected
    m = await send(a, b, captured!, captured!.length);
    check('a replayed transport message is rejected', b.keypair!.open(m, 0, m.length) < 0);
    buf.set(text, 16);
    const n = a.keypair!.seal(buf, 0, text.length, 1420);
    buf[20] ^= 1;
    m = await send(a, b, buf, n);
    check('a tampered transport message is rejected', b.keypair!.open(m, 0, m.length) < 0);
    m = await send(a, b, init, 148);
    const again = consumeInitiation(b.identity, m, m.length, () => b.peer, performance.now() + 1000);
    check('a replayed initiation is rejected', !again.ok, again.ok ? '' : again.error);
  } finally {
    a.socket.close();
    b.socket.close();
  }

  const width = Math.max(...checks.map((c) => c[0].length));
  for (const [what, ok, detail] of checks) console.log(`${ok ? ' ok ' : 'FAIL'}  ${what.padEnd(width)}  ${detail}`);
  const failed = checks.filter((c) => !c[1]).length;
  console.log(`\n${checks.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
