// The allowed-IPs trie against a naive model (a list scanned for the longest match) over random
// inserts, removals and lookups, for IPv4 and IPv6; and the scale of `wg setconf` tests.
import test from 'ava';
import { AllowedIps, type Prefix } from '../src/wg/allowedips.ts';

function rng(seed: number) {
  return () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
}

function matchLen(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  for (let i = 0; i < bits; i++) {
    const m = 0x80 >> (i & 7);
    if ((a[i >> 3] & m) !== (b[i >> 3] & m)) return false;
  }
  return true;
}

function maskTo(addr: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(addr.length);
  for (let i = 0; i < bits; i++) if (addr[i >> 3] & (0x80 >> (i & 7))) out[i >> 3] |= 0x80 >> (i & 7);
  return out;
}

for (const family of [4, 6] as const) {
  test(`IPv${family}: 10,000 random operations agree with a naive model`, (t) => {
    const r = rng(family * 7919);
    const size = family === 4 ? 4 : 16;
    const maxBits = size * 8;
    const table = new AllowedIps<string>();
    const model = new Map<string, { p: Prefix; value: string }>();
    const keyOf = (p: Prefix) => `${Buffer.from(p.addr).toString('hex')}/${p.prefixLen}`;
    // addresses drawn from a few clusters so prefixes nest and overlap
    const bases = Array.from({ length: 6 }, () => Uint8Array.from({ length: size }, () => Math.floor(r() * 256)));
    const randomAddr = () => {
      const a = Uint8Array.from(bases[Math.floor(r() * bases.length)]);
      const flips = Math.floor(r() * 4);
      for (let i = 0; i < flips; i++) a[Math.floor(r() * size)] ^= 1 << Math.floor(r() * 8);
      return a;
    };
    const peers = ['a', 'b', 'c', 'd', 'e'];
    for (let i = 0; i < 10_000; i++) {
      const op = r();
      if (op < 0.45) {
        const bits = Math.floor(r() * (maxBits + 1));
        const p: Prefix = { family, addr: maskTo(randomAddr(), bits), prefixLen: bits };
        const value = peers[Math.floor(r() * peers.length)];
        table.insert(p, value);
        model.set(keyOf(p), { p, value });
      } else if (op < 0.6 && model.size > 0) {
        const entries = [...model.values()];
        const { p, value } = entries[Math.floor(r() * entries.length)];
        const byValue = r() < 0.8 ? value : peers[Math.floor(r() * peers.length)];
        const removed = table.remove(p, byValue);
        t.is(removed, byValue === value, `remove ${keyOf(p)}`);
        if (removed) model.delete(keyOf(p));
      } else if (op < 0.62) {
        const value = peers[Math.floor(r() * peers.length)];
        table.removeValue(value);
        for (const [k, e] of model) if (e.value === value) model.delete(k);
      } else {
        const addr = randomAddr();
        let best: { p: Prefix; value: string } | null = null;
        for (const e of model.values()) if (matchLen(e.p.addr, addr, e.p.prefixLen) && (best === null || e.p.prefixLen > best.p.prefixLen)) best = e;
        const got = table.lookup(family, addr, 0);
        if (got !== (best?.value ?? null)) return t.fail(`op ${i}: lookup ${Buffer.from(addr).toString('hex')} got ${got} want ${best?.value}`);
      }
    }
    // the per-peer listings are exactly the model's
    for (const v of peers) {
      const listed = table.prefixesOf(v).map(keyOf).sort();
      const want = [...model.values()].filter((e) => e.value === v).map((e) => keyOf(e.p)).sort();
      t.deepEqual(listed, want, `prefixes of ${v}`);
      t.is(table.countOf(v), want.length);
    }
  });
}

test('130,560 prefixes for one peer: insert, look up, list and remove', (t) => {
  const table = new AllowedIps<number>();
  const t0 = performance.now();
  for (let i = 0; i < 130_560; i++) {
    const addr = new Uint8Array(16);
    addr[0] = 0xfd;
    addr[1] = i >> 16;
    addr[2] = i >> 8;
    addr[3] = i;
    table.insert({ family: 6, addr, prefixLen: 32 }, 1);
  }
  const ms = performance.now() - t0;
  t.is(table.countOf(1), 130_560);
  t.is(table.prefixesOf(1).length, 130_560);
  const probe = new Uint8Array(16);
  probe[0] = 0xfd;
  probe[3] = 77;
  probe[15] = 9;
  t.is(table.lookup(6, probe, 0), 1);
  probe[0] = 0xfe;
  t.is(table.lookup(6, probe, 0), null);
  table.removeValue(1);
  t.is(table.countOf(1), 0);
  probe[0] = 0xfd;
  t.is(table.lookup(6, probe, 0), null);
  t.log(`inserted 130,560 prefixes in ${ms.toFixed(0)} ms`);
});

test('a more specific prefix on another peer takes its traffic; 0.0.0.0/0 catches the rest', (t) => {
  const table = new AllowedIps<string>();
  table.insert({ family: 4, addr: new Uint8Array([0, 0, 0, 0]), prefixLen: 0 }, 'default');
  table.insert({ family: 4, addr: new Uint8Array([10, 0, 0, 0]), prefixLen: 8 }, 'ten');
  table.insert({ family: 4, addr: new Uint8Array([10, 1, 2, 3]), prefixLen: 32 }, 'host');
  t.is(table.lookup(4, new Uint8Array([10, 1, 2, 3]), 0), 'host');
  t.is(table.lookup(4, new Uint8Array([10, 1, 2, 4]), 0), 'ten');
  t.is(table.lookup(4, new Uint8Array([192, 0, 2, 1]), 0), 'default');
  // moving a prefix to another peer takes it from the first
  table.insert({ family: 4, addr: new Uint8Array([10, 0, 0, 0]), prefixLen: 8 }, 'host');
  t.is(table.countOf('ten'), 0);
  t.is(table.countOf('host'), 2);
  t.throws(() => table.insert({ family: 4, addr: new Uint8Array(4), prefixLen: 33 }, 'x'), { message: /prefix length/ });
});
