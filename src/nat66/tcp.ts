// TCP session tracking for the NAT: the connection states a middlebox can see (RFC 9293 §3.3.2,
// §3.5 and §3.6, watched from between the endpoints), which pick the idle timeout (RFC 5382 REQ-5:
// established ≥ 2 h 4 min, partially open or closing ≥ 4 min; RFC 7857 §2: keep the session
// 4 minutes after an RST rather than deleting it).
//
// The tracker follows SYN, SYN-ACK, ACK, FIN and RST in both directions, and FIN
// acknowledgments by sequence number: a FIN occupies the sequence number after its data (RFC
// 9293 §3.4), so an ACK at or past `seq + data + 1` acknowledges it. It keeps no sequence window:
// a forged in-window-or-not RST moves a session to CLOSE (transitory, still forwarding) but never
// deletes it, so a blind attacker gains four minutes of timeout, not a broken connection.

import type { ConnTable } from './table.ts';
import {
  F_ASSURED,
  F_FIN_IN,
  F_FIN_IN_ACKED,
  F_FIN_OUT,
  F_FIN_OUT_ACKED,
  F_REPLIED,
  F_SYNACK_IN,
  TCP_ACK,
  TCP_CLOSE,
  TCP_CLOSE_WAIT,
  TCP_ESTABLISHED,
  TCP_FIN,
  TCP_FIN_WAIT,
  TCP_LAST_ACK,
  TCP_NONE,
  TCP_RST,
  TCP_SYN,
  TCP_SYN_RECV,
  TCP_SYN_SENT,
  TCP_TIME_WAIT,
} from './constants.ts';

// Serial-number comparison of 32-bit sequence numbers (RFC 9293 §3.4, RFC 1982): a ≥ b.
function seqAtLeast(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

// May an outbound segment with these flags open a session? A SYN opens one; a SYN-ACK answers
// an inbound SYN let through by endpoint-independent filtering; a plain ACK picks up a
// connection whose session expired or predates the table (Linux's "loose" pick-up). RST or FIN
// alone never creates state.
export function tcpMayCreate(flags: number): boolean {
  if ((flags & TCP_RST) !== 0) return false;
  if ((flags & TCP_SYN) !== 0) return true;
  return (flags & TCP_ACK) !== 0 && (flags & TCP_FIN) === 0;
}

// Updates the state and flags of session s for one segment: `out` is true from the internal
// endpoint; seq/ack are its sequence and acknowledgment numbers, dataLen its payload bytes.
export function tcpTrack(
  t: ConnTable,
  s: number,
  out: boolean,
  flags: number,
  seq: number,
  ack: number,
  dataLen: number,
): void {
  let st = t.sState[s];
  let fl = t.sFlags[s];
  if (!out) fl |= F_REPLIED;

  if ((flags & TCP_RST) !== 0) {
    st = TCP_CLOSE; // §3.5.3: the connection is gone; keep the mapping transitory
  } else if ((flags & TCP_SYN) !== 0) {
    if ((flags & TCP_ACK) !== 0) {
      // SYN-ACK (§3.5, figure 6). From NONE: an outbound answer to a filtered-through SYN.
      if (st === TCP_NONE || st === TCP_SYN_SENT || st === TCP_SYN_RECV) {
        st = TCP_SYN_RECV;
        fl = out ? fl & ~F_SYNACK_IN : fl | F_SYNACK_IN;
      }
    } else if (out) {
      // A new connection, or the same four-tuple reused after TIME-WAIT or RST.
      if (st === TCP_NONE || st === TCP_TIME_WAIT || st === TCP_CLOSE) {
        st = TCP_SYN_SENT;
        fl = 0;
      }
    } else if (st === TCP_SYN_SENT) {
      st = TCP_SYN_RECV; // simultaneous open (§3.5, figure 8)
      fl &= ~F_SYNACK_IN;
    }
  } else {
    if (st === TCP_NONE && (flags & TCP_ACK) !== 0) st = TCP_ESTABLISHED; // pick-up
    // The final ACK of the handshake comes from the side that did not send the SYN-ACK.
    if (st === TCP_SYN_RECV && (flags & TCP_ACK) !== 0 && out === ((fl & F_SYNACK_IN) !== 0)) {
      st = TCP_ESTABLISHED;
    }
    if (st >= TCP_ESTABLISHED && st <= TCP_LAST_ACK) {
      // §3.6: each side's FIN, and the other side's ACK of it. ACK first: a FIN-ACK may
      // acknowledge the first FIN while carrying the second.
      if ((flags & TCP_ACK) !== 0) {
        if (out) {
          if ((fl & F_FIN_IN) !== 0 && seqAtLeast(ack, t.sFinIn[s])) fl |= F_FIN_IN_ACKED;
        } else if ((fl & F_FIN_OUT) !== 0 && seqAtLeast(ack, t.sFinOut[s])) {
          fl |= F_FIN_OUT_ACKED;
        }
      }
      if ((flags & TCP_FIN) !== 0) {
        const acked = (seq + dataLen + 1) >>> 0;
        if (out) {
          t.sFinOut[s] = acked;
          fl |= F_FIN_OUT;
        } else {
          t.sFinIn[s] = acked;
          fl |= F_FIN_IN;
        }
      }
      const finOut = (fl & F_FIN_OUT) !== 0;
      const finIn = (fl & F_FIN_IN) !== 0;
      if (finOut && finIn) {
        const both = F_FIN_OUT_ACKED | F_FIN_IN_ACKED;
        st = (fl & both) === both ? TCP_TIME_WAIT : TCP_LAST_ACK;
      } else if (finOut) {
        st = TCP_FIN_WAIT;
      } else if (finIn) {
        st = TCP_CLOSE_WAIT;
      }
    }
  }
  if (st === TCP_ESTABLISHED && (fl & F_REPLIED) !== 0) fl |= F_ASSURED;
  t.sState[s] = st;
  t.sFlags[s] = fl;
}

// Idle timeout of a TCP session: established once both sides were heard in ESTABLISHED;
// everything else (SYN sent, SYN received, a pick-up not yet answered, FIN seen, RST, TIME-WAIT)
// is transitory.
export function tcpTimeout(state: number, flags: number, establishedMs: number, transitoryMs: number): number {
  return state === TCP_ESTABLISHED && (flags & F_REPLIED) !== 0 ? establishedMs : transitoryMs;
}
