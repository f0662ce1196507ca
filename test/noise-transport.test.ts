// Transport data messages: padding, keepalives, tampering, replay and the message limits.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import {
  Keypair,
  OPEN_ERR_AUTH,
  OPEN_ERR_INDEX,
  OPEN_ERR_REPLAY,
  OPEN_ERR_SIZE,
  OPEN_ERR_TYPE,
  REJECT_AFTER_MESSAGES_HI,
  REJECT_AFTER_MESSAGES_LO,
  SEAL_ERR_EXHAUSTED,
  SEAL_ERR_SPACE,
  chosenBackend,
  handshake,
  jsBackend,
  makePair,
  nodeBackend,
  paddedLength,
  readU32LE,
  wasmBackend,
  writeU32LE,
} from './helpers/noise.ts';

test('padding: a multiple of 16, never past the MTU', (t) => {
  const cases: Array<[number, number, number]> = [
    [0, 1420, 0], [1, 1420, 16], [16, 1420, 16], [17, 1420, 32], [1400, 1420, 1408],
    [1410, 1420, 1420], [1419, 1420, 1420], [1420, 1420, 1420], [1421, 1420, 1421], [17, 0, 32],
  ];
  for (const [len, mtu, expected] of cases) t.is(paddedLength(len, mtu), expected, `${len}/${mtu}`);
});

for (const backend of [nodeBackend, jsBackend, wasmBackend]) {
  test(`${backend.name}: keepalive, padding and in-order delivery`, (t) => {
    const { a, b } = makePair(backend);
    const { ki, kr } = handshake(a, b);
    const buf = new Uint8Array(2048);
    t.is(ki.seal(buf, 0, 0, 1420), 32, 'keepalive is 32 bytes');
    t.is(buf[0], 4);
    t.is(readU32LE(buf, 4), kr.localIndex);
    t.is(readU32LE(buf, 8), 0);
    t.is(kr.open(buf, 0, 32), 0);
    buf.set(randomBytes(17), 100 + 16);
    const n = ki.seal(buf, 100, 17, 1420);
    t.is(n, 16 + 32 + 16);
    t.is(readU32LE(buf, 108), 1, 'second message, counter 1');
    t.is(kr.open(buf, 100, n), 32);
    t.deepEqual(buf.subarray(116 + 17, 116 + 32), new Uint8Array(15), 'padding is zeros');
    t.is(ki.seal(new Uint8Array(60), 0, 20, 1420), SEAL_ERR_SPACE, 'no room for padding and tag');
    t.is(ki.sendCounter, 2, 'a failed seal uses no counter');
  });
}

test('every byte of a transport message flipped in turn is rejected; the original still opens', (t) => {
  const { a, b } = makePair(chosenBackend);
  const { ki, kr } = handshake(a, b);
  const msg = new Uint8Array(16 + 64 + 16);
  msg.set(randomBytes(64), 16);
  const n = ki.seal(msg, 0, 64, 1420);
  const work = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    work.set(msg);
    work[i] ^= 0x20;
    const r = kr.open(work, 0, n);
    t.true(r < 0, `byte ${i}`);
    if (i < 4) t.is(r, OPEN_ERR_TYPE);
    else if (i < 8) t.is(r, OPEN_ERR_INDEX);
    else t.is(r, OPEN_ERR_AUTH);
  }
  for (let len = 0; len < 32; len++) t.is(kr.open(msg, 0, len), OPEN_ERR_SIZE);
  work.set(msg);
  t.is(kr.open(work, 0, n - 1), OPEN_ERR_AUTH, 'truncated by one byte');
  const big = new Uint8Array(n + 16);
  big.set(msg);
  t.is(kr.open(big, 0, n + 16), OPEN_ERR_AUTH, 'oversized');
  work.set(msg);
  t.is(kr.open(work, 0, n), 64);
  work.set(msg);
  t.is(kr.open(work, 0, n), OPEN_ERR_REPLAY, 'the same message twice');
});

test('reordered messages within the window are accepted once each', (t) => {
  const { a, b } = makePair(chosenBackend);
  const { ki, kr } = handshake(a, b);
  const sealed: Uint8Array[] = [];
  for (let i = 0; i < 100; i++) {
    const m = new Uint8Array(64);
    sealed.push(m.subarray(0, ki.seal(m, 0, 10, 1420)));
  }
  const order = [...sealed.keys()].reverse();
  for (const i of order) t.is(kr.open(Uint8Array.from(sealed[i]), 0, sealed[i].length), 16, `message ${i}`);
  for (const i of order) t.is(kr.open(Uint8Array.from(sealed[i]), 0, sealed[i].length), OPEN_ERR_REPLAY, `replay ${i}`);
});

test('REJECT_AFTER_MESSAGES: no sending at the limit, nothing accepted at or past it', (t) => {
  const aead = nodeBackend.aead;
  const raw = randomBytes(32);
  const sender = new Keypair(aead, aead.importKey(raw), aead.importKey(randomBytes(32)), 1, 2, 0, true);
  const receiver = new Keypair(aead, aead.importKey(randomBytes(32)), aead.importKey(raw), 2, 1, 0, false);
  sender.sendCounter = 2 ** 64 - 2 ** 13; // the double nearest REJECT_AFTER_MESSAGES
  t.is(sender.seal(new Uint8Array(64), 0, 0, 1420), SEAL_ERR_EXHAUSTED);

  // hand-built messages that authenticate, with counters at the limit's edge
  const build = (hi: number, lo: number): Uint8Array => {
    const m = new Uint8Array(32);
    m[0] = 4;
    writeU32LE(m, 4, 2);
    writeU32LE(m, 8, lo);
    writeU32LE(m, 12, hi);
    aead.seal(aead.importKey(raw), lo, hi, new Uint8Array(0), null, m, 16);
    return m;
  };
  t.is(receiver.open(build(REJECT_AFTER_MESSAGES_HI, REJECT_AFTER_MESSAGES_LO - 1), 0, 32), 0, 'the last usable counter');
  t.is(receiver.open(build(REJECT_AFTER_MESSAGES_HI, REJECT_AFTER_MESSAGES_LO), 0, 32), OPEN_ERR_REPLAY);
  t.is(receiver.open(build(REJECT_AFTER_MESSAGES_HI, 0xffffffff), 0, 32), OPEN_ERR_REPLAY);
});

test('a zeroed keypair refuses to work', (t) => {
  const { a, b } = makePair(chosenBackend);
  const { ki } = handshake(a, b);
  ki.zero();
  t.throws(() => ki.seal(new Uint8Array(64), 0, 0, 1420), { message: /zeroed/ });
});
