// Full handshakes between two in-memory sides, and every way a handshake message can be wrong.
import test from 'ava';
import { inspect } from 'node:util';
import { randomBytes } from 'node:crypto';
import {
  CookieChecker,
  HANDSHAKE_INITIATION_CREATED,
  HANDSHAKE_ZEROED,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE_SIZE,
  StaticIdentity,
  Handshake,
  VERDICT_ACCEPT,
  VERDICT_ACCEPT_RATE_LIMITED,
  VERDICT_SEND_COOKIE,
  chosenBackend,
  consumeInitiation,
  generatePrivateKeyBytes,
  handshake,
  isZero,
  jsBackend,
  keyToBase64,
  keyToHex,
  lookupFor,
  makePair,
  nodeBackend,
  type Keypair,
} from './helpers/noise.ts';

function transportBothWays(t: import('ava').ExecutionContext, ki: Keypair, kr: Keypair): void {
  const buf = new Uint8Array(2048);
  for (const [from, to, label] of [[ki, kr, 'i->r'], [kr, ki, 'r->i']] as const) {
    for (const size of [0, 1, 100, 1420]) {
      const payload = randomBytes(size);
      buf.set(payload, 16);
      const n = from.seal(buf, 0, size, 1420);
      t.true(n >= 32, label);
      const m = to.open(buf, 0, n);
      t.true(m >= size, `${label} ${size}: ${m}`);
      t.deepEqual(Buffer.from(buf.subarray(16, 16 + size)), payload);
    }
  }
}

const combos = [
  [nodeBackend, nodeBackend],
  [jsBackend, jsBackend],
  [nodeBackend, jsBackend],
  [jsBackend, nodeBackend],
  [chosenBackend, chosenBackend],
] as const;

for (const [ba, bb] of combos) {
  for (const withPsk of [false, true]) {
    test(`round trip ${ba.name} -> ${bb.name}${withPsk ? ' with PSK' : ''}, transport both ways`, (t) => {
      const psk = withPsk ? randomBytes(32) : null;
      const { a, b } = makePair(ba, bb, psk);
      const { ki, kr } = handshake(a, b);
      t.true(ki.isInitiator);
      t.false(kr.isInitiator);
      t.is(ki.localIndex, 0x11111111);
      t.is(ki.remoteIndex, 0x22222222);
      t.is(kr.localIndex, 0x22222222);
      t.is(kr.remoteIndex, 0x11111111);
      t.is(a.peer.state, HANDSHAKE_ZEROED);
      t.is(b.peer.state, HANDSHAKE_ZEROED);
      t.true(isZero(a.peer.chainingKey, 0, 32) && isZero(a.peer.hash, 0, 32), 'handshake secrets wiped after deriving keys');
      transportBothWays(t, ki, kr);
      // and the other direction of handshake works on the same pair
      const again = handshake(b, a, 5000, Date.now() + 1000);
      transportBothWays(t, again.ki, again.kr);
    });
  }
}

test('a preshared key on one side only: the initiator rejects the response', (t) => {
  const { a, b } = makePair(chosenBackend, chosenBackend, null);
  b.peer.setPresharedKey(randomBytes(32));
  t.throws(() => handshake(a, b), { message: /consumeResponse: decrypt/ });
  t.is(a.peer.state, HANDSHAKE_INITIATION_CREATED, 'state unchanged by the rejected response');
});

