// The cross-platform configuration protocol (https://www.wireguard.com/xplatform/), sans-IO.
//
// A connection carries requests one after another, each a run of `key=value\n` lines:
//   get=1\n\n                  → the device state as lines, then errno=0\n\n
//   set=1\n<lines>\n           → errno=N\n\n (0, or a negative errno)
//
// wireguard-go (device/uapi.go IpcSetOperation) applies a set line by line as it reads, so a bad
// line in the middle leaves the lines before it applied. Here the whole request is read and
// validated first (UapiParser), and the device gets one UapiSet to apply all or nothing.
//
// Reply codes follow wireguard-go:
//   -EPROTO  a set line without "=", or a first line that is neither get=1 nor set=1
//            (wireguard-go closes without a reply there; we reply, then close);
//   -EINVAL  an unknown key (device key after public_key, peer key before it, anything else), a
//            value that does not parse, replace_peers/remove/update_only/replace_allowed_ips
//            other than "true", protocol_version other than 1, a byte other than "\n" after get=1;
//   -EIO     a line longer than UAPI_MAX_LINE_BYTES (wireguard-go: bufio.Scanner's ErrTooLong);
//   -E2BIG   a set of more than UAPI_MAX_SET_LINES lines (our bound; wireguard-go has none).
// After any of these the parser is closed: a set is first read to its blank line (so the
// client, still writing, gets its reply rather than EPIPE), then the error is returned, and the
// caller replies and closes the connection, as wireguard-go ends up doing.
import { keyToHex } from '../noise/index.ts';
import type { Cidr, UapiDeviceState, UapiPeerChange, UapiSet } from './types.ts';
import {
  KEY_LEN,
  UAPI_E2BIG,
  UAPI_EINVAL,
  UAPI_EIO,
  UAPI_EPROTO,
  UAPI_MAX_LINE_BYTES,
  UAPI_MAX_SET_LINES,
} from './constants.ts';
import { formatCidr, formatEndpoint, parseCidr, parseEndpoint, parseHexKey, parseUint } from './text.ts';

export type UapiRequest =
  | { kind: 'get' }
  | { kind: 'stats' } // sixpn's own: `stats=1\n\n` → counters as key=value lines (wg never sends it)
  | { kind: 'set'; set: UapiSet }
  /** Reply `errno=N`, then close the connection: the parser reads nothing more. */
  | { kind: 'error'; errno: number };

const GET: UapiRequest = Object.freeze({ kind: 'get' });
const STATS: UapiRequest = Object.freeze({ kind: 'stats' });

const ST_OP = 0; // expecting get=1 or set=1
const ST_GET_END = 1; // after get=1\n, expecting the "\n" that ends it
const ST_SET = 2; // inside a set request (draining to its blank line once errno ≠ 0)
const ST_CLOSED = 3;

const LINE_OK = 0;
const LINE_MORE = 1; // no complete line buffered yet
const LINE_LONG = 2; // the line exceeds the limit; the rest of it is skipped

const NL = 0x0a;

/**
 * A streaming request parser: feed() the bytes as they arrive, then call next() until it returns
 * null. next() returns one request at a time, so a caller whose output is congested can stop
 * pulling (the unread bytes stay queued here, by reference).
 */
export class UapiParser {
  private readonly chunks: Buffer[] = [];
  private off = 0; // read position in chunks[0]
  private readonly carry = Buffer.allocUnsafe(UAPI_MAX_LINE_BYTES); // a line split across chunks
  private carryLen = 0;
  private skipping = false; // inside an over-long line: discard up to its newline
  private line = '';
  private state = ST_OP;

  // The set request being read.
  private set: UapiSet | null = null;
  private errno = 0;
  private lines = 0;
  private peer: UapiPeerChange | null = null;
  private ignored = false; // after remove=true: later lines are checked, not recorded
  // "-cidr" lines that follow adds in this section: prefix → how many adds preceded the last one.
  private removedAt: Map<string, number> | null = null;

  feed(chunk: Uint8Array): void {
    if (this.state === ST_CLOSED || chunk.length === 0) return;
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
  }

  /** True once an error has been returned: the connection is to be closed. */
  get closed(): boolean {
    return this.state === ST_CLOSED;
  }

  /** True while a request has begun and not ended (for telling a clean EOF from a cut one). */
  get midRequest(): boolean {
    return this.state !== ST_OP || this.carryLen > 0 || this.skipping;
  }

