// The WebAssembly ChaCha20-Poly1305 (src/noise/aead-batch.ts, src/noise/wasm/): RFC 8439
// vectors, cross-checks against node:crypto and @stablelib (the node and js backends) and
// @noble/ciphers' Poly1305, tampering, batches, and the checked-in binary rebuilt from source.
import test from 'ava';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { poly1305 as noblePoly1305 } from '@noble/ciphers/_poly1305.js';
import { AeadBatch, MAX_PLAINTEXT, jsBackend, nodeBackend, wasmAead, wasmBackend, type AeadKey } from '../src/noise/index.ts';
import { buildWasm } from '../scripts/build-wasm.ts';
import { SCRATCH_SIZE } from '../src/noise/aead-batch.ts';
import { CHACHA20POLY1305_WASM_BASE64 } from '../src/noise/wasm/chacha20poly1305.wasm.ts';
import { handshake, makePair } from './helpers/noise.ts';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const batch = AeadBatch.default();

// ---- known answers ----

test('ChaCha20 block function: RFC 8439 §2.3.2 and A.1 #1, #2', (t) => {
  // §2.3.2: key 00..1f, nonce 000000090000004a00000000, block counter 1
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  const block = new Uint8Array(64);
  batch.chacha20(key, hex('000000090000004a00000000'), 1, block);
  t.is(toHex(block), '10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e'
    + 'd2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e');
  // A.1 #1: all-zero key and nonce, counter 0; #2: counter 1
  const zero = new Uint8Array(128);
  batch.chacha20(new Uint8Array(32), new Uint8Array(12), 0, zero);
  t.is(toHex(zero.subarray(0, 64)), '76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7'
    + 'da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586');
  t.is(toHex(zero.subarray(64)), '9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed'
    + '29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f');
});

test('ChaCha20 keystream equals OpenSSL\'s at every length and counter around block boundaries', (t) => {
  for (const len of [0, 1, 63, 64, 65, 127, 128, 191, 192, 193, 255, 256, 257, 511, 512, 513, 1000, 4096, 5000]) {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const counter = (Math.random() * 2 ** 31) >>> 0;
    const data = randomBytes(len);
    const iv = Buffer.alloc(16);
    iv.writeUInt32LE(counter, 0);
    nonce.copy(iv, 4);
    const expected = createCipheriv('chacha20', key, iv).update(data);
    const got = Uint8Array.from(data);
    batch.chacha20(key, nonce, counter, got);
    t.deepEqual(Buffer.from(got), expected, `len ${len}`);
  }
});

test('Poly1305: RFC 8439 §2.5.2 and the A.3 edge cases', (t) => {
  const R1 = '01000000000000000000000000000000';
  const R2 = '02000000000000000000000000000000';
  const R14 = '01000000000000000400000000000000';
  const S0 = '00000000000000000000000000000000';
  const FF = 'ffffffffffffffffffffffffffffffff';
  const cases: Array<[string, string, string, string]> = [
    ['§2.5.2', '85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b',
      Buffer.from('Cryptographic Forum Research Group').toString('hex'), 'a8061dc1305136c6c22b8baf0c0127a9'],
    ['A.3 #1', S0 + S0, '00'.repeat(64), S0],
    ['A.3 #5', R2 + S0, FF, '03000000000000000000000000000000'],
    ['A.3 #6', R2 + FF, '02000000000000000000000000000000', '03000000000000000000000000000000'],
    ['A.3 #7', R1 + S0, FF + 'f0ffffffffffffffffffffffffffffff' + '11000000000000000000000000000000', '05000000000000000000000000000000'],
    ['A.3 #8', R1 + S0, FF + 'fbfefefefefefefefefefefefefefefe' + '01010101010101010101010101010101', S0],
    ['A.3 #9', R2 + S0, 'fdffffffffffffffffffffffffffffff', 'faffffffffffffffffffffffffffffff'],
    ['A.3 #10', R14 + S0, 'e33594d7505e43b90000000000000000' + '3394d7505e4379cd0100000000000000' + S0 + '01000000000000000000000000000000',
      '14000000000000005500000000000000'],
    ['A.3 #11', R14 + S0, 'e33594d7505e43b90000000000000000' + '3394d7505e4379cd0100000000000000' + S0, '13000000000000000000000000000000'],
  ];
  for (const [name, key, msg, tag] of cases) {
    t.is(toHex(batch.poly1305(hex(key), hex(msg))), tag, name);
    t.is(toHex(noblePoly1305(hex(msg), hex(key))), tag, `${name} (noble, checks the transcription)`);
  }
});