test('every byte of the initiation flipped in turn is rejected without throwing', (t) => {
  const { a, b } = makePair(chosenBackend);
  const source = new Uint8Array([0xfd, 0, 0xb1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xca, 0x6c]);
  let now = 1000;
  // Get a cookie first, so that under load mac2 is checked too and every byte is covered.
  const first = new Uint8Array(MESSAGE_INITIATION_SIZE);
  a.peer.createInitiation(7, Date.now(), first);
  a.peer.cookies.addMacs(first, first.length, now);
  t.is(b.checker.validate(first, first.length, source, true, now), VERDICT_SEND_COOKIE);
  const reply = new Uint8Array(64);
  t.is(b.checker.createReply(first, first.length, source, now, reply), 64);
  t.true(a.peer.cookies.consumeReply(reply, 64, now));
  const init = new Uint8Array(MESSAGE_INITIATION_SIZE);
  a.peer.createInitiation(7, Date.now() + 1000, init);
  a.peer.cookies.addMacs(init, init.length, now);

  // The receive path: the load gate (mac1, and mac2 under load), then Noise.
  const receive = (m: Uint8Array, underLoad: boolean): boolean => {
    const v = b.checker.validate(m, m.length, source, underLoad, now);
    if (v !== VERDICT_ACCEPT && v !== VERDICT_ACCEPT_RATE_LIMITED) return false;
    return consumeInitiation(b.identity, m, m.length, lookupFor(b), now).ok;
  };
  for (let i = 0; i < init.length; i++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const m = Uint8Array.from(init);
      m[i] ^= mask;
      now += 100;
      t.false(receive(m, true), `under load, byte ${i} mask ${mask}`);
      // not under load mac2 is not checked (whitepaper §5.3): bytes before it are still covered
      if (i < 132) t.false(receive(m, false), `byte ${i} mask ${mask}`);
      // Noise on its own authenticates the type, ephemeral, static and timestamp
      if (i < 4 || (i >= 8 && i < 116)) t.false(consumeInitiation(b.identity, m, m.length, lookupFor(b), now).ok, `noise, byte ${i}`);
    }
  }
  // the untouched message is still accepted: no rejected message changed any state
  now += 100;
  t.true(receive(init, true));
});

test('every byte of the response flipped in turn is rejected without throwing', (t) => {
  const { a, b } = makePair(chosenBackend);
  const source = new Uint8Array([192, 0, 2, 1, 0xca, 0x6c]);
  const init = new Uint8Array(MESSAGE_INITIATION_SIZE);
  a.peer.createInitiation(7, Date.now(), init);
  a.peer.cookies.addMacs(init, init.length, 0);
  t.true(consumeInitiation(b.identity, init, init.length, lookupFor(b), 1000).ok);
  const resp = new Uint8Array(MESSAGE_RESPONSE_SIZE);
  b.peer.createResponse(9, resp);
  b.peer.cookies.addMacs(resp, resp.length, 0);
  // the initiator is under load: the responder gets a cookie and re-macs its response
  t.is(a.checker.validate(resp, resp.length, source, true, 0), VERDICT_SEND_COOKIE);
  const reply = new Uint8Array(64);
  a.checker.createReply(resp, resp.length, source, 0, reply);
  t.true(b.peer.cookies.consumeReply(reply, 64, 0));
  b.peer.cookies.addMacs(resp, resp.length, 0);

  const receive = (m: Uint8Array, underLoad: boolean): boolean => {
    const v = a.checker.validate(m, m.length, source, underLoad, 0);
    if (v !== VERDICT_ACCEPT && v !== VERDICT_ACCEPT_RATE_LIMITED) return false;
    return a.peer.consumeResponse(m, m.length).ok;
  };
  for (let i = 0; i < resp.length; i++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const m = Uint8Array.from(resp);
      m[i] ^= mask;
      t.false(receive(m, true), `under load, byte ${i} mask ${mask}`);
      if (i < 76) t.false(receive(m, false), `byte ${i} mask ${mask}`);
      // Noise on its own covers the type, receiver index, ephemeral and encrypted nothing
      if (i < 4 || (i >= 8 && i < 60)) t.false(a.peer.consumeResponse(m, m.length).ok, `noise, byte ${i}`);
      t.is(a.peer.state, HANDSHAKE_INITIATION_CREATED, `byte ${i}: state kept`);
    }
  }
  t.true(receive(resp, true));
});

test('truncated and oversized handshake messages are rejected', (t) => {
  const { a, b } = makePair(chosenBackend);
  const init = new Uint8Array(MESSAGE_INITIATION_SIZE + 32);
  a.peer.createInitiation(7, Date.now(), init);
  a.peer.cookies.addMacs(init.subarray(0, 148), 148, 0);
  for (let len = 0; len <= init.length; len++) {
    if (len === MESSAGE_INITIATION_SIZE) continue;
    t.false(b.checker.checkMac1(init, len), `mac1 len ${len}`);
    const r = consumeInitiation(b.identity, init, len, lookupFor(b), 1000);
    t.false(r.ok, `len ${len}`);
    t.false(a.peer.consumeResponse(init, len).ok);
  }
  t.true(consumeInitiation(b.identity, init, 148, lookupFor(b), 1000).ok);
});