  /** The request (get or stats) whose closing empty line is awaited in ST_GET_END. */
  private readOnly: UapiRequest = GET;

  next(): UapiRequest | null {
    for (;;) {
      switch (this.state) {
        case ST_OP: {
          const r = this.readLine();
          if (r === LINE_MORE) return null;
          if (r === LINE_OK && (this.line === 'get=1' || this.line === 'stats=1')) {
            this.readOnly = this.line === 'get=1' ? GET : STATS;
            this.state = ST_GET_END;
          } else if (r === LINE_OK && this.line === 'set=1') {
            this.beginSet();
            this.state = ST_SET;
          } else {
            return this.close(UAPI_EPROTO);
          }
          break;
        }
        case ST_GET_END: {
          // wireguard-go reads exactly one byte here.
          if (this.chunks.length === 0) return null;
          const b = this.chunks[0][this.off];
          this.advance(1);
          if (b !== NL) return this.close(UAPI_EINVAL);
          this.state = ST_OP;
          return this.readOnly;
        }
        case ST_SET: {
          const r = this.readLine();
          if (r === LINE_MORE) return null;
          if (r === LINE_LONG) {
            if (this.errno === 0) this.errno = UAPI_EIO;
            break;
          }
          if (this.line.length === 0) return this.endSet();
          if (this.errno !== 0) break; // draining
          if (++this.lines > UAPI_MAX_SET_LINES) {
            this.fail(UAPI_E2BIG);
            break;
          }
          this.setLine(this.line);
          break;
        }
        default:
          return null;
      }
    }
  }

  // ---- lines ----

  private advance(n: number): void {
    this.off += n;
    if (this.off === this.chunks[0].length) {
      this.chunks.shift();
      this.off = 0;
    }
  }

  private readLine(): number {
    while (this.chunks.length > 0) {
      const c = this.chunks[0];
      const nl = c.indexOf(NL, this.off);
      if (this.skipping) {
        if (nl < 0) {
          this.advance(c.length - this.off);
        } else {
          this.skipping = false;
          this.advance(nl + 1 - this.off);
        }
        continue;
      }
      const n = (nl < 0 ? c.length : nl) - this.off;
      if (this.carryLen + n > UAPI_MAX_LINE_BYTES) {
        this.carryLen = 0;
        if (nl < 0) {
          this.skipping = true;
          this.advance(n);
        } else {
          this.advance(n + 1);
        }
        return LINE_LONG;
      }
      if (nl < 0) {
        c.copy(this.carry, this.carryLen, this.off);
        this.carryLen += n;
        this.advance(n);
        continue;
      }
      if (this.carryLen === 0) {
        this.line = c.toString('latin1', this.off, nl);
      } else {
        c.copy(this.carry, this.carryLen, this.off, nl);
        this.line = this.carry.toString('latin1', 0, this.carryLen + n);
        this.carryLen = 0;
      }
      this.advance(n + 1);
      return LINE_OK;
    }
    return LINE_MORE;
  }

  private close(errno: number): UapiRequest {
    this.state = ST_CLOSED;
    this.chunks.length = 0;
    this.set = null;
    this.peer = null;
    this.removedAt = null;
    return { kind: 'error', errno };
  }

  // ---- set ----

  private beginSet(): void {
    this.set = { replacePeers: false, peers: [] };
    this.errno = 0;
    this.lines = 0;
    this.peer = null;
  }

  private endSet(): UapiRequest {
    if (this.errno !== 0) return this.close(this.errno);
    this.endPeer();
    const set = this.set!;
    this.set = null;
    this.state = ST_OP;
    return { kind: 'set', set };
  }

  private fail(errno: number): void {
    this.errno = errno;
    this.set = null;
    this.peer = null;
    this.removedAt = null;
  }

  // The device applies a section's removals before its adds (types.ts), so an add followed by a
  // removal of the same prefix is withdrawn here: line order keeps its meaning.
  private endPeer(): void {
    const p = this.peer;
    const removedAt = this.removedAt;
    if (p !== null && removedAt !== null) {
      p.allowedIpsAdd = p.allowedIpsAdd.filter((c, i) => {
        const r = removedAt.get(cidrKey(c));
        return r === undefined || r <= i;
      });
    }
    this.peer = null;
    this.removedAt = null;
  }

