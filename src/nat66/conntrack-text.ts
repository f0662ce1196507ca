// Introspection for `sixpn status` and `sixpn conntrack`: entries printed the way `conntrack -L`
// prints them (original tuple, then reply tuple), one string per live session:
//   ipv6 udp 17 295 src=fdaa:… dst=2001:db8::1 sport=5000 dport=53 src=2001:db8::1 dst=2a09:… sport=53 dport=5000 [ASSURED] machine=3
//   ipv6 tcp 6 7439 ESTABLISHED src=… dst=… sport=… dport=… src=… dst=… sport=… dport=… [ASSURED] machine=3
//   ipv6 icmpv6 58 59 src=… dst=… type=128 code=0 id=7 [UNREPLIED] src=… dst=… type=129 code=0 id=7 machine=3
// The number after the protocol is the seconds left. Builds strings: not for the packet path.

import { formatAddress } from '../ipv6/index.ts';
import { F_ASSURED, F_REPLIED, PI_ICMP, PI_TCP, TCP_STATE_NAMES } from './constants.ts';
import type { ConnTable } from './table.ts';

const PROTO_TEXT = ['tcp 6', 'udp 17', 'icmpv6 58'];

// The live sessions of table `t` (expired ones awaiting a tick are left out), in table order;
// `egressAddr` holds the egress addresses, 16 bytes per egress id.
export function conntrackLines(t: ConnTable, egressAddr: Uint8Array, nowMs: number): string[] {
  const out: string[] = [];
  for (let s = 0; s < t.sCap; s++) {
    const m = t.sMap[s];
    if (m < 0 || t.sExpire[s] <= nowMs) continue;
    const pi = t.mPi[m];
    const internal = formatAddress(t.mAddr, 16 * m);
    const remote = formatAddress(t.sRemote, 16 * s);
    const external = formatAddress(egressAddr, 16 * t.mEgress[m]);
    const flags = t.sFlags[s];
    let line = `ipv6 ${PROTO_TEXT[pi]} ${Math.floor((t.sExpire[s] - nowMs) / 1000)}`;
    if (pi === PI_TCP) line += ` ${TCP_STATE_NAMES[t.sState[s]] || 'NONE'}`;
    if (pi === PI_ICMP) {
      line += ` src=${internal} dst=${remote} type=128 code=0 id=${t.mPort[m]}`;
      if ((flags & F_REPLIED) === 0) line += ' [UNREPLIED]';
      line += ` src=${remote} dst=${external} type=129 code=0 id=${t.mExt[m]}`;
    } else {
      line += ` src=${internal} dst=${remote} sport=${t.mPort[m]} dport=${t.sRport[s]}`;
      if ((flags & F_REPLIED) === 0) line += ' [UNREPLIED]';
      line += ` src=${remote} dst=${external} sport=${t.sRport[s]} dport=${t.mExt[m]}`;
    }
    if ((flags & F_ASSURED) !== 0) line += ' [ASSURED]';
    out.push(`${line} machine=${t.mMachine[m]}`);
  }
  return out;
}
