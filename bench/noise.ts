// npm run bench:noise — the WireGuard protocol core on one core (this thread):
//   per primitive and backend: the measurements behind src/noise/crypto.ts's `chosenBackend`;
//   handshakes/s: an initiation checked (mac1) and consumed, a response created, keys derived;
//   transport seal/open per second at 64, 1420 and 8192 bytes.
// Median of RUNS runs each. The last line is one JSON object.
import { randomBytes } from 'node:crypto';
import {
  CookieChecker,
  Handshake,
  Keypair,
  StaticIdentity,
  Symmetric,
  chosenBackend,
  consumeInitiation,
  generatePrivateKeyBytes,
  jsBackend,
  nodeBackend,
  paddedLength,
  type CryptoBackend,
} from '../src/noise/index.ts';
import { fmt, machineDescription, medianOf, opsPerSecond } from './lib.ts';

const RUNS = Number(process.env.RUNS ?? 5);
const SIZES = [64, 1420, 8192];
const MTU = 8192 + 80;

console.log(machineDescription());
console.log(`runs: ${RUNS} (median reported)\n`);

// ---- primitives ----
function primitives(b: CryptoBackend): Record<string, number> {
  const sym = new Symmetric(b);
  const priv = b.x25519.generate();
  const pub = b.x25519.importPublic(b.x25519.generate().publicKey);
  const out = new Uint8Array(32);
  const m148 = randomBytes(148);
  const key = randomBytes(32);
  const aeadKey = b.aead.importKey(key);
  const pt = new Uint8Array(1420);
  const ct = new Uint8Array(1436);
  const slow = b === jsBackend ? 100 : 250;
  return {
    'x25519 shared secret': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.x25519.dh(priv, pub, out); }, slow)),
    'x25519 generate': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.x25519.generate(); }, slow)),
    'x25519 import public': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.x25519.importPublic(key); })),
    'blake2s-256 148 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.blake2s.hash(m148, null, out); })),
    'hmac-blake2s 33 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) sym.hmac(key, m148.subarray(0, 33), out); })),
    'keyed blake2s-128 116 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.blake2s.mac(key, m148.subarray(0, 116), out.subarray(0, 16)); })),
    'chacha20poly1305 seal 1420 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.aead.seal(aeadKey, i, 0, pt, null, ct, 0); })),
    'chacha20poly1305 import key + seal 32 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) { const k = b.handshakeAead.importKey(key); b.handshakeAead.seal(k, 0, 0, pt.subarray(0, 32), out, ct, 0); k.zero(); } })),
    'xchacha20poly1305 seal 16 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.xaead.seal(key, m148.subarray(0, 24), pt.subarray(0, 16), m148.subarray(0, 16), ct); })),
  };
}

// ---- handshakes: responder work per initiation ----
function handshakesPerSecond(b: CryptoBackend): number {
  // initiations are made with the fast backend (not timed), consumed with `b`
  const responder = new StaticIdentity(b, generatePrivateKeyBytes());
  const checker = new CookieChecker(responder);
  const initiatorId = new StaticIdentity(chosenBackend, generatePrivateKeyBytes());
  const toResponder = new Handshake(initiatorId, responder.publicKey);
  const peer = new Handshake(responder, initiatorId.publicKey);
  const lookup = () => peer;
  const count = b === jsBackend ? 60 : 1500;
  const inits: Uint8Array[] = [];
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    const m = new Uint8Array(148);
    toResponder.createInitiation(i, t0 + i * 1000, m);
    toResponder.cookies.addMacs(m, 148, 0);
    inits.push(m);
  }
  const resp = new Uint8Array(92);
  let now = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    now += 25; // past the 20 ms flood guard
    if (!checker.checkMac1(inits[i], 148)) throw new Error('mac1');
    const r = consumeInitiation(responder, inits[i], 148, lookup, now);
    if (!r.ok) throw new Error(r.error);
    peer.createResponse(i, resp);
    peer.cookies.addMacs(resp, 92, now);
    peer.deriveKeypair(now)!.zero();
  }
  return (count * 1e9) / Number(process.hrtime.bigint() - start);
}