  private setLine(line: string): void {
    const eq = line.indexOf('=');
    if (eq < 0) return this.fail(UAPI_EPROTO);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'public_key') {
      const publicKey = parseHexKey(value);
      if (publicKey === null) return this.fail(UAPI_EINVAL);
      this.endPeer();
      this.peer = {
        publicKey,
        remove: false,
        updateOnly: false,
        replaceAllowedIps: false,
        allowedIpsAdd: [],
        allowedIpsRemove: [],
      };
      this.ignored = false;
      this.set!.peers.push(this.peer);
      return;
    }
    const ok = this.peer === null ? this.deviceLine(key, value) : this.peerLine(this.peer, key, value);
    if (!ok) this.fail(UAPI_EINVAL);
  }

  // wireguard-go handleDeviceLine.
  private deviceLine(key: string, value: string): boolean {
    const set = this.set!;
    switch (key) {
      case 'private_key': {
        const k = parseHexKey(value);
        if (k === null) return false;
        set.privateKey = isZeroKey(k) ? null : k; // all zeros clears it (FromMaybeZeroHex)
        return true;
      }
      case 'listen_port': {
        const port = parseUint(value, 0xffff);
        if (port < 0) return false;
        set.listenPort = port;
        return true;
      }
      case 'fwmark': {
        const mark = parseUint(value, 0xffffffff);
        if (mark < 0) return false;
        set.fwmark = mark;
        return true;
      }
      case 'replace_peers':
        if (value !== 'true') return false;
        set.replacePeers = true;
        return true;
      default:
        return false;
    }
  }

  // wireguard-go handlePeerLine.
  private peerLine(p: UapiPeerChange, key: string, value: string): boolean {
    switch (key) {
      case 'allowed_ip': {
        const remove = value.charCodeAt(0) === 0x2d; /* - */
        const c = parseCidr(value, remove ? 1 : 0);
        if (c === null) return false;
        if (this.ignored) return true;
        if (!remove) {
          p.allowedIpsAdd.push(c);
        } else {
          if (p.allowedIpsAdd.length > 0) (this.removedAt ??= new Map()).set(cidrKey(c), p.allowedIpsAdd.length);
          p.allowedIpsRemove.push(c);
        }
        return true;
      }
      case 'update_only':
        if (value !== 'true') return false;
        if (!this.ignored) p.updateOnly = true;
        return true;
      case 'remove':
        if (value !== 'true') return false;
        // What came before in this section is moot, what comes after is ignored.
        p.remove = true;
        p.updateOnly = false; // a removal is one (whether the peer exists or not: no-op then)
        delete p.presharedKey;
        delete p.endpoint;
        delete p.persistentKeepaliveS;
        p.replaceAllowedIps = false;
        p.allowedIpsAdd = [];
        p.allowedIpsRemove = [];
        this.removedAt = null;
        this.ignored = true;
        return true;
      case 'preshared_key': {
        const k = parseHexKey(value);
        if (k === null) return false;
        if (!this.ignored) p.presharedKey = isZeroKey(k) ? null : k;
        return true;
      }
      case 'endpoint': {
        const e = parseEndpoint(value);
        if (e === null) return false;
        if (!this.ignored) p.endpoint = e;
        return true;
      }
      case 'persistent_keepalive_interval': {
        const s = parseUint(value, 0xffff);
        if (s < 0) return false;
        if (!this.ignored) p.persistentKeepaliveS = s;
        return true;
      }
      case 'replace_allowed_ips':
        if (value !== 'true') return false;
        if (this.ignored) return true;
        // Drops what this section added or removed so far, as RemoveByPeer would.
        p.replaceAllowedIps = true;
        p.allowedIpsAdd = [];
        p.allowedIpsRemove = [];
        this.removedAt = null;
        return true;
      case 'protocol_version':
        return value === '1';
      default:
        return false;
    }
  }
}

function isZeroKey(k: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < KEY_LEN; i++) acc |= k[i];
  return acc === 0;
}

function cidrKey(c: Cidr): string {
  return String.fromCharCode(c.prefixLen, ...c.addr);
}

// ---- replies ----

const ZERO_KEY_HEX = '0'.repeat(64);
const REPLY_CHUNK_CHARS = 1 << 16;

export function formatErrno(errno: number): string {
  return `errno=${errno}\n\n`;
}

