// Known answers from real bytes: a handshake captured between two wireguard-go 0.0.20220316
// instances (../shared/fixtures/wireguard-go-v6), consumed with our code.
import test from 'ava';
import { fileURLToPath } from 'node:url';
import {
  CookieChecker,
  CookieGenerator,
  Handshake,
  HANDSHAKE_INITIATION_CONSUMED,
  INIT_OFF_MAC2,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE_SIZE,
  RESP_OFF_RECEIVER,
  RESP_OFF_SENDER,
  StaticIdentity,
  Symmetric,
  chosenBackend,
  consumeInitiation,
  isZero,
  jsBackend,
  keyToBase64,
  nodeBackend,
  parseKeyBase64,
  readTai64nMs,
  readU32LE,
  transportReceiver,
  wasmBackend,
  writeTai64n,
} from '../src/noise/index.ts';
import { readPcap, udpOfFrame } from './helpers/pcap.ts';

const FIXTURE = fileURLToPath(new URL('../../shared/fixtures/wireguard-go-v6/wg-handshake.pcap', import.meta.url));
const INITIATOR_PRIVATE = 'cLasKf8myD121JnDHIN43gW0GZENYcAKRNPdSTA5AmI=';
const INITIATOR_PUBLIC = '52nGXqYOaYPiTJ5pci1Cdp4p7SI20iLaW9PAyeFZxis=';
const RESPONDER_PRIVATE = 'eE9CQcGGLhXLZUXJTLCaZeM9mvGc/i65Wx+a4MBTI34=';
const RESPONDER_PUBLIC = 'LC5VLu7IAjNlDqZXNO18bdaijDdzzG6Di8J/jW1meTY=';

async function messages() {
  const cap = await readPcap(FIXTURE);
  const udp = cap.packets.map((f) => udpOfFrame(f, cap.linkType)).filter((d) => d !== null);
  const initiation = udp.find((d) => d.payload[0] === 1)!;
  const response = udp.find((d) => d.payload[0] === 2)!;
  const transport = udp.filter((d) => d.payload[0] === 4);
  return { cap, udp, initiation, response, transport };
}

test('the capture holds one initiation, one response and transport data between the documented addresses', async (t) => {
  const { cap, udp, initiation, response, transport } = await messages();
  t.is(cap.linkType, 1);
  t.is(udp.length, 24);
  t.is(initiation.payload.length, MESSAGE_INITIATION_SIZE);
  t.is(response.payload.length, MESSAGE_RESPONSE_SIZE);
  t.is(initiation.srcPort, 51820);
  t.is(initiation.src, 'fd00:b1:0:0:0:0:0:1');
  t.true(transport.length > 0);
  // the response answers the initiation: its receiver is the initiation's sender
  t.is(readU32LE(response.payload, RESP_OFF_RECEIVER), readU32LE(initiation.payload, 4));
  // transport from the initiator is addressed to the responder's index, and vice versa
  const toResponder = transport.filter((d) => d.src === initiation.src);
  t.true(toResponder.length > 0);
  for (const d of toResponder) t.is(transportReceiver(d.payload, 0, d.payload.length), readU32LE(response.payload, RESP_OFF_SENDER));
});

for (const backend of [nodeBackend, jsBackend, wasmBackend, chosenBackend]) {
  test(`${backend.name}: the wireguard-go initiation is consumed with the responder's key`, async (t) => {
    const { initiation } = await messages();
    const msg = new Uint8Array(initiation.payload);
    const responder = new StaticIdentity(backend, parseKeyBase64(RESPONDER_PRIVATE));
    t.is(keyToBase64(responder.publicKey), RESPONDER_PUBLIC);

    // mac1 verifies; mac2 is zero (wireguard-go had no cookie)
    t.true(new CookieChecker(responder).checkMac1(msg, msg.length));
    t.true(isZero(msg, INIT_OFF_MAC2, 16));

    // the encrypted static decrypts to the initiator's public key, and the timestamp decrypts
    const initiatorPublic = parseKeyBase64(INITIATOR_PUBLIC);
    const peer = new Handshake(responder, initiatorPublic);
    let asked: Uint8Array | null = null;
    const r = consumeInitiation(responder, msg, msg.length, (pk) => {
      asked = Uint8Array.from(pk);
      return Buffer.compare(pk, initiatorPublic) === 0 ? peer : undefined;
    }, 1_000_000);
    t.true(r.ok);
    t.deepEqual(asked, initiatorPublic);
    t.is(peer.state, HANDSHAKE_INITIATION_CONSUMED);
    t.is(peer.remoteIndex, readU32LE(msg, 4));
    // TAI64N: a plausible capture date (2020..2040), and whitened nanoseconds (multiple of 2^24)
    const ms = readTai64nMs(peer.lastTimestamp, 0);
    t.true(ms > Date.UTC(2020, 0, 1) && ms < Date.UTC(2040, 0, 1), `timestamp ${new Date(ms).toISOString()}`);
    t.is(new DataView(peer.lastTimestamp.buffer).getUint32(8) % 2 ** 24, 0);

    // the same initiation again is a replay
    const again = consumeInitiation(responder, msg, msg.length, () => peer, 2_000_000);
    t.deepEqual(again, { ok: false, error: 'replayed-timestamp' });

    // with another responder key, nothing decrypts
    const stranger = new StaticIdentity(backend, parseKeyBase64(INITIATOR_PRIVATE));
    t.false(new CookieChecker(stranger).checkMac1(msg, msg.length));
    t.deepEqual(consumeInitiation(stranger, msg, msg.length, () => peer, 3_000_000), { ok: false, error: 'decrypt' });
  });

  test(`${backend.name}: the wireguard-go response parses and its mac1 verifies against the initiator's key`, async (t) => {
    const { response } = await messages();
    const msg = new Uint8Array(response.payload);
    const initiator = new StaticIdentity(backend, parseKeyBase64(INITIATOR_PRIVATE));
    t.is(keyToBase64(initiator.publicKey), INITIATOR_PUBLIC);
    t.true(new CookieChecker(initiator).checkMac1(msg, msg.length));
    // and our own generator, keyed for the initiator, computes the same mac1 over those bytes
    const copy = Uint8Array.from(msg);
    new CookieGenerator(new Symmetric(backend), initiator.publicKey).addMacs(copy, copy.length, 0);
    t.deepEqual(copy, msg);
    // against the responder's key it does not verify
    const responder = new StaticIdentity(backend, parseKeyBase64(RESPONDER_PRIVATE));
    t.false(new CookieChecker(responder).checkMac1(msg, msg.length));
  });
}

test('TAI64N writes what it reads, and whitens nanoseconds', (t) => {
  const b = new Uint8Array(12);
  writeTai64n(Date.UTC(2026, 10, 22, 1, 2, 3, 999), b, 0);
  t.is(new DataView(b.buffer).getUint32(0), 0x40000000);
  t.is(new DataView(b.buffer).getUint32(8) % 2 ** 24, 0);
  const back = readTai64nMs(b, 0);
  t.true(back <= Date.UTC(2026, 10, 22, 1, 2, 3, 999) && back > Date.UTC(2026, 10, 22, 1, 2, 3, 980));
});