test('Poly1305 agrees with @noble/ciphers on random keys and lengths, including all-ones limbs', (t) => {
  for (let len = 0; len < 600; len += 1 + (len >> 3)) {
    const key = randomBytes(32);
    const msg = len % 3 === 0 ? new Uint8Array(len).fill(0xff) : randomBytes(len);
    t.deepEqual(batch.poly1305(key, msg), noblePoly1305(msg, key), `len ${len}`);
  }
  // the largest limbs: r and s all ones (r clamped), messages all ones, odd and even block counts
  const ones = new Uint8Array(32).fill(0xff);
  for (const len of [16, 32, 48, 64, 80, 96, 112, 1420, 1424, 4096, 4112]) {
    const msg = new Uint8Array(len).fill(0xff);
    t.deepEqual(batch.poly1305(ones, msg), noblePoly1305(msg, ones), `all ones, len ${len}`);
  }
});

const SUNSCREEN = Buffer.from('Ladies and Gentlemen of the class of \'99: If I could offer you only one tip for the future, sunscreen would be it.');

test('AEAD: RFC 8439 §2.8.2 seals to the published bytes and opens', (t) => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
  const nonce = hex('070000004041424344454647');
  const aad = hex('50515253c0c1c2c3c4c5c6c7');
  const sealed = batch.sealWithNonce(key, nonce, SUNSCREEN, aad);
  t.is(toHex(sealed), 'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6'
    + '3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36'
    + '92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc'
    + '3ff4def08e4b7a9de576d26586cec64b6116' + '1ae10b594f09e26a7e902ecbd0600691');
  t.deepEqual(Buffer.from(batch.openWithNonce(key, nonce, sealed, aad)!), SUNSCREEN);
  sealed[7] ^= 0x20;
  t.is(batch.openWithNonce(key, nonce, sealed, aad), null);
});

test('AEAD: RFC 8439 A.5 decrypts (a WireGuard-shaped nonce: 4 zero bytes then a 64-bit counter)', (t) => {
  const key = hex('1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0');
  const aad = hex('f33388860000000000004e91');
  const sealed = hex('64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2'
    + '4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf'
    + '332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855'
    + '9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4'
    + 'b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e'
    + 'af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a'
    + '0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10'
    + '49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29'
    + 'a6ad5cb4022b02709b' + 'eead9d67890cbb22392336fea1851f38');
  const text = 'Internet-Drafts are draft documents valid for a maximum of six months and may be updated, replaced, '
    + 'or obsoleted by other documents at any time. It is inappropriate to use Internet-Drafts as reference '
    + 'material or to cite them other than as /\u201cwork in progress./\u201d';
  // through the Aead interface: nonce 00000000 ‖ 0102030405060708 = counter lo 0x04030201, hi 0x08070605
  const k = wasmAead.importKey(key);
  const out = new Uint8Array(sealed.length - 16);
  t.is(wasmAead.open(k, 0x04030201, 0x08070605, sealed, aad, out, 0), out.length);
  t.is(Buffer.from(out).toString('utf8'), text);
  const again = new Uint8Array(sealed.length);
  t.is(wasmAead.seal(k, 0x04030201, 0x08070605, out, aad, again, 0), sealed.length);
  t.deepEqual(again, sealed);
  k.zero();
});

// ---- cross-checks ----

function lengths(): number[] {
  const ls = new Set<number>([0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 191, 192, 193, 255, 256, 257, 447, 448, 449,
    511, 512, 513, 1420, 1436, 8192, 65534, 65535]);
  for (const b of [16, 64, 256]) for (let i = 0; i < 6; i++) {
    const m = b * (1 + Math.floor(Math.random() * (65535 / b - 1)));
    ls.add(m - 1); ls.add(m); ls.add(Math.min(m + 1, 65535));
  }
  for (let i = 0; i < 30; i++) ls.add(Math.floor(Math.random() * 65536));
  return [...ls].sort((a, b) => a - b);
}

