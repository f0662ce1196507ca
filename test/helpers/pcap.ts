// Reads pcap files with pcap-parser and pulls UDP payloads out of Ethernet/RAW IPv6 frames.
import pcapp from 'pcap-parser';

export interface Capture {
  linkType: number;
  packets: Buffer[];
}

export function readPcap(path: string): Promise<Capture> {
  return new Promise((resolve, reject) => {
    const parser = pcapp.parse(path);
    const packets: Buffer[] = [];
    let linkType = -1;
    parser.on('globalHeader', (h: { linkLayerType: number }) => (linkType = h.linkLayerType));
    parser.on('packet', (p: { data: Buffer }) => packets.push(Buffer.from(p.data)));
    parser.on('end', () => resolve({ linkType, packets }));
    parser.on('error', reject);
  });
}

export interface UdpDatagram {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;

/** The UDP datagram in an IPv6 frame, or null (no extension headers expected here). */
export function udpOfFrame(frame: Buffer, linkType: number): UdpDatagram | null {
  let ip = 0;
  if (linkType === LINKTYPE_ETHERNET) {
    if (frame.readUInt16BE(12) !== 0x86dd) return null;
    ip = 14;
  } else if (linkType !== LINKTYPE_RAW) return null;
  if (frame[ip] >> 4 !== 6 || frame[ip + 6] !== 17) return null;
  const udp = ip + 40;
  const len = frame.readUInt16BE(udp + 4);
  return {
    src: ipv6Text(frame.subarray(ip + 8, ip + 24)),
    dst: ipv6Text(frame.subarray(ip + 24, ip + 40)),
    srcPort: frame.readUInt16BE(udp),
    dstPort: frame.readUInt16BE(udp + 2),
    payload: frame.subarray(udp + 8, udp + len),
  };
}

function ipv6Text(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}
