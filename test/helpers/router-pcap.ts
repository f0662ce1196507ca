// Reads the router fixtures of pcaps/ (scripts/capture-pcaps.sh): one pcap per scenario,
// machine and direction, link type RAW (101, the TUN), merged into capture order.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import pcapp from 'pcap-parser';

export const LINKTYPE_RAW = 101;

export interface Frame {
  /** capture time in microseconds */
  ts: number;
  data: Buffer;
}

export function readFrames(path: string): Promise<{ linkType: number; frames: Frame[] }> {
  return new Promise((resolve, reject) => {
    const parser = pcapp.parse(path);
    const frames: Frame[] = [];
    let linkType = -1;
    parser.on('globalHeader', (h: { linkLayerType: number }) => (linkType = h.linkLayerType));
    parser.on('packet', (p: { header: { timestampSeconds: number; timestampMicroseconds: number; capturedLength: number; originalLength: number }; data: Buffer }) => {
      if (p.header.capturedLength !== p.header.originalLength) {
        reject(new Error(`${path}: a truncated frame (snap length)`));
        return;
      }
      frames.push({ ts: p.header.timestampSeconds * 1e6 + p.header.timestampMicroseconds, data: Buffer.from(p.data) });
    });
    parser.on('end', () => resolve({ linkType, frames }));
    parser.on('error', reject);
  });
}

/** A packet of a scenario: `out` the machine sent it (router input), `in` the router wrote it. */
export interface Captured {
  machine: string; // the demo machine key: web1, db2…
  dir: 'out' | 'in';
  ts: number;
  data: Buffer;
  file: string;
  index: number; // in its file
}

/** The files router-NAME.MACHINE.DIR.pcap in `dir`, every packet, ordered by capture time. */
export async function loadScenario(dir: string, name: string): Promise<{ packets: Captured[]; files: string[] }> {
  const re = new RegExp(`^router-${name}\\.([a-z0-9]+)\\.(out|in)\\.pcap$`);
  const files = readdirSync(dir).filter((f) => re.test(f)).sort();
  const packets: Captured[] = [];
  for (const f of files) {
    const [, machine, d] = re.exec(f)!;
    const { linkType, frames } = await readFrames(join(dir, f));
    if (linkType !== LINKTYPE_RAW) throw new Error(`${f}: link type ${linkType}, expected RAW (101)`);
    frames.forEach((fr, index) => packets.push({ machine, dir: d as 'out' | 'in', ts: fr.ts, data: fr.data, file: f, index }));
  }
  // capture order; on a tie what was sent comes before what it caused
  packets.sort((a, b) => a.ts - b.ts || (a.dir === b.dir ? 0 : a.dir === 'out' ? -1 : 1));
  return { packets, files };
}

/** Every scenario name present in `dir`. */
export function scenarioNames(dir: string): string[] {
  const names = new Set<string>();
  for (const f of readdirSync(dir)) {
    const m = /^router-([a-z0-9-]+)\.[a-z0-9]+\.(out|in)\.pcap$/.exec(f);
    if (m) names.add(m[1]);
  }
  return [...names].sort();
}