test('an initiation not newer than the last accepted one is rejected (replay), and so is a flood', (t) => {
  const { a, b } = makePair(chosenBackend);
  const t0 = Date.UTC(2026, 0, 1);
  const make = (unixMs: number) => {
    const m = new Uint8Array(148);
    a.peer.createInitiation(1, unixMs, m);
    return m;
  };
  const newer = make(t0 + 60_000);
  const older = make(t0);
  const newest = make(t0 + 120_000);
  t.true(consumeInitiation(b.identity, newer, 148, lookupFor(b), 10_000).ok);
  t.deepEqual(consumeInitiation(b.identity, older, 148, lookupFor(b), 20_000), { ok: false, error: 'replayed-timestamp' });
  t.deepEqual(consumeInitiation(b.identity, newer, 148, lookupFor(b), 30_000), { ok: false, error: 'replayed-timestamp' });
  // a newer timestamp within 20 ms of the last accepted initiation (at 10 000): flood
  t.deepEqual(consumeInitiation(b.identity, newest, 148, lookupFor(b), 10_015), { ok: false, error: 'flood' });
  t.true(consumeInitiation(b.identity, newest, 148, lookupFor(b), 10_021).ok);
});

test('unknown peers, wrong states and wrong indices are rejected', (t) => {
  const { a, b } = makePair(chosenBackend);
  const init = new Uint8Array(148);
  a.peer.createInitiation(1, Date.now(), init);
  t.deepEqual(consumeInitiation(b.identity, init, 148, () => undefined, 1000), { ok: false, error: 'unknown-peer' });
  const resp = new Uint8Array(92);
  t.is(b.peer.createResponse(2, resp), 0, 'no response without a consumed initiation');
  t.is(b.peer.deriveKeypair(0), null);
  t.true(consumeInitiation(b.identity, init, 148, lookupFor(b), 1000).ok);
  t.is(b.peer.createResponse(2, resp), 92);
  const wrongIndex = Uint8Array.from(resp);
  wrongIndex[8] ^= 1;
  t.deepEqual(a.peer.consumeResponse(wrongIndex, 92), { ok: false, error: 'wrong-index' });
  t.true(a.peer.consumeResponse(resp, 92).ok);
  t.deepEqual(a.peer.consumeResponse(resp, 92), { ok: false, error: 'wrong-state' }, 'a response is consumed once');
  // a response to an initiation the initiator has since replaced does not decrypt
  const { a: a2, b: b2 } = makePair(chosenBackend);
  const i1 = new Uint8Array(148);
  a2.peer.createInitiation(5, Date.now(), i1);
  t.true(consumeInitiation(b2.identity, i1, 148, lookupFor(b2), 1000).ok);
  const r1 = new Uint8Array(92);
  b2.peer.createResponse(6, r1);
  a2.peer.createInitiation(5, Date.now() + 1000, new Uint8Array(148)); // new ephemeral, same index
  t.deepEqual(a2.peer.consumeResponse(r1, 92), { ok: false, error: 'decrypt' });
});

test('a peer whose public key is a low-order point cannot handshake', (t) => {
  const me = new StaticIdentity(chosenBackend, generatePrivateKeyBytes());
  const bad = new Handshake(me, new Uint8Array(32));
  t.false(bad.usable());
  t.is(bad.createInitiation(1, Date.now(), new Uint8Array(148)), 0);
});

test('keys never appear in inspect or JSON output', (t) => {
  const priv = generatePrivateKeyBytes();
  const psk = randomBytes(32);
  const id = new StaticIdentity(chosenBackend, priv);
  const other = new StaticIdentity(chosenBackend, generatePrivateKeyBytes());
  const peerOfId = new Handshake(id, other.publicKey, psk);
  const peerOfOther = new Handshake(other, id.publicKey, psk);
  const { ki } = handshake(
    { identity: id, checker: new CookieChecker(id), peer: peerOfId },
    { identity: other, checker: new CookieChecker(other), peer: peerOfOther },
  );
  const secrets = [keyToBase64(priv), keyToHex(priv), keyToBase64(psk), keyToHex(psk)];
  for (const obj of [id, peerOfId, ki, id.privateKey, new CookieChecker(id), peerOfId.cookies]) {
    const text = inspect(obj, { depth: 10, showHidden: true }) + JSON.stringify(obj) ;
    for (const s of secrets) t.false(text.includes(s), `${text.slice(0, 40)} leaks a key`);
    t.regex(inspect(obj), /redacted/);
  }
});