test('the wasm, node and js backends seal to the same bytes and open each other\'s, on random lengths 0–65535', (t) => {
  const backends = [nodeBackend, jsBackend, wasmBackend];
  for (const len of lengths()) {
    const raw = randomBytes(32);
    const keys = backends.map((b) => b.aead.importKey(raw));
    const pt = randomBytes(len);
    const aad = len % 3 === 0 ? randomBytes(len % 64) : null;
    const lo = (Math.random() * 2 ** 32) >>> 0;
    const hi = (Math.random() * 2 ** 32) >>> 0;
    const sealed = backends.map((b, i) => {
      const out = new Uint8Array(len + 16);
      t.is(b.aead.seal(keys[i], lo, hi, pt, aad, out, 0), len + 16);
      return out;
    });
    t.true(Buffer.compare(sealed[2], sealed[0]) === 0 && Buffer.compare(sealed[1], sealed[0]) === 0, `len ${len}`);
    const back = new Uint8Array(len + 7);
    t.is(wasmAead.open(keys[2], lo, hi, sealed[0], aad, back, 7), len);
    t.true(Buffer.compare(back.subarray(7), pt) === 0, `len ${len} opens`);
    for (const k of keys) k.zero();
  }
});

test('seal and open without aad (Poly1305 stitched into ChaCha20 past 192 bytes) equal node:crypto at every length to 1500 and around each 256-byte chunk, in a batch and alone; tampered packets stay untouched; the scratch is left zeroed', (t) => {
  // the stitched seal absorbs 12 then 16 blocks per 256-byte ChaCha20 call and leaves the last
  // chunk, the partial block and the lengths to the 26-bit Poly1305 (open: 16 per call into a
  // keystream buffer, xored in only once the tag matches): lengths around 192 + 256k (chunk and
  // tail boundaries) and 16k (block boundaries) cover each hand-over
  const ls = new Set<number>();
  for (let n = 0; n <= 1500; n++) ls.add(n);
  for (const k of [4, 8, 16, 31, 32, 64, 127, 128, 255]) for (let d = -17; d <= 17; d++) ls.add(192 + 256 * k + d);
  for (const n of [8192, 8191, 8193, 65535, 65534, 65520, 65519, 65504, 65471, 65472, 65473]) ls.add(n);
  const lens = [...ls].filter((n) => n >= 0 && n <= MAX_PLAINTEXT);
  const b = new AeadBatch({ arenaBytes: 8 << 20, maxRecords: 512, keySlots: 4 });
  const raw = randomBytes(32);
  const slot = b.allocKey(raw);
  const nodeKey = nodeBackend.aead.importKey(raw);
  const wasmKey = wasmAead.importKey(raw);
  let bad = 0;
  for (let start = 0; start < lens.length; start += 256) {
    const group = lens.slice(start, start + 256);
    const plain = group.map((n, i) => (i % 4 === 0 ? new Uint8Array(n).fill(0xff) : randomBytes(n)));
    const offs: number[] = [];
    let off = b.arenaOffset + (start % 13);
    group.forEach((n, i) => {
      offs.push(off);
      b.u8.set(plain[i], off);
      b.setRecord(i, off, n, slot, start + i, i % 3);
      off += n + 16 + (i % 7);
    });
    b.sealBatch(group.length);
    group.forEach((n, i) => {
      const expected = new Uint8Array(n + 16);
      nodeBackend.aead.seal(nodeKey, start + i, i % 3, plain[i], null, expected, 0);
      const alone = new Uint8Array(n + 16);
      wasmAead.seal(wasmKey, start + i, i % 3, plain[i], null, alone, 0);
      if (b.result(i) !== n + 16 || Buffer.compare(b.u8.subarray(offs[i], offs[i] + n + 16), expected) !== 0 || Buffer.compare(alone, expected) !== 0) {
        bad++;
        t.log(`length ${n} differs`);
      }
      b.setRecord(i, offs[i], n + 16, slot, start + i, i % 3);
    });
    // every fifth packet tampered (one bit of ciphertext or tag)
    const tampered = new Map<number, Uint8Array>();
    group.forEach((n, i) => {
      if (i % 5 !== 2) return;
      b.u8[offs[i] + Math.floor(Math.random() * (n + 16))] ^= 1 << (i % 8);
      tampered.set(i, b.u8.slice(offs[i], offs[i] + n + 16));
    });
    b.openBatch(group.length);
    group.forEach((n, i) => {
      const before = tampered.get(i);
      if (before !== undefined) {
        if (b.result(i) !== -1 || Buffer.compare(b.u8.subarray(offs[i], offs[i] + n + 16), before) !== 0) {
          bad++;
          t.log(`length ${n}: a tampered packet was accepted or changed`);
        }
      } else if (b.result(i) !== n || Buffer.compare(b.u8.subarray(offs[i], offs[i] + n), plain[i]) !== 0) {
        bad++;
        t.log(`length ${n} does not open`);
      }
    });
  }
  t.is(bad, 0);
  // key-derived scratch (Poly1305 key, keystream, accumulators) is zero after the calls; only the
  // rotation masks at 768..1023 remain
  const scratch = b.u8.subarray(b.scratchAt, b.scratchAt + SCRATCH_SIZE);
  t.true(scratch.subarray(0, 768).every((x) => x === 0) && scratch.subarray(1024).every((x) => x === 0), 'scratch zeroed');
  t.true(lens.length > 1500);
  nodeKey.zero();
  wasmKey.zero();
});

