/**
 * DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766 §8): each message is preceded by its length
 * as a two-byte big-endian integer. Sans-IO helpers; the I/O layer owns the socket.
 *
 * To reply without a copy, answer into `out.subarray(TCP_LENGTH_LEN)` and call
 * `frameTcp(out, length)`.
 */
import { writeU16 } from '../bytes.ts';
import { DNS_HEADER_LEN, TCP_MESSAGE_MAX } from './wire.ts';

export const TCP_LENGTH_LEN = 2; // size of the length prefix

/** Writes the prefix for a message already at `buf[2 … 2 + len)`; returns the frame length. */
export function frameTcp(buf: Uint8Array, len: number): number {
  if (len < 0 || len > TCP_MESSAGE_MAX || TCP_LENGTH_LEN + len > buf.length) throw new RangeError('dns: bad TCP frame length');
  writeU16(buf, 0, len);
  return TCP_LENGTH_LEN + len;
}

/**
 * Splits a TCP byte stream into messages. `push` appends received bytes (false: the stream is
 * broken — a message shorter than a DNS header — and the connection should be closed); `next`
 * returns the next whole message (a view valid until the following `push`) or undefined.
 * Holds at most one partial message plus one chunk, so memory per connection stays bounded.
 */
export class TcpDeframer {
  #buf = new Uint8Array(1024);
  #start = 0;
  #end = 0;
  #broken = false;

  get broken(): boolean {
    return this.#broken;
  }

  /** Bytes held that do not yet form a whole message. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  push(chunk: Uint8Array): boolean {
    if (this.#broken) return false;
    const held = this.#end - this.#start;
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = held;
    }
    if (held + chunk.length > this.#buf.length) {
      const bigger = new Uint8Array(Math.max(held + chunk.length, this.#buf.length * 2));
      bigger.set(this.#buf.subarray(0, held));
      this.#buf = bigger;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
    return this.#check();
  }

  #check(): boolean {
    if (this.#end - this.#start >= TCP_LENGTH_LEN && ((this.#buf[this.#start] << 8) | this.#buf[this.#start + 1]) < DNS_HEADER_LEN) {
      this.#broken = true;
    }
    return !this.#broken;
  }

  next(): Uint8Array | undefined {
    if (this.#broken || this.#end - this.#start < TCP_LENGTH_LEN) return undefined;
    const len = (this.#buf[this.#start] << 8) | this.#buf[this.#start + 1];
    const from = this.#start + TCP_LENGTH_LEN;
    if (this.#end - from < len) return undefined;
    this.#start = from + len;
    this.#check();
    return this.#buf.subarray(from, from + len);
  }
}
