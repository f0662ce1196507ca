// Each primitive of the node:crypto backend against the pure-JS one (and an independent third
// implementation from @noble where one exists), plus published vectors.
import test from 'ava';
import { createHmac, randomBytes } from 'node:crypto';
import { blake2s as nobleBlake2s } from '@noble/hashes/blake2.js';
import { xchacha20poly1305 as nobleXChaCha } from '@noble/ciphers/chacha.js';
import { Symmetric, chosenBackend, hchacha20, initialChainingKeyAndHash, jsBackend, nodeBackend, toHexForTest } from './helpers/noise.ts';
import type { CryptoBackend } from '../src/noise/index.ts';

const backends: CryptoBackend[] = [nodeBackend, jsBackend, chosenBackend];
const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s/g, ''), 'hex'));

test('C0 and H0 match the whitepaper construction', (t) => {
  for (const b of backends) {
    const { chainingKey, hash } = initialChainingKeyAndHash(new Symmetric(b));
    t.is(toHexForTest(chainingKey), '60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36', b.name);
    t.is(toHexForTest(hash), '2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3', b.name);
  }
});

test('X25519: RFC 7748 §6.1 vector on both backends', (t) => {
  const alicePriv = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const alicePub = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
  const bobPriv = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  const bobPub = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
  const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
  for (const b of backends) {
    const a = b.x25519.importPrivate(alicePriv);
    const bo = b.x25519.importPrivate(bobPriv);
    t.is(toHexForTest(a.publicKey), alicePub);
    t.is(toHexForTest(bo.publicKey), bobPub);
    const out = new Uint8Array(32);
    t.true(b.x25519.dh(a, b.x25519.importPublic(bo.publicKey), out));
    t.is(toHexForTest(out), shared);
  }
});

test('X25519: backends agree on random keys, and both refuse low-order points', (t) => {
  for (let i = 0; i < 20; i++) {
    const p1 = randomBytes(32);
    const p2 = randomBytes(32);
    const n1 = nodeBackend.x25519.importPrivate(p1);
    const j1 = jsBackend.x25519.importPrivate(p1);
    t.deepEqual(n1.publicKey, j1.publicKey);
    const pub2 = nodeBackend.x25519.importPrivate(p2).publicKey;
    const a = new Uint8Array(32);
    const b = new Uint8Array(32);
    t.true(nodeBackend.x25519.dh(n1, nodeBackend.x25519.importPublic(pub2), a));
    t.true(jsBackend.x25519.dh(j1, jsBackend.x25519.importPublic(pub2), b));
    t.deepEqual(a, b);
  }
  // u = 0 and u = 1 are of small order: the shared secret is all zero
  for (const lowOrder of [new Uint8Array(32), hex('0100000000000000000000000000000000000000000000000000000000000000')]) {
    for (const b of backends) {
      const out = new Uint8Array(32).fill(7);
      const priv = b.x25519.generate();
      t.false(b.x25519.dh(priv, b.x25519.importPublic(lowOrder), out), b.name);
      t.deepEqual(out, new Uint8Array(32));
    }
  }
});

test('BLAKE2s-256 and keyed BLAKE2s-128: backends and @noble/hashes agree', (t) => {
  const out1 = new Uint8Array(32);
  const out2 = new Uint8Array(32);
  // RFC 7693 Appendix B: BLAKE2s-256("abc")
  nodeBackend.blake2s.hash(new TextEncoder().encode('abc'), null, out1);
  t.is(toHexForTest(out1), '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982');
  for (let len = 0; len < 300; len += 7) {
    const a = randomBytes(len);
    const b = randomBytes(len % 50);
    nodeBackend.blake2s.hash(a, b, out1);
    jsBackend.blake2s.hash(a, b, out2);
    t.deepEqual(out1, out2);
    t.deepEqual(out1, nobleBlake2s(Buffer.concat([a, b])));
    const key = randomBytes(32);
    const m1 = new Uint8Array(16);
    const m2 = new Uint8Array(16);
    nodeBackend.blake2s.mac(key, a, m1);
    jsBackend.blake2s.mac(key, a, m2);
    t.deepEqual(m1, m2);
    t.deepEqual(m1, nobleBlake2s(a, { key, dkLen: 16 }));
  }
});

test('HMAC-BLAKE2s built from two hashes equals node:crypto createHmac', (t) => {
  for (const b of backends) {
    const sym = new Symmetric(b);
    for (const len of [0, 1, 32, 33, 64, 65, 200]) {
      const key = randomBytes(32);
      const data = randomBytes(len);
      const out = new Uint8Array(32);
      sym.hmac(key, data, out);
      t.deepEqual(Buffer.from(out), createHmac('blake2s256', key).update(data).digest());
    }
  }
});

