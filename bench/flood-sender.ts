// The attacker of bench:flood (bench/flood.ts), run inside its namespace: WireGuard handshake
// initiations at RATE per second for SECONDS, from every source address given (one socket
// each), to TARGET:PORT. Each carries a valid mac1 for the target's public key (so the target
// must look at it: under load it answers with a cookie reply instead of doing the handshake's
// Diffie-Hellman) and no mac2 (no cookie: it never proves it owns its address). Counts the
// cookie replies it gets; prints one JSON line at the end.
//   node bench/flood-sender.ts TARGET PORT PUBKEY_BASE64 RATE SECONDS SRC_ADDR…
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import {
  CookieGenerator, MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_INITIATION_SIZE, StaticIdentity, chosenBackend, generatePrivateKeyBytes,
  parseKeyBase64,
} from '../src/noise/index.ts';

const [target, portText, pubText, rateText, secondsText, ...sources] = process.argv.slice(2);
const port = Number(portText);
const rate = Number(rateText);
const seconds = Number(secondsText);
const MESSAGES = 4096;
const TICK_MS = 5;

const gen = new CookieGenerator(new StaticIdentity(chosenBackend, generatePrivateKeyBytes()).sym, parseKeyBase64(pubText));
const msgs: Uint8Array[] = [];
for (let i = 0; i < MESSAGES; i++) {
  const m = new Uint8Array(MESSAGE_INITIATION_SIZE);
  m.set(randomBytes(MESSAGE_INITIATION_SIZE - 4), 4); // sender index, ephemeral, sealed static and timestamp: noise
  m[0] = MESSAGE_INITIATION;
  gen.addMacs(m, MESSAGE_INITIATION_SIZE, 0); // mac1 valid, mac2 zero (no cookie)
  msgs.push(m);
}

let cookieReplies = 0;
let otherReplies = 0;
let sendErrors = 0;
const socks: Socket[] = [];
for (const src of sources) {
  const s = createSocket({ type: 'udp6' });
  s.on('message', (m) => (m[0] === MESSAGE_COOKIE_REPLY && m.length === 64 ? cookieReplies++ : otherReplies++));
  s.on('error', () => sendErrors++);
  await new Promise<void>((resolve) => s.bind({ address: src, port: 0 }, resolve));
  socks.push(s);
}

let sent = 0;
let k = 0;
const t0 = performance.now();
const end = t0 + seconds * 1000;
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now();
    const due = Math.min(rate * ((Math.min(now, end) - t0) / 1000), rate * seconds) - sent;
    for (let i = 0; i < due; i++, k++) {
      socks[k % socks.length].send(msgs[k % MESSAGES], port, target, (err) => err && sendErrors++);
      sent++;
    }
    if (now >= end) return resolve();
    setTimeout(tick, TICK_MS);
  };
  tick();
});
const elapsed = (performance.now() - t0) / 1000;
await new Promise((r) => setTimeout(r, 300)); // the last replies
for (const s of socks) s.close();
console.log(JSON.stringify({ sent, seconds: elapsed, initiationsPerS: sent / elapsed, cookieReplies, cookieRepliesPerS: cookieReplies / elapsed, otherReplies, sendErrors, sources: socks.length }));