function count(n: number): string {
  return n > 0 ? String(Math.floor(n)) : '0';
}

/**
 * The reply to get=1, in wireguard-go's order (IpcGetOperation), as ~64 KB strings (latin1) to
 * write one after another: a 130,560-prefix peer is ~5 MB and is never built by appending to one
 * ever-longer string.
 * wireguard-go prints preshared_key for every peer (64 zeros when none) and listen_port only when
 * a port is bound; `wg` reads a missing listen_port as 0.
 */
export function formatGet(state: UapiDeviceState): string[] {
  const out: string[] = [];
  let s = '';
  if (state.privateKey !== null && !isZeroKey(state.privateKey)) s += `private_key=${keyToHex(state.privateKey)}\n`;
  if (state.listenPort !== 0) s += `listen_port=${state.listenPort}\n`;
  if (state.fwmark !== 0) s += `fwmark=${state.fwmark}\n`;
  for (const p of state.peers) {
    s += `public_key=${keyToHex(p.publicKey)}\n`;
    s += `preshared_key=${p.presharedKey === null ? ZERO_KEY_HEX : keyToHex(p.presharedKey)}\n`;
    s += 'protocol_version=1\n';
    if (p.endpoint !== null && p.endpoint.indexOf('\n') < 0) s += `endpoint=${p.endpoint}\n`;
    // wg shows "latest handshake: N seconds ago" from these: Unix time, not time since boot.
    const ms = p.lastHandshakeUnixMs > 0 ? p.lastHandshakeUnixMs : 0;
    const sec = Math.floor(ms / 1000);
    const nsec = Math.min(999_999_999, Math.floor((ms - sec * 1000) * 1e6));
    s += `last_handshake_time_sec=${sec}\nlast_handshake_time_nsec=${nsec}\n`;
    s += `tx_bytes=${count(p.txBytes)}\nrx_bytes=${count(p.rxBytes)}\n`;
    s += `persistent_keepalive_interval=${count(p.persistentKeepaliveS)}\n`;
    const ips = p.allowedIps;
    for (let i = 0; i < ips.length; i++) {
      s += `allowed_ip=${formatCidr(ips[i])}\n`;
      if (s.length >= REPLY_CHUNK_CHARS) {
        out.push(s);
        s = '';
      }
    }
    if (s.length >= REPLY_CHUNK_CHARS) {
      out.push(s);
      s = '';
    }
  }
  out.push(s + 'errno=0\n\n');
  return out;
}

/**
 * A set request as `wg` writes one (wireguard-tools ipc-uapi.h userspace_set_device), for tests,
 * tools and config loaders. formatSet then UapiParser gives back an equal UapiSet.
 */
export function formatSet(set: UapiSet): string[] {
  const out: string[] = [];
  let s = 'set=1\n';
  if (set.privateKey !== undefined) s += `private_key=${set.privateKey === null ? ZERO_KEY_HEX : keyToHex(set.privateKey)}\n`;
  if (set.listenPort !== undefined) s += `listen_port=${set.listenPort}\n`;
  if (set.fwmark !== undefined) s += `fwmark=${set.fwmark}\n`;
  if (set.replacePeers) s += 'replace_peers=true\n';
  for (const p of set.peers) {
    s += `public_key=${keyToHex(p.publicKey)}\n`;
    if (p.remove) {
      s += 'remove=true\n';
      continue;
    }
    if (p.updateOnly) s += 'update_only=true\n';
    if (p.presharedKey !== undefined) s += `preshared_key=${p.presharedKey === null ? ZERO_KEY_HEX : keyToHex(p.presharedKey)}\n`;
    if (p.endpoint !== undefined) s += `endpoint=${formatEndpoint(p.endpoint)}\n`;
    if (p.persistentKeepaliveS !== undefined) s += `persistent_keepalive_interval=${p.persistentKeepaliveS}\n`;
    if (p.replaceAllowedIps) s += 'replace_allowed_ips=true\n';
    for (const c of p.allowedIpsRemove) s += `allowed_ip=-${formatCidr(c)}\n`;
    for (const c of p.allowedIpsAdd) {
      s += `allowed_ip=${formatCidr(c)}\n`;
      if (s.length >= REPLY_CHUNK_CHARS) {
        out.push(s);
        s = '';
      }
    }
  }
  out.push(s + '\n');
  return out;
}