test('KDF1..3 follow the whitepaper definition', (t) => {
  const key = randomBytes(32);
  const input = randomBytes(32);
  const hmac = (k: Uint8Array, d: Uint8Array) => createHmac('blake2s256', k).update(d).digest();
  const t0 = hmac(key, input);
  const t1 = hmac(t0, Buffer.from([1]));
  const t2 = hmac(t0, Buffer.concat([t1, Buffer.from([2])]));
  const t3 = hmac(t0, Buffer.concat([t2, Buffer.from([3])]));
  for (const b of backends) {
    const sym = new Symmetric(b);
    const o1 = new Uint8Array(32);
    const o2 = new Uint8Array(32);
    const o3 = new Uint8Array(32);
    sym.kdf(key, input, o1, o2, o3);
    t.deepEqual([Buffer.from(o1), Buffer.from(o2), Buffer.from(o3)], [t1, t2, t3]);
    // out1 may alias the key, as the chaining key does
    const ck = Uint8Array.from(key);
    sym.kdf(ck, input, ck, null, null);
    t.deepEqual(Buffer.from(ck), t1);
  }
});

test('ChaCha20-Poly1305: backends produce the same bytes and open each other\'s', (t) => {
  for (const len of [0, 1, 15, 16, 64, 1420, 8192]) {
    const raw = randomBytes(32);
    const pt = randomBytes(len);
    const aad = len % 2 ? randomBytes(32) : null;
    const lo = (Math.random() * 2 ** 32) >>> 0;
    const hi = len;
    const outN = new Uint8Array(len + 16);
    const outJ = new Uint8Array(len + 16);
    const kn = nodeBackend.aead.importKey(raw);
    const kj = jsBackend.aead.importKey(raw);
    t.is(nodeBackend.aead.seal(kn, lo, hi, pt, aad, outN, 0), len + 16);
    t.is(jsBackend.aead.seal(kj, lo, hi, pt, aad, outJ, 0), len + 16);
    t.deepEqual(outN, outJ);
    const back = new Uint8Array(len);
    t.is(nodeBackend.aead.open(kn, lo, hi, outJ, aad, back, 0), len);
    t.deepEqual(Buffer.from(back), pt);
    t.is(jsBackend.aead.open(kj, lo, hi, outN, aad, back, 0), len);
    // a wrong counter, a flipped bit or a different aad do not open, and leave `out` alone
    back.fill(9);
    t.is(nodeBackend.aead.open(kn, lo ^ 1, hi, outN, aad, back, 0), -1);
    t.is(jsBackend.aead.open(kj, lo ^ 1, hi, outN, aad, back, 0), -1);
    t.true(back.every((x) => x === 9));
    outN[outN.length - 1] ^= 1;
    t.is(nodeBackend.aead.open(kn, lo, hi, outN, aad, back, 0), -1);
    t.is(jsBackend.aead.open(kj, lo, hi, outN, aad, back, 0), -1);
  }
});

test('HChaCha20 matches the XChaCha draft vector; XChaCha20-Poly1305 backends and @noble agree', (t) => {
  // draft-irtf-cfrg-xchacha-03 §2.2.1
  const key = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
  const nonce = hex('000000090000004a0000000031415927');
  const out = new Uint8Array(32);
  hchacha20(key, nonce, out);
  t.is(toHexForTest(out), '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
  for (const len of [0, 16, 100]) {
    const k = randomBytes(32);
    const n = randomBytes(24);
    const pt = randomBytes(len);
    const aad = randomBytes(16);
    const a = new Uint8Array(len + 16);
    const b = new Uint8Array(len + 16);
    nodeBackend.xaead.seal(k, n, pt, aad, a);
    jsBackend.xaead.seal(k, n, pt, aad, b);
    t.deepEqual(a, b);
    t.deepEqual(a, nobleXChaCha(k, n, aad).encrypt(pt));
    const back = new Uint8Array(len);
    t.true(nodeBackend.xaead.open(k, n, b, aad, back));
    t.deepEqual(Buffer.from(back), pt);
    t.true(jsBackend.xaead.open(k, n, a, aad, back));
    aad[0] ^= 1;
    t.false(nodeBackend.xaead.open(k, n, a, aad, back));
    t.false(jsBackend.xaead.open(k, n, a, aad, back));
  }
});
