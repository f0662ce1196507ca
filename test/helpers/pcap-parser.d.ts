declare module 'pcap-parser' {
  import type { EventEmitter } from 'node:events';
  import type { Readable } from 'node:stream';
  export interface PcapPacket {
    header: { timestampSeconds: number; timestampMicroseconds: number; capturedLength: number; originalLength: number };
    data: Buffer;
  }
  export function parse(input: string | Readable): EventEmitter;
  const pcapp: { parse: typeof parse };
  export default pcapp;
}