test('tampering: any flipped byte of ciphertext or tag is rejected, and the output is left untouched', (t) => {
  const key = wasmAead.importKey(randomBytes(32));
  for (const len of [0, 1, 16, 64, 100, 256, 1420]) {
    const pt = randomBytes(len);
    const sealed = new Uint8Array(len + 16);
    wasmAead.seal(key, 5, 0, pt, null, sealed, 0);
    const positions = len + 16 <= 80 ? [...Array(len + 16).keys()] : Array.from({ length: 80 }, () => Math.floor(Math.random() * (len + 16)));
    for (const at of positions) {
      const bad = Uint8Array.from(sealed);
      bad[at] ^= 1 << Math.floor(Math.random() * 8);
      const out = new Uint8Array(len).fill(0xa5);
      t.is(wasmAead.open(key, 5, 0, bad, null, out, 0), -1);
      t.true(out.every((b) => b === 0xa5), 'out untouched');
    }
    // wrong counter, truncated, too short for a tag
    t.is(wasmAead.open(key, 6, 0, sealed, null, new Uint8Array(len), 0), -1);
    t.is(wasmAead.open(key, 5, 0, sealed.subarray(0, len + 15), null, new Uint8Array(len), 0), -1);
    t.is(wasmAead.open(key, 5, 0, sealed.subarray(0, 15), null, new Uint8Array(len), 0), -1);
  }
  key.zero();
  t.throws(() => wasmAead.seal(key, 0, 0, new Uint8Array(1), null, new Uint8Array(17), 0), { message: /zeroed/ });
});

test('tampering in place in a batch: a rejected packet is left exactly as it came in', (t) => {
  const b = new AeadBatch({ arenaBytes: 1 << 20, maxRecords: 64, keySlots: 8 });
  const slot = b.allocKey(randomBytes(32));
  const len = 1420;
  const at = b.arenaOffset;
  b.arena.set(randomBytes(len));
  b.setRecord(0, at, len, slot, 9, 0);
  b.sealBatch(1);
  t.is(b.result(0), len + 16);
  for (let i = 0; i < 200; i++) {
    const sealed = b.u8.slice(at, at + len + 16);
    const flip = Math.floor(Math.random() * (len + 16));
    b.u8[at + flip] ^= 1 + Math.floor(Math.random() * 255);
    const before = b.u8.slice(at, at + len + 16);
    b.setRecord(0, at, len + 16, slot, 9, 0);
    b.openBatch(1);
    t.is(b.result(0), -1);
    t.deepEqual(b.u8.slice(at, at + len + 16), before);
    b.u8.set(sealed, at);
  }
});

