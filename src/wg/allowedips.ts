// Cryptokey routing table (whitepaper §2): allowed IPs → peer, longest prefix wins. Used both
// to pick the peer for an outgoing packet (by destination) and to check that an incoming
// packet's inner source belongs to the peer that sent it.
//
// One path-compressed binary trie per family (as wireguard-go's allowedips.go): a node holds a
// prefix (as 32-bit big-endian words) and its length, an optional value, and two children
// chosen by the bit that follows the prefix. Interior nodes without a value only exist where
// two prefixes diverge, so the trie has at most 2n - 1 nodes. Each value's nodes are also kept
// in a set, so removing a peer or listing its prefixes does not walk the whole trie.

class Node<T> {
  readonly key: Uint32Array; // prefix bits, host bits zero
  readonly bits: number;
  value: T | null = null;
  readonly child: [Node<T> | null, Node<T> | null] = [null, null];
  parent: Node<T> | null = null;
  constructor(key: Uint32Array, bits: number) {
    this.key = key;
    this.bits = bits;
  }
}

/** Bit `i` (0 = most significant) of a big-endian word array. */
function bitAt(words: Uint32Array, i: number): 0 | 1 {
  return ((words[i >>> 5] >>> (31 - (i & 31))) & 1) as 0 | 1;
}

/** Number of leading bits a and b share, up to `limit`. */
function commonBits(a: Uint32Array, b: Uint32Array, limit: number): number {
  const words = (limit + 31) >>> 5;
  for (let w = 0; w < words; w++) {
    const x = (a[w] ^ b[w]) >>> 0;
    if (x !== 0) return Math.min(limit, w * 32 + Math.clz32(x));
  }
  return limit;
}

/** True when the first `bits` bits of `addr` equal the node's prefix. */
function matches(key: Uint32Array, addr: Uint32Array, bits: number): boolean {
  const full = bits >>> 5;
  for (let w = 0; w < full; w++) if (key[w] !== addr[w]) return false;
  const rest = bits & 31;
  if (rest === 0) return true;
  const mask = (0xffffffff << (32 - rest)) >>> 0;
  return ((addr[full] & mask) >>> 0) === key[full];
}

function masked(words: Uint32Array, bits: number): Uint32Array {
  const out = new Uint32Array(words.length);
  const full = bits >>> 5;
  for (let w = 0; w < full; w++) out[w] = words[w];
  const rest = bits & 31;
  if (rest !== 0 && full < words.length) out[full] = (words[full] & (0xffffffff << (32 - rest))) >>> 0;
  return out;
}

function wordsOf(bytes: Uint8Array, off: number, n: number, out: Uint32Array): Uint32Array {
  for (let w = 0; w < n; w++) {
    const o = off + w * 4;
    out[w] = ((bytes[o] << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3]) >>> 0;
  }
  return out;
}

class Trie<T> {
  root: Node<T> | null = null;
  readonly maxBits: number;
  constructor(maxBits: number) {
    this.maxBits = maxBits;
  }

  insert(key: Uint32Array, bits: number, value: T): { node: Node<T>; previous: T | null } {
    const k = masked(key, bits);
    if (this.root === null) {
      this.root = new Node<T>(k, bits);
      this.root.value = value;
      return { node: this.root, previous: null };
    }
    let node = this.root;
    for (;;) {
      const common = commonBits(node.key, k, Math.min(node.bits, bits));
      if (common === node.bits && common === bits) {
        const previous = node.value;
        node.value = value;
        return { node, previous };
      }
      if (common === node.bits) {
        // node's prefix contains the new one: descend
        const b = bitAt(k, node.bits);
        const next = node.child[b];
        if (next === null) {
          const leaf = new Node<T>(k, bits);
          leaf.value = value;
          this.attach(node, b, leaf);
          return { node: leaf, previous: null };
        }
        node = next;
        continue;
      }
      const fresh = new Node<T>(k, bits);
      fresh.value = value;
      if (common === bits) {
        // the new prefix contains node: it takes node's place, node hangs below it
        this.replace(node, fresh);
        this.attach(fresh, bitAt(node.key, bits), node);
        return { node: fresh, previous: null };
      }
      // they diverge at `common`: a valueless branch node holds both
      const branch = new Node<T>(masked(k, common), common);
      this.replace(node, branch);
      this.attach(branch, bitAt(node.key, common), node);
      this.attach(branch, bitAt(k, common), fresh);
      return { node: fresh, previous: null };
    }
  }

  find(key: Uint32Array, bits: number): Node<T> | null {
    let node = this.root;
    while (node !== null && node.bits <= bits && matches(node.key, key, node.bits)) {
      if (node.bits === bits) return node;
      node = node.child[bitAt(key, node.bits)];
    }
    return null;
  }

