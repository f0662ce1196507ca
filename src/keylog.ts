// The opt-in WireGuard key log (issue 14): for each handshake this side builds, four lines that
// Wireshark's WireGuard dissector reads from the file named by its `wg.keylog_file` preference,
// so a capture of the encrypted UDP can be decrypted:
//
//   LOCAL_STATIC_PRIVATE_KEY = <base64>      this side's private key
//   REMOTE_STATIC_PUBLIC_KEY = <base64>      the peer's public key
//   LOCAL_EPHEMERAL_PRIVATE_KEY = <base64>   the ephemeral of this initiation or response
//   PRESHARED_KEY = <base64>                 the peer's preshared key (zeros when none)
//
// (the format of the Wireshark wiki's "Key Log Format" and of WireGuard's extract-handshakes.sh;
// a PRESHARED_KEY line belongs to the LOCAL_EPHEMERAL_PRIVATE_KEY line before it). One side's
// static and ephemeral private keys are enough for Wireshark to compute every DH of the
// handshake, so either end's log decrypts the session.
//
// The file is a secret: it is created 0600 (an existing one is made 0600), only appended to, and
// a warning is logged once when it opens. sixpn-wg opens it for SIXPN_KEYLOG=FILE, `sixpn up` for
// `"keylog"` in the host config.
//
// How the keys are found without the protocol core handing out private keys: the device is given
// a crypto backend whose X25519 `generate`/`importPrivate` keep the raw bytes of the keys they
// make (by public key, a few at a time), and the device's `onHandshakeMessage` option says when a
// message is built; the ephemeral public key in it picks the private key to write.
import { closeSync, fchmodSync, fstatSync, openSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Logger } from './log.ts';
import {
  INIT_OFF_EPHEMERAL, MESSAGE_INITIATION, RESP_OFF_EPHEMERAL, chosenBackend, type CryptoBackend, type PrivateKey, type X25519,
} from './noise/index.ts';
import type { DeviceOptions } from './wg/device.ts';
import type { Peer } from './wg/peer.ts';

const KEY_SIZE = 32;
const MAX_EPHEMERALS = 64; // ephemerals generated and not yet written (a handshake in flight each)
const MAX_STATICS = 8; // private keys imported (the device's own, a few changes)

export class KeyLog {
  readonly file: string;
  #fd: number;
  readonly #log: Logger;
  readonly #ephemerals = new Map<string, Uint8Array>(); // public key (base64) → private key
  readonly #statics = new Map<string, Uint8Array>();
  readonly backend: CryptoBackend;
  /** Lines written (handshakes logged). */
  handshakes = 0;

  private constructor(file: string, fd: number, log: Logger, base: CryptoBackend) {
    this.file = file;
    this.#fd = fd;
    this.#log = log;
    this.backend = { ...base, name: `${base.name}+keylog`, x25519: this.#recording(base.x25519) };
  }

  /** Opens (creates 0600, or appends to) `file`; logs the warning. Throws if it cannot be opened. */
  static open(file: string, log: Logger, base: CryptoBackend = chosenBackend): KeyLog {
    const fd = openSync(file, 'a', 0o600);
    try {
      if ((fstatSync(fd).mode & 0o077) !== 0) fchmodSync(fd, 0o600);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    log.error(`keylog: WARNING: writing WireGuard session keys to ${file} (for Wireshark's wg.keylog_file); anyone who reads it can decrypt this device's traffic`, { keylog: file });
    return new KeyLog(file, fd, log, base);
  }

  /** The device options that make a device log its handshakes here. */
  deviceOptions(): Pick<DeviceOptions, 'backend' | 'onHandshakeMessage'> {
    return { backend: this.backend, onHandshakeMessage: (peer, msg) => this.handshakeMessage(peer, msg) };
  }

  /** A handshake message to `peer` was built: write its keys. */
  handshakeMessage(peer: Peer, msg: Uint8Array): void {
    if (this.#fd < 0) return;
    const off = msg[0] === MESSAGE_INITIATION ? INIT_OFF_EPHEMERAL : RESP_OFF_EPHEMERAL;
    const pub = Buffer.from(msg.buffer, msg.byteOffset + off, KEY_SIZE).toString('base64');
    const ephemeral = this.#ephemerals.get(pub);
    const identity = peer.handshake?.identity;
    const local = identity === undefined ? undefined : this.#statics.get(Buffer.from(identity.publicKey).toString('base64'));
    if (ephemeral === undefined || local === undefined) return;
    this.#ephemerals.delete(pub);
    const b64 = (k: Uint8Array) => Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('base64');
    const lines =
      `LOCAL_STATIC_PRIVATE_KEY = ${b64(local)}\n` +
      `REMOTE_STATIC_PUBLIC_KEY = ${b64(peer.publicKey)}\n` +
      `LOCAL_EPHEMERAL_PRIVATE_KEY = ${b64(ephemeral)}\n` +
      `PRESHARED_KEY = ${b64(peer.presharedKey ?? new Uint8Array(KEY_SIZE))}\n`;
    ephemeral.fill(0);
    try {
      writeSync(this.#fd, lines);
      this.handshakes++;
    } catch (err) {
      this.#log.error(`keylog: ${this.file}: ${(err as Error).message}; no longer writing it`, { keylog: this.file });
      this.close();
    }
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
    for (const m of [this.#ephemerals, this.#statics]) {
      for (const k of m.values()) k.fill(0);
      m.clear();
    }
  }

  /** X25519 that remembers the raw private keys it makes (ephemerals) and imports (statics). */
  #recording(x: X25519): X25519 {
    const keep = (m: Map<string, Uint8Array>, max: number, raw: Uint8Array, key: PrivateKey) => {
      m.set(Buffer.from(key.publicKey).toString('base64'), Uint8Array.from(raw));
      for (const [k, v] of m) {
        if (m.size <= max) break;
        v.fill(0);
        m.delete(k);
      }
    };
    const w = Object.create(x) as { -readonly [K in keyof X25519]: X25519[K] };
    w.generate = () => {
      const raw = randomBytes(KEY_SIZE);
      const key = x.importPrivate(raw); // X25519 clamps the scalar
      keep(this.#ephemerals, MAX_EPHEMERALS, raw, key);
      raw.fill(0);
      return key;
    };
    w.importPrivate = (raw: Uint8Array) => {
      const key = x.importPrivate(raw);
      keep(this.#statics, MAX_STATICS, raw, key);
      return key;
    };
    return w;
  }
}