test('a batch with mixed keys, counters and lengths equals per-packet results, and opens back', (t) => {
  const b = new AeadBatch({ arenaBytes: 4 << 20, maxRecords: 256, keySlots: 16 });
  const raws = Array.from({ length: 5 }, () => randomBytes(32));
  const slots = raws.map((r) => b.allocKey(r));
  const nodeKeys = raws.map((r) => nodeBackend.aead.importKey(r));
  const n = 200;
  const plain: Uint8Array[] = [];
  const meta: Array<[number, number, number, number]> = [];
  let off = b.arenaOffset + 3; // any alignment
  for (let i = 0; i < n; i++) {
    const len = i % 7 === 0 ? Math.floor(Math.random() * 9000) : [0, 1, 64, 255, 256, 1420][i % 6];
    const k = Math.floor(Math.random() * slots.length);
    const lo = (Math.random() * 2 ** 32) >>> 0;
    const hi = i % 2 ? (Math.random() * 2 ** 32) >>> 0 : 0;
    const pt = randomBytes(len);
    plain.push(pt);
    b.u8.set(pt, off);
    b.setRecord(i, off, len, slots[k], lo, hi);
    meta.push([off, len, k, lo]);
    off += len + 16 + (i % 5);
  }
  b.sealBatch(n);
  for (let i = 0; i < n; i++) {
    const [o, len, k] = meta[i];
    const w = i * 8;
    t.is(b.result(i), len + 16);
    const expected = new Uint8Array(len + 16);
    nodeBackend.aead.seal(nodeKeys[k], b.records[w + 3], b.records[w + 4], plain[i], null, expected, 0);
    t.deepEqual(b.u8.slice(o, o + len + 16), expected, `packet ${i}`);
  }
  // one record with a bad tag among good ones; then open the batch in place
  for (let i = 0; i < n; i++) b.records[i * 8 + 1] += 16;
  b.u8[meta[17][0]] ^= 0x80;
  b.openBatch(n);
  for (let i = 0; i < n; i++) {
    const [o, len] = meta[i];
    if (i === 17) {
      t.is(b.result(i), -1);
      continue;
    }
    t.is(b.result(i), len);
    t.deepEqual(b.u8.slice(o, o + len), Uint8Array.from(plain[i]), `packet ${i} opens`);
  }
  for (const s of slots) b.freeKey(s);
  t.is(b.keysInUse, 0);
  t.throws(() => b.freeKey(slots[0]), { message: /not in use/ }, 'a slot is never freed twice');
});

test('a sealed batch equals its records sealed one at a time: tags pipelined into the next packet, across aad records, invalid records, empty packets and a packet that starts on the tag before it', (t) => {
  // sealBatch writes a packet's tag after the next packet's first ChaCha20 call (sealPiped), and
  // writes it at once before an aad record or at the end; records still run as in sequence
  const mk = () => new AeadBatch({ arenaBytes: 1 << 21, maxRecords: 128, keySlots: 4 });
  const a = mk();
  const b = mk();
  const raws = [randomBytes(32), randomBytes(32)];
  const sa = raws.map((r) => a.allocKey(r));
  const sb = raws.map((r) => b.allocKey(r));
  t.deepEqual(sa, sb);
  for (let round = 0; round < 20; round++) {
    const fill = randomBytes(1 << 20);
    a.arena.set(fill);
    b.arena.set(fill);
    const recs: Array<[number, number, number, number, number, number, number]> = [];
    let off = a.arenaOffset + (round % 16);
    for (let i = 0; i < 100; i++) {
      const kind = Math.floor(Math.random() * 10);
      const len = kind === 0 ? 0 : kind === 1 ? Math.floor(Math.random() * 64) : kind < 5 ? 1420 + (i % 20) : Math.floor(Math.random() * 3000);
      const aad = kind === 5 ? [a.arenaOffset + 900_000 + i * 64, 1 + (i % 60)] : [0, 0];
      const slot = kind === 6 ? 9 : sa[i % 2]; // 9: no such slot, the record gets -1
      recs.push([off, len, slot, round * 1000 + i, i, aad[0], aad[1]]);
      // mostly apart; sometimes the next packet starts on this packet's tag
      off += kind === 7 ? len : len + 16 + (i % 5);
    }
    recs.forEach((r, i) => a.setRecord(i, ...r));
    a.sealBatch(recs.length);
    for (const r of recs) {
      b.setRecord(0, ...r);
      b.sealBatch(1);
      t.is(a.result(recs.indexOf(r)), b.result(0));
    }
    t.true(Buffer.compare(a.arena, b.arena) === 0, `round ${round}: the arenas agree`);
  }
});

