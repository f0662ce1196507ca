// The SNAT66 tables' invariants (counts, hash chains, port ownership, the expiry wheel), checked
// by test/nat66-fuzz.test.ts and the nat66 fuzz target (fuzz/targets/nat66.ts).
import type { Nat66 } from '../../src/nat66/index.ts';

// Checks the tables' invariants; returns a description of the first violation, or ''.
export function invariants(n: Nat66): string {
  const t = n.table;
  let sessions = 0;
  let refs = 0;
  const perMachine = new Map<number, number>();
  for (let s = 0; s < t.sCap; s++) {
    const m = t.sMap[s];
    if (m < 0) continue;
    sessions++;
    if (t.mRefs[m] === 0) return `session ${s} on free mapping ${m}`;
    perMachine.set(t.mMachine[m], (perMachine.get(t.mMachine[m]) ?? 0) + 1);
    if (t.findSession(m, t.sRemote, 16 * s, t.sRport[s]) !== s) return `session ${s} not found by its key`;
  }
  if (sessions !== t.sCount) return `sCount ${t.sCount} != ${sessions}`;
  for (const [m, c] of perMachine) if (t.machineCount[m] !== c) return `machine ${m}: ${t.machineCount[m]} != ${c}`;
  let mappings = 0;
  for (let m = 0; m < t.mCap; m++) {
    if (t.mRefs[m] === 0) continue;
    mappings++;
    refs += t.mRefs[m];
    if (t.ownerOf(t.mEgress[m], t.mPi[m], t.mExt[m]) !== m) return `mapping ${m} does not own its port`;
    if (t.findMapping(t.mEgress[m], t.mPi[m], t.mAddr, 16 * m, t.mPort[m]) !== m) return `mapping ${m} not found`;
  }
  if (mappings !== t.mCount) return `mCount ${t.mCount} != ${mappings}`;
  if (refs !== sessions) return `refs ${refs} != sessions ${sessions}`;
  let owned = 0;
  for (const owner of t.portOwner) for (let p = 0; p < owner.length; p++) if (owner[p] !== 0) owned++;
  if (owned !== mappings) return `ports owned ${owned} != mappings ${mappings}`;
  let used = 0;
  for (let i = 0; i < t.portsUsedLow.length; i++) used += t.portsUsedLow[i] + t.portsUsedHigh[i];
  if (used !== mappings) return `port counters ${used} != mappings ${mappings}`;
  let linked = 0;
  for (let w = 0; w < t.wheel.length; w++) {
    for (let s = t.wheel[w], prev = -1; s >= 0; prev = s, s = t.wNext[s]) {
      if (t.wPrev[s] !== prev) return `wheel slot ${w}: bad back link at ${s}`;
      if ((Math.floor(t.sExpire[s] / t.granularity) & (t.wheel.length - 1)) !== w) return `session ${s} in wrong slot`;
      linked++;
    }
  }
  if (linked !== sessions) return `wheel holds ${linked} != ${sessions}`;
  return '';
}