// ---- transport ----
function keypairs(b: CryptoBackend): [Keypair, Keypair] {
  const aead = b.aead;
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  return [
    new Keypair(aead, aead.importKey(k1), aead.importKey(k2), 1, 2, 0, true),
    new Keypair(aead, aead.importKey(k2), aead.importKey(k1), 2, 1, 0, false),
  ];
}

function sealPerSecond(b: CryptoBackend, size: number): number {
  const [tx] = keypairs(b);
  const buf = new Uint8Array(16 + size + 32);
  return opsPerSecond((n) => { for (let i = 0; i < n; i++) tx.seal(buf, 0, size, MTU); });
}

function openPerSecond(b: CryptoBackend, size: number): number {
  const [tx, rx] = keypairs(b);
  const count = Math.max(2000, Math.min(40_000, Math.floor(40e6 / size)));
  const len = 16 + paddedLength(size, MTU) + 16;
  const sealed = new Uint8Array(len * count);
  for (let i = 0; i < count; i++) tx.seal(sealed, i * len, size, MTU);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) if (rx.open(sealed, i * len, len) < 0) throw new Error('open');
  return (count * 1e9) / Number(process.hrtime.bigint() - start);
}

type Row = Record<string, number>;
const results: Record<string, Row> = {};
const backends = [nodeBackend, jsBackend, chosenBackend];
for (const b of backends.slice(0, 2)) results[b.name] = primitives(b);
console.log('primitives (ops/s)'.padEnd(32) + backends.slice(0, 2).map((b) => b.name.padStart(12)).join('') + '   faster');
for (const name of Object.keys(results.node)) {
  const n = results.node[name];
  const j = results.js[name];
  console.log(name.padEnd(32) + fmt(n).padStart(12) + fmt(j).padStart(12) + '   ' + (n >= j ? 'node' : 'js') + ` (${(Math.max(n, j) / Math.min(n, j)).toFixed(2)}×)`);
}
const pick = (k: keyof CryptoBackend) => `${k}=${chosenBackend[k] === nodeBackend[k] ? 'node' : 'js'}`;
console.log(`chosen: ${(['x25519', 'blake2s', 'aead', 'handshakeAead', 'xaead'] as const).map(pick).join(' ')}\n`);

const table: Record<string, Row> = {};
for (const b of backends) {
  const row: Row = {};
  row.handshake_per_s = medianOf(RUNS, () => handshakesPerSecond(b));
  for (const s of SIZES) {
    row[`seal_${s}_per_s`] = medianOf(RUNS, () => sealPerSecond(b, s));
    row[`open_${s}_per_s`] = medianOf(RUNS, () => openPerSecond(b, s));
  }
  table[b.name] = row;
}
console.log('protocol (ops/s)'.padEnd(20) + backends.map((b) => b.name.padStart(12)).join(''));
for (const key of Object.keys(table.chosen)) console.log(key.padEnd(20) + backends.map((b) => fmt(table[b.name][key]).padStart(12)).join(''));
console.log(`seal 1420 B in Gbit/s (chosen): ${((table.chosen.seal_1420_per_s * 1420 * 8) / 1e9).toFixed(2)}`);

const chosen = table.chosen;
console.log(JSON.stringify({
  bench: 'noise',
  node: process.version,
  runs: RUNS,
  handshake_per_s: Math.round(chosen.handshake_per_s),
  seal_64_per_s: Math.round(chosen.seal_64_per_s),
  open_64_per_s: Math.round(chosen.open_64_per_s),
  seal_1420_per_s: Math.round(chosen.seal_1420_per_s),
  open_1420_per_s: Math.round(chosen.open_1420_per_s),
  seal_8192_per_s: Math.round(chosen.seal_8192_per_s),
  open_8192_per_s: Math.round(chosen.open_8192_per_s),
  per_backend: Object.fromEntries(backends.map((b) => [b.name, Object.fromEntries(Object.entries(table[b.name]).map(([k, v]) => [k, Math.round(v)]))])),
}));