test('batch records out of bounds, too long or with a bad slot get -1 and touch nothing', (t) => {
  const b = new AeadBatch({ arenaBytes: 1 << 17, maxRecords: 8, keySlots: 2 });
  const slot = b.allocKey(randomBytes(32));
  const end = b.arenaOffset + b.arenaBytes;
  const snapshot = b.u8.slice(0, end);
  b.setRecord(0, b.arenaOffset - 1, 10, slot, 0, 0); // starts before the arena
  b.setRecord(1, end - 20, 10, slot, 0, 0); // its tag would pass the end
  b.setRecord(2, b.arenaOffset, MAX_PLAINTEXT + 1, slot, 0, 0); // too long
  b.setRecord(3, b.arenaOffset, 10, 2, 0, 0); // no such slot
  b.setRecord(4, 0, 10, slot, 0, 0); // the key table itself
  b.sealBatch(5);
  for (let i = 0; i < 5; i++) t.is(b.result(i), -1);
  b.setRecord(0, b.arenaOffset, 15, slot, 0, 0); // shorter than a tag
  b.openBatch(1);
  t.is(b.result(0), -1);
  // the arena and the key table are as they were
  t.deepEqual(b.u8.slice(b.arenaOffset, end), snapshot.subarray(b.arenaOffset));
  t.deepEqual(b.u8.slice(b.keysOffset, b.keysOffset + 64), snapshot.subarray(b.keysOffset, b.keysOffset + 64));
  t.throws(() => b.sealBatch(9), { instanceOf: RangeError });
  b.allocKey(randomBytes(32));
  t.throws(() => b.allocKey(randomBytes(32)), { message: /slots/ });
});

test('key slots are zeroed when freed, also when a key is dropped with zero()', (t) => {
  const b = AeadBatch.default();
  const before = b.keysInUse;
  const keys: AeadKey[] = Array.from({ length: 10 }, () => wasmAead.importKey(randomBytes(32)));
  t.is(b.keysInUse, before + 10);
  const slot = (keys[3] as unknown as { slot: number }).slot;
  const at = b.keysOffset + slot * 32;
  t.false(b.u8.subarray(at, at + 32).every((x) => x === 0));
  for (const k of keys) k.zero();
  t.true(b.u8.subarray(at, at + 32).every((x) => x === 0));
  t.is(b.keysInUse, before);
});

test('a worker-style second instance on the same shared memory uses the first one\'s key slots', (t) => {
  const a = new AeadBatch({ arenaBytes: 1 << 17, maxRecords: 4, keySlots: 4 });
  const w = new AeadBatch({ module: AeadBatch.module(), memory: a.memory, base: a.end, keys: { offset: a.keysOffset, slots: a.keySlots }, arenaBytes: 1 << 17, maxRecords: 4 });
  t.true(a.memory.buffer instanceof SharedArrayBuffer);
  const slot = a.allocKey(randomBytes(32));
  const pt = randomBytes(300);
  a.u8.set(pt, a.arenaOffset);
  a.sealOne(slot, 1, 2, a.arenaOffset, 300);
  w.u8.set(a.u8.subarray(a.arenaOffset, a.arenaOffset + 316), w.arenaOffset);
  t.is(w.openOne(slot, 1, 2, w.arenaOffset, 316), 300);
  t.deepEqual(w.u8.slice(w.arenaOffset, w.arenaOffset + 300), Uint8Array.from(pt));
  t.throws(() => w.allocKey(randomBytes(32)));
});

// ---- the binary is the source ----

