// One WireGuard peer: its handshake, its three keypair slots, its endpoint, the packets staged
// while a handshake is under way, and the deadlines of its timers (whitepaper §6). Deadlines
// are plain numbers polled by the device's tick (no OS timer per peer); Infinity = not armed.
import { Handshake, type Keypair, type StaticIdentity } from '../noise/index.ts';
import { Endpoint } from './endpoint.ts';

/** Bound on packets staged while waiting for a session (wireguard-go QueueStagedSize). */
export const MAX_STAGED_PACKETS = 128;

export class Peer {
  readonly publicKey: Uint8Array;
  readonly publicKeyHex: string;
  /** Null while the device has no private key. */
  handshake: Handshake | null = null;
  presharedKey: Uint8Array | null = null;

  // keypair slots (wireguard-go Keypairs): `next` is a responder's new keypair, not used for
  // sending until the initiator has sent on it; `previous` still decrypts late packets.
  previous: Keypair | null = null;
  current: Keypair | null = null;
  next: Keypair | null = null;

  endpoint: Endpoint | null = null;
  persistentKeepaliveS = 0;

  txBytes = 0;
  rxBytes = 0;
  /** Wall clock (Unix ms) of the last completed handshake; 0 = never. */
  lastHandshakeUnixMs = 0;

  /** Packets waiting for a keypair, copied with headroom for the transport header. */
  readonly staged: Array<{ buf: Uint8Array; len: number }> = [];
  /** Index-table slot of the handshake in progress (ours or the one we answer), or 0. */
  handshakeIndex = 0;

  // ---- timers (monotonic ms deadlines) ----
  retransmitHandshakeAt = Infinity;
  sendKeepaliveAt = Infinity;
  newHandshakeAt = Infinity;
  zeroKeyMaterialAt = Infinity;
  persistentKeepaliveAt = Infinity;
  handshakeAttempts = 0;
  needAnotherKeepalive = false;
  sentLastMinuteHandshake = false;
  lastSentHandshakeMs = -Infinity;
  /** Jitter added to REKEY_TIMEOUT before a data-triggered (non-retry) initiation may follow. */
  handshakeHoldoffJitterMs = 0;

  constructor(publicKey: Uint8Array) {
    this.publicKey = Uint8Array.from(publicKey);
    this.publicKeyHex = Buffer.from(this.publicKey).toString('hex');
  }

  /** (Re)creates the handshake state for the device's current identity. */
  bind(identity: StaticIdentity | null): void {
    this.handshake?.zero();
    this.handshake = identity === null ? null : new Handshake(identity, this.publicKey, this.presharedKey);
  }

  /** The endpoint follows the source of every authenticated datagram (roaming); `from` is copied. */
  updateEndpoint(from: Endpoint): void {
    if (this.endpoint === null) this.endpoint = new Endpoint();
    else if (this.endpoint.sameRemote(from) && this.endpoint.sameLocal(from)) return;
    this.endpoint.copyFrom(from);
  }

  setPresharedKey(psk: Uint8Array | null): void {
    this.presharedKey = psk === null ? null : Uint8Array.from(psk);
    this.handshake?.setPresharedKey(this.presharedKey);
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Peer { publicKey: ${Buffer.from(this.publicKey).toString('base64')}, endpoint: ${this.endpoint?.toString() ?? '(none)'}, keys: <redacted> }`;
  }
}
