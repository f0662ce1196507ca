// Shared test helpers for src/noise: two in-memory sides that handshake.
export * from '../../src/noise/index.ts';
import {
  CookieChecker,
  Handshake,
  StaticIdentity,
  consumeInitiation,
  generatePrivateKeyBytes,
  type CryptoBackend,
  type Keypair,
} from '../../src/noise/index.ts';
import { toHex } from '../../src/noise/util.ts';

export const toHexForTest = toHex;

export interface Side {
  identity: StaticIdentity;
  checker: CookieChecker;
  peer: Handshake; // our handshake state for the other side
}

export function makePair(backendA: CryptoBackend, backendB: CryptoBackend = backendA, psk: Uint8Array | null = null): { a: Side; b: Side } {
  const ia = new StaticIdentity(backendA, generatePrivateKeyBytes());
  const ib = new StaticIdentity(backendB, generatePrivateKeyBytes());
  return {
    a: { identity: ia, checker: new CookieChecker(ia), peer: new Handshake(ia, ib.publicKey, psk) },
    b: { identity: ib, checker: new CookieChecker(ib), peer: new Handshake(ib, ia.publicKey, psk) },
  };
}

export function lookupFor(side: Side) {
  return (pk: Uint8Array) => (Buffer.compare(Buffer.from(pk), Buffer.from(side.peer.remoteStatic)) === 0 ? side.peer : undefined);
}

/** Runs initiation and response from `i` to `r`; returns both messages and both keypairs. */
export function handshake(i: Side, r: Side, nowMs = 1000, unixMs = Date.now()): { init: Uint8Array; resp: Uint8Array; ki: Keypair; kr: Keypair } {
  const init = new Uint8Array(148);
  if (i.peer.createInitiation(0x11111111, unixMs, init) !== 148) throw new Error('createInitiation');
  i.peer.cookies.addMacs(init, 148, nowMs);
  if (!r.checker.checkMac1(init, 148)) throw new Error('mac1 initiation');
  const c = consumeInitiation(r.identity, init, 148, lookupFor(r), nowMs);
  if (!c.ok) throw new Error(`consumeInitiation: ${c.error}`);
  const resp = new Uint8Array(92);
  if (r.peer.createResponse(0x22222222, resp) !== 92) throw new Error('createResponse');
  r.peer.cookies.addMacs(resp, 92, nowMs);
  if (!i.checker.checkMac1(resp, 92)) throw new Error('mac1 response');
  const cr = i.peer.consumeResponse(resp, 92);
  if (!cr.ok) throw new Error(`consumeResponse: ${cr.error}`);
  const ki = i.peer.deriveKeypair(nowMs)!;
  const kr = r.peer.deriveKeypair(nowMs)!;
  return { init, resp, ki, kr };
}