test('npm run build:wasm rebuilds the checked-in .wasm (and its embedded copy) byte for byte', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sixpn-wasm-'));
  try {
    const built = readFileSync(await buildWasm(dir));
    const checkedIn = readFileSync(fileURLToPath(new URL('../src/noise/wasm/chacha20poly1305.wasm', import.meta.url)));
    t.true(built.equals(checkedIn), 'rebuild src/noise/wasm/chacha20poly1305.wasm with `npm run build:wasm` and commit it');
    const module = readFileSync(fileURLToPath(new URL('../src/noise/wasm/chacha20poly1305.wasm.ts', import.meta.url)), 'utf8');
    t.is(module, readFileSync(path.join(dir, 'chacha20poly1305.wasm.ts'), 'utf8'), 'the embedded copy is the rebuilt binary');
    t.true(Buffer.from(CHACHA20POLY1305_WASM_BASE64, 'base64').equals(built));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- Keypair's batch path (prepareSeal / prepareOpen / completeOpen with AeadBatch records) ----

test('Keypair: messages sealed through an AeadBatch equal Keypair.seal, and open through one', (t) => {
  const { a, b } = makePair(wasmBackend);
  const { ki, kr } = handshake(a, b);
  t.true(ki.sendSlot >= 0 && kr.receiveSlot >= 0);
  const ab = AeadBatch.default();
  const sizes = [0, 1, 100, 1280, 1420, 3000];
  const stride = 4096;
  const plain = sizes.map((n) => randomBytes(n));
  for (let i = 0; i < sizes.length; i++) {
    const off = ab.arenaOffset + i * stride;
    ab.u8.set(plain[i], off + 16);
    const padded = ki.prepareSeal(ab.u8, off, sizes[i], 1420);
    t.true(padded >= 0);
    ab.setRecord(i, off + 16, padded, ki.sendSlot, ki.preparedCounterLo, ki.preparedCounterHi);
  }
  ab.sealBatch(sizes.length);
  const messages = sizes.map((_, i) => ab.u8.slice(ab.arenaOffset + i * stride, ab.arenaOffset + i * stride + 16 + ab.result(i)));
  // each one opens with the ordinary single-message path, in order
  for (let i = 0; i < sizes.length; i++) {
    const m = Uint8Array.from(messages[i]);
    t.is(kr.open(m, 0, m.length), messages[i].length - 32, `message ${i}`);
    t.deepEqual(m.subarray(16, 16 + sizes[i]), Uint8Array.from(plain[i]));
  }
  // and through a batch on a fresh receiving side (the replay window is per keypair)
  const again = handshake(a, b, 100_000, Date.now() + 60_000);
  const rx = again.kr;
  const tx = again.ki;
  const lens: number[] = [];
  for (let i = 0; i < sizes.length; i++) {
    const off = ab.arenaOffset + i * stride;
    const m = new Uint8Array(16 + 1500 + 16 + 3000);
    m.set(plain[i], 16);
    const len = tx.seal(m, 0, sizes[i], 1420);
    ab.u8.set(m.subarray(0, len), off);
    lens.push(len);
    const sealed = rx.prepareOpen(ab.u8, off, len);
    t.is(sealed, len - 16);
    ab.setRecord(i, off + 16, sealed, rx.receiveSlot, rx.preparedCounterLo, rx.preparedCounterHi);
  }
  ab.u8[ab.arenaOffset + 2 * stride + 20] ^= 1; // message 2 tampered
  ab.openBatch(sizes.length);
  for (let i = 0; i < sizes.length; i++) {
    const r = rx.completeOpen(i, 0, ab.result(i));
    if (i === 2) {
      t.true(r < 0);
      continue;
    }
    t.is(r, lens[i] - 32);
    const off = ab.arenaOffset + i * stride;
    t.deepEqual(ab.u8.slice(off + 16, off + 16 + sizes[i]), Uint8Array.from(plain[i]));
  }
  t.true(rx.completeOpen(0, 0, 5) < 0, 'a counter is accepted once');
  for (const kp of [ki, kr, tx, rx]) kp.zero();
  t.is(ki.sendSlot, -1);
});

test('a worker thread instantiates the module it is sent and opens, in the shared memory, what the main thread sealed', async (t) => {
  const { Worker } = await import('node:worker_threads');
  const main = new AeadBatch({ arenaBytes: 1 << 17, maxRecords: 8, keySlots: 8 });
  const slot = main.allocKey(randomBytes(32));
  const pt = randomBytes(1420);
  main.u8.set(pt, main.arenaOffset);
  t.is(main.sealOne(slot, 42, 0, main.arenaOffset, 1420), 1436);
  const sealedCopy = main.u8.slice(main.arenaOffset, main.arenaOffset + 1436);
  const src = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.url).then(({ AeadBatch }) => {
      const { module, memory, base, keys, at } = workerData;
      const w = new AeadBatch({ module, memory, base, keys, arenaBytes: 1 << 17, maxRecords: 8 });
      w.u8.copyWithin(w.arenaOffset, at, at + 1436);
      w.setRecord(0, w.arenaOffset, 1436, 0, 42, 0);
      w.openBatch(1);
      parentPort.postMessage({ result: w.result(0), plain: w.u8.slice(w.arenaOffset, w.arenaOffset + 1420) });
    });`;
  const worker = new Worker(src, {
    eval: true,
    workerData: {
      url: new URL('../src/noise/aead-batch.ts', import.meta.url).href,
      module: AeadBatch.module(),
      memory: main.memory,
      base: main.end,
      keys: { offset: main.keysOffset, slots: main.keySlots },
      at: main.arenaOffset,
    },
  });
  const reply = await new Promise<{ result: number; plain: Uint8Array }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  t.is(reply.result, 1420);
  t.deepEqual(reply.plain, Uint8Array.from(pt));
  // the main thread's copy is untouched: the worker worked in its own arena of the same memory
  t.deepEqual(main.u8.slice(main.arenaOffset, main.arenaOffset + 1436), sealedCopy);
  t.is(slot, 0);
});