  lookup(addr: Uint32Array): T | null {
    let best: T | null = null;
    let node = this.root;
    while (node !== null && matches(node.key, addr, node.bits)) {
      if (node.value !== null) best = node.value;
      if (node.bits === this.maxBits) break;
      node = node.child[bitAt(addr, node.bits)];
    }
    return best;
  }

  /** Clears a node's value and removes nodes that no longer carry anything. */
  clear(node: Node<T>): void {
    node.value = null;
    let n: Node<T> | null = node;
    while (n !== null && n.value === null) {
      const c0 = n.child[0];
      const c1 = n.child[1];
      if (c0 !== null && c1 !== null) return; // still a branch point
      const only = c0 ?? c1;
      const parent: Node<T> | null = n.parent;
      if (only !== null) {
        this.replace(n, only); // pass-through node: splice it out
        return;
      }
      // a leaf without value: drop it, then look at its parent
      if (parent === null) this.root = null;
      else parent.child[parent.child[0] === n ? 0 : 1] = null;
      n.parent = null;
      n = parent;
    }
  }

  private attach(parent: Node<T>, b: 0 | 1, child: Node<T>): void {
    parent.child[b] = child;
    child.parent = parent;
  }

  private replace(old: Node<T>, by: Node<T>): void {
    const parent = old.parent;
    if (parent === null) this.root = by;
    else parent.child[parent.child[0] === old ? 0 : 1] = by;
    by.parent = parent;
    old.parent = null;
  }
}

export interface Prefix {
  family: 4 | 6;
  addr: Uint8Array; // 4 or 16 bytes
  prefixLen: number;
}

/** The allowed-IPs table of a WireGuard device, mapping prefixes to values (peers). */
export class AllowedIps<T> {
  private readonly v4 = new Trie<T>(32);
  private readonly v6 = new Trie<T>(128);
  private readonly byValue = new Map<T, Set<Node<T>>>();
  private readonly scratch4 = new Uint32Array(1);
  private readonly scratch6 = new Uint32Array(4);

  /** Sets prefix → value (a prefix belongs to one value; inserting it again moves it). */
  insert(p: Prefix, value: T): void {
    const { trie, words } = this.keyOf(p);
    const { node, previous } = trie.insert(words, p.prefixLen, value);
    if (previous !== null && previous !== value) this.byValue.get(previous)?.delete(node);
    let set = this.byValue.get(value);
    if (set === undefined) this.byValue.set(value, (set = new Set()));
    set.add(node);
  }

  /** Removes the prefix if it belongs to `value`; true when something was removed. */
  remove(p: Prefix, value: T): boolean {
    const { trie, words } = this.keyOf(p);
    const node = trie.find(words, p.prefixLen);
    if (node === null || node.value !== value) return false;
    this.byValue.get(value)?.delete(node);
    trie.clear(node);
    return true;
  }

  /** Removes every prefix of `value`. */
  removeValue(value: T): void {
    const set = this.byValue.get(value);
    if (set === undefined) return;
    for (const node of set) (node.key.length === 1 ? this.v4 : this.v6).clear(node);
    this.byValue.delete(value);
  }

  /** The value whose prefix is the longest match for the address at buf[off..] (4 or 16 bytes). */
  lookup(family: 4 | 6, buf: Uint8Array, off: number): T | null {
    return family === 4 ? this.v4.lookup(wordsOf(buf, off, 1, this.scratch4)) : this.v6.lookup(wordsOf(buf, off, 4, this.scratch6));
  }

  /** The prefixes of `value`. */
  prefixesOf(value: T): Prefix[] {
    const out: Prefix[] = [];
    for (const node of this.byValue.get(value) ?? []) {
      const family = node.key.length === 1 ? 4 : 6;
      const addr = new Uint8Array(family === 4 ? 4 : 16);
      for (let w = 0; w < node.key.length; w++) {
        addr[w * 4] = node.key[w] >>> 24;
        addr[w * 4 + 1] = node.key[w] >>> 16;
        addr[w * 4 + 2] = node.key[w] >>> 8;
        addr[w * 4 + 3] = node.key[w];
      }
      out.push({ family, addr, prefixLen: node.bits });
    }
    return out;
  }

  countOf(value: T): number {
    return this.byValue.get(value)?.size ?? 0;
  }

  private keyOf(p: Prefix): { trie: Trie<T>; words: Uint32Array } {
    const max = p.family === 4 ? 32 : 128;
    if (p.addr.length !== max / 8 || !Number.isInteger(p.prefixLen) || p.prefixLen < 0 || p.prefixLen > max) {
      throw new RangeError(`invalid IPv${p.family} prefix length ${p.prefixLen}`);
    }
    return { trie: p.family === 4 ? this.v4 : this.v6, words: wordsOf(p.addr, 0, max / 32, new Uint32Array(max / 32)) };
  }
}
