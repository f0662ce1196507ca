// The `.internal` name table, row by row, and the server's behaviour (rcodes, SOA, case, orgs).
// Queries are built and replies decoded here by hand, independently of src/dns/wire.ts.
import test from 'ava';
import { ANSWER_FORWARD, InternalResolver, type DnsMachine, type DnsPeer, type DnsView } from '../src/dns/index.ts';

const A = 1, MX = 15, TXT = 16, AAAA = 28, SOA = 6, ANY = 255, AXFR = 252;

// ---- a small org model -------------------------------------------------------------------------
const addr = (g: number[]): Uint8Array => {
  const b = new Uint8Array(16);
  g.forEach((v, i) => { b[2 * i] = v >> 8; b[2 * i + 1] = v & 0xff; });
  return b;
};
const text = (b: Uint8Array): string => Array.from({ length: 8 }, (_, i) => ((b[2 * i] << 8) | b[2 * i + 1]).toString(16)).join(':');
let serial = 0;
function vm(net: number, app: string, region: string, group: string, metadata: Record<string, string>, started = true): DnsMachine {
  const k = serial++;
  return { id: (0x148e21ea7b9000 + k).toString(16), app, region, processGroup: group, metadata, started,
    address: addr([0xfdaa, 0, net, 0xa7b, 0x7d, 0xf000 + k, 0xb83b, 2]) };
}
const peer = (net: number, name: string, k: number): DnsPeer => ({ name, address: addr([0xfdaa, 0, net, 0xa7b, 0xd6b, 0, 0xa, 2 + k * 0x100]) });

class FakeView implements DnsView {
  orgs = new Map<string, { apps: Map<string, DnsMachine[]>; peers: DnsPeer[] }>();
  askerOf(src: Uint8Array) {
    const same = (a: Uint8Array, n: number) => a.subarray(0, n).every((v, i) => v === src[i]);
    for (const [org, o] of this.orgs) {
      for (const ms of o.apps.values()) for (const m of ms) if (same(m.address, 14)) return { org, region: m.region };
      for (const p of o.peers) if (same(p.address, 15)) return { org };
    }
    return undefined;
  }
  apps(org: string) { return this.orgs.get(org)?.apps.keys() ?? []; }
  machines(org: string, app: string) { return this.orgs.get(org)?.apps.get(app) ?? []; }
  peers(org: string) { return this.orgs.get(org)?.peers ?? []; }
}

const web = [
  vm(0x18, 'web', 'iad', 'app', { role: 'primary' }),
  vm(0x18, 'web', 'ewr', 'app', { role: 'replica' }),
  vm(0x18, 'web', 'lhr', 'worker', { role: 'replica' }),
  vm(0x18, 'web', 'syd', 'worker', {}),
  vm(0x18, 'web', 'nrt', 'app', { Role: 'Primary' }),
  vm(0x18, 'web', 'iad', 'app', { role: 'primary' }, false), // stopped: never in an answer
];
const db = [vm(0x18, 'db', 'iad', 'app', { tier: 'gold' }), vm(0x18, 'db', 'lhr', 'app', {}, false)];
const idle = [vm(0x18, 'idle', 'iad', 'app', {}, false)];
const secret = [vm(0x19, 'secret', 'iad', 'app', {})];
const peers1 = [peer(0x18, 'laptop', 0), peer(0x18, 'interactive-4f2a', 1), peer(0x18, 'Ci-Runner', 2)];
const view = new FakeView();
view.orgs.set('o1', { apps: new Map([['web', web], ['db', db], ['idle', idle]]), peers: peers1 });
view.orgs.set('o2', { apps: new Map([['secret', secret]]), peers: [peer(0x19, 'laptop', 0)] });
const fromWeb = web[0].address; // a machine in iad
const fromLaptop = peers1[0].address;
const started = web.filter((m) => m.started);

// ---- query builder and reply decoder -----------------------------------------------------------
interface QOpts { id?: number; edns?: number; ednsVersion?: number; dnssecOk?: boolean; qclass?: number; rd?: boolean }
function query(name: string, qtype: number, o: QOpts = {}): Uint8Array {
  const id = o.id ?? 0xbeef;
  const b = [id >> 8, id & 0xff, o.rd === false ? 0 : 1, 0, 0, 1, 0, 0, 0, 0, 0, o.edns === undefined ? 0 : 1];
  for (const l of name.split('.').filter((s) => s !== '')) b.push(l.length, ...Array.from(l, (c) => c.charCodeAt(0)));
  b.push(0, qtype >> 8, qtype & 0xff, 0, o.qclass ?? 1);
  if (o.edns !== undefined) b.push(0, 0, 41, o.edns >> 8, o.edns & 0xff, 0, o.ednsVersion ?? 0, o.dnssecOk ? 0x80 : 0, 0, 0, 0);
  return Uint8Array.from(b);
}
interface RR { name: string; type: number; ttl: number; rdata: Uint8Array }
function readName(b: Uint8Array, p: number): [string, number] {
  const labels: string[] = [];
  let next = -1;
  for (let hops = 0; hops < 64; hops++) {
    if (p >= b.length) throw new Error('name past end');
    const n = b[p];
    if (n >= 0xc0) { if (next < 0) next = p + 2; p = ((n & 0x3f) << 8) | b[p + 1]; continue; }
    if (n === 0) return [labels.join('.'), next < 0 ? p + 1 : next];
    labels.push(String.fromCharCode(...b.subarray(p + 1, p + 1 + n)));
    p += 1 + n;
  }
  throw new Error('pointer loop');
}
function decode(b: Uint8Array) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const f = dv.getUint16(2);
  let p = 12;
  const [qn, qe] = dv.getUint16(4) === 1 ? readName(b, 12) : ['', 12];
  if (dv.getUint16(4) === 1) p = qe + 4;
  const sections: RR[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < dv.getUint16(6 + 2 * s); i++) {
      const [name, e] = readName(b, p);
      const len = dv.getUint16(e + 8);
      if (e + 10 + len > b.length) throw new Error('rdata past end');
      sections[s].push({ name, type: dv.getUint16(e), ttl: dv.getUint32(e + 4), rdata: b.subarray(e + 10, e + 10 + len) });
      if (dv.getUint16(e + 2) !== 1 && dv.getUint16(e) !== 41) throw new Error('class');
      p = e + 10 + len;
    }
  }
  if (p !== b.length) throw new Error('trailing bytes');
  return { id: dv.getUint16(0), aa: (f >> 10) & 1, tc: (f >> 9) & 1, rd: (f >> 8) & 1, rcode: f & 15, qname: qn,
    an: sections[0], ns: sections[1], ar: sections[2], raw: b };
}
const aaaas = (rrs: RR[]) => rrs.filter((r) => r.type === AAAA).map((r) => text(r.rdata));
function txtStrings(rd: Uint8Array): string[] {
  const out: string[] = [];
  for (let p = 0; p < rd.length; p += 1 + rd[p]) out.push(String.fromCharCode(...rd.subarray(p + 1, p + 1 + rd[p])));
  return out;
}

const resolver = new InternalResolver(view);
function ask(name: string, qtype: number, o: QOpts & { from?: Uint8Array; tcp?: boolean; r?: InternalResolver } = {}) {
  const out = new Uint8Array(65535);
  const n = (o.r ?? resolver).answer(query(name, qtype, o), o.from ?? fromWeb, o.tcp ? 'tcp' : 'udp', out);
  if (n <= 0) throw new Error(`no reply (${n})`);
  return decode(out.subarray(0, n));
}
const addrsOf = (ms: DnsMachine[]) => ms.map((m) => text(m.address));

// ---- the table ---------------------------------------------------------------------------------
test('<app>.internal: AAAA of every started machine of the app', (t) => {
  const r = ask('web.internal', AAAA);
  t.is(r.rcode, 0);
  t.is(r.aa, 1);
  t.deepEqual(aaaas(r.an), addrsOf(started));
  t.true(r.an.every((x) => x.name === 'web.internal' && x.ttl === 5));
});

test('global.<app>.internal is an alias of <app>.internal', (t) => {
  t.deepEqual(aaaas(ask('global.web.internal', AAAA).an), addrsOf(started));
});

test('<region>.<app>.internal: machines in that region', (t) => {
  t.deepEqual(aaaas(ask('iad.web.internal', AAAA).an), addrsOf([web[0]])); // web[5] is stopped
  t.deepEqual(aaaas(ask('lhr.web.internal', AAAA).an), addrsOf([web[2]]));
  t.is(ask('fra.web.internal', AAAA).rcode, 3);
});

test('top<N>.nearest.of.<app>.internal: N nearest to the asker by great-circle distance', (t) => {
  // From iad: iad 0, ewr ~330 km, lhr ~5,900, nrt ~10,900, syd ~15,700.
  t.deepEqual(aaaas(ask('top1.nearest.of.web.internal', AAAA).an), addrsOf([web[0]]));
  t.deepEqual(aaaas(ask('top3.nearest.of.web.internal', AAAA).an), addrsOf([web[0], web[1], web[2]]));
  t.deepEqual(aaaas(ask('top99.nearest.of.web.internal', AAAA).an).length, 5);
  // From a syd machine of another app: syd, nrt (~7,800) before lhr (~17,000).
  const sydView = new FakeView();
  const asker = vm(0x18, 'db', 'syd', 'app', {});
  sydView.orgs.set('o1', { apps: new Map([['web', web], ['db', [asker]]]), peers: [] });
  const r = ask('top2.nearest.of.web.internal', AAAA, { r: new InternalResolver(sydView), from: asker.address });
  t.deepEqual(aaaas(r.an), addrsOf([web[3], web[4]]));
  t.is(ask('top0.nearest.of.web.internal', AAAA).rcode, 3);
  t.is(ask('topx.nearest.of.web.internal', AAAA).rcode, 3);
});

test('<machine_id>.vm.<app>.internal: that machine, only when started', (t) => {
  t.deepEqual(aaaas(ask(`${web[2].id}.vm.web.internal`, AAAA).an), addrsOf([web[2]]));
  t.is(ask(`${web[5].id}.vm.web.internal`, AAAA).rcode, 3); // stopped
  t.is(ask(`${db[0].id}.vm.web.internal`, AAAA).rcode, 3); // another app's machine
});

test('<group>.process.<app>.internal: machines of the process group', (t) => {
  t.deepEqual(aaaas(ask('worker.process.web.internal', AAAA).an), addrsOf([web[2], web[3]]));
  t.deepEqual(aaaas(ask('app.process.web.internal', AAAA).an), addrsOf([web[0], web[1], web[4]]));
  t.is(ask('cron.process.web.internal', AAAA).rcode, 3);
});

test('<value>.<key>.kv._metadata.<app>.internal: machines with that metadata (case-insensitive)', (t) => {
  t.deepEqual(aaaas(ask('primary.role.kv._metadata.web.internal', AAAA).an), addrsOf([web[0], web[4]]));
  t.deepEqual(aaaas(ask('replica.role.kv._metadata.web.internal', AAAA).an), addrsOf([web[1], web[2]]));
  t.is(ask('tertiary.role.kv._metadata.web.internal', AAAA).rcode, 3);
  t.is(ask('x.nokey.kv._metadata.web.internal', AAAA).rcode, 3);
});

test('<peer>._peer.internal: that WireGuard peer; interactive-* peers hidden', (t) => {
  t.deepEqual(aaaas(ask('laptop._peer.internal', AAAA).an), [text(peers1[0].address)]);
  t.deepEqual(aaaas(ask('ci-runner._peer.internal', AAAA).an), [text(peers1[2].address)]);
  t.is(ask('interactive-4f2a._peer.internal', AAAA).rcode, 3);
  t.is(ask('nobody._peer.internal', AAAA).rcode, 3);
});

test('vms.<app>.internal: TXT "<id> <region>" comma-separated', (t) => {
  const r = ask('vms.web.internal', TXT);
  t.is(r.an.length, 1);
  t.deepEqual(txtStrings(r.an[0].rdata), [started.map((m) => `${m.id} ${m.region}`).join(',')]);
});

test('regions.<app>.internal: TXT comma-separated regions', (t) => {
  t.deepEqual(txtStrings(ask('regions.web.internal', TXT).an[0].rdata), ['ewr,iad,lhr,nrt,syd']);
  t.deepEqual(txtStrings(ask('regions.db.internal', TXT).an[0].rdata), ['iad']);
});

test('_apps.internal: TXT app names of the asker\'s org only', (t) => {
  t.deepEqual(txtStrings(ask('_apps.internal', TXT).an[0].rdata), ['db,idle,web']);
  const other = ask('_apps.internal', TXT, { from: secret[0].address });
  t.deepEqual(txtStrings(other.an[0].rdata), ['secret']);
});

test('_peer.internal: TXT peer names without interactive-*', (t) => {
  t.deepEqual(txtStrings(ask('_peer.internal', TXT).an[0].rdata), ['Ci-Runner,laptop']);
});

test('_instances.internal: TXT entries ;-separated, split into 255-byte strings of one record', (t) => {
  const r = ask('_instances.internal', TXT, { edns: 1232 });
  t.is(r.an.length, 1);
  const parts = txtStrings(r.an[0].rdata);
  t.true(parts.length > 1);
  t.true(parts.slice(0, -1).every((s) => s.length === 255));
  const all = [...db.filter((m) => m.started), ...started];
  t.is(parts.join(''), all.map((m) => `instance=${m.id},app=${m.app},ip=${text(m.address)},region=${m.region}`).join(';'));
});

// ---- behaviour ---------------------------------------------------------------------------------
test('names are case-insensitive and the question is echoed as asked', (t) => {
  const r = ask('WeB.InTeRnAl', AAAA);
  t.is(r.qname, 'WeB.InTeRnAl');
  t.deepEqual(aaaas(r.an), addrsOf(started));
  t.deepEqual(aaaas(ask(`TOP1.Nearest.OF.WEB.INTERNAL`, AAAA).an), addrsOf([web[0]]));
  t.deepEqual(aaaas(ask(`${web[2].id.toUpperCase()}.VM.web.internal`, AAAA).an), addrsOf([web[2]]));
  t.deepEqual(aaaas(ask('PRIMARY.ROLE.KV._METADATA.web.internal', AAAA).an), addrsOf([web[0], web[4]]));
});

test('answers are compressed: owners point at the question name', (t) => {
  const r = ask('web.internal', AAAA);
  const firstAnswer = 12 + 14 + 4;
  t.deepEqual([r.raw[firstAnswer], r.raw[firstAnswer + 1]], [0xc0, 12]);
  t.is(r.raw.length, 12 + 18 + 5 * 28);
});

test('another org\'s app is NXDOMAIN; its own org sees it', (t) => {
  t.is(ask('secret.internal', AAAA).rcode, 3);
  t.is(ask('vms.secret.internal', TXT).rcode, 3);
  t.is(ask('web.internal', AAAA, { from: secret[0].address }).rcode, 3);
  t.deepEqual(aaaas(ask('secret.internal', AAAA, { from: secret[0].address }).an), addrsOf(secret));
  t.is(ask('laptop._peer.internal', AAAA, { from: secret[0].address }).an.length, 1); // o2's own laptop
});

test('a name with no data of the asked type is NODATA with the SOA, never NXDOMAIN', (t) => {
  for (const [name, type] of [['web.internal', A], ['web.internal', MX], ['web.internal', TXT], ['vms.web.internal', AAAA],
    ['_apps.internal', AAAA], ['laptop._peer.internal', A]] as const) {
    const r = ask(name, type);
    t.is(r.rcode, 0, name);
    t.is(r.an.length, 0, name);
    t.is(r.ns.length, 1, name);
    t.is(r.ns[0].type, SOA, name);
  }
});

test('existing names without records: empty non-terminals and apps without started machines', (t) => {
  for (const name of ['vm.web.internal', 'process.web.internal', 'kv._metadata.web.internal', 'role.kv._metadata.web.internal',
    'nearest.of.web.internal', 'idle.internal', 'vms.idle.internal', 'top2.nearest.of.idle.internal']) {
    const r = ask(name, AAAA);
    t.is(r.rcode, 0, name);
    t.is(r.an.length, 0, name);
  }
  for (const name of ['nope.internal', 'x.vm.web.internal', 'a.b.web.internal', 'x._apps.internal', 'x.laptop._peer.internal']) {
    t.is(ask(name, AAAA).rcode, 3, name);
  }
});

test('negative answers carry the zone SOA for negative caching (RFC 2308)', (t) => {
  const r = ask('nope.internal', AAAA);
  t.is(r.rcode, 3);
  t.is(r.aa, 1);
  t.is(r.an.length, 0);
  const soa = r.ns[0];
  t.is(soa.name, 'internal');
  t.is(soa.type, SOA);
  t.is(soa.ttl, 5);
  const [mname, m] = readName(r.raw, soa.rdata.byteOffset - r.raw.byteOffset);
  const [rname, e] = readName(r.raw, m);
  t.is(mname, 'ns.internal');
  t.is(rname, 'hostmaster.internal');
  t.is(new DataView(r.raw.buffer, r.raw.byteOffset).getUint32(e + 16), 5); // MINIMUM
});

test('the apex holds the SOA', (t) => {
  const r = ask('internal', SOA);
  t.is(r.an.length, 1);
  t.is(r.an[0].type, SOA);
  t.is(ask('internal', AAAA).an.length, 0);
});

test('TTL is configurable', (t) => {
  const r = ask('web.internal', AAAA, { r: new InternalResolver(view, { ttlS: 30 }) });
  t.true(r.an.every((x) => x.ttl === 30));
  t.is(ask('nope.internal', A, { r: new InternalResolver(view, { ttlS: 30 }) }).ns[0].ttl, 30);
});

test('ANY returns the records the name holds', (t) => {
  t.deepEqual(aaaas(ask('web.internal', ANY).an), addrsOf(started));
  t.is(ask('_apps.internal', ANY).an[0].type, TXT);
});

test('WireGuard peers resolve within their org; nearest from a peer keeps the view order', (t) => {
  t.deepEqual(aaaas(ask('web.internal', AAAA, { from: fromLaptop }).an), addrsOf(started));
  t.deepEqual(aaaas(ask('top2.nearest.of.web.internal', AAAA, { from: fromLaptop }).an), addrsOf(started.slice(0, 2)));
});

test('an asker that is no known machine or peer is REFUSED, without AA', (t) => {
  const stranger = addr([0xfdaa, 0, 0x18, 0xa7b, 0x7d, 0x1234, 0x5678, 2]);
  const r = ask('web.internal', AAAA, { from: stranger });
  t.is(r.rcode, 5);
  t.is(r.aa, 0);
  t.is(r.an.length + r.ns.length, 0);
  t.is(ask('example.com', AAAA, { from: stranger }).rcode, 5); // not an open resolver either
});

test('outside .internal: forwarded, or REFUSED when forwarding is off', (t) => {
  const out = new Uint8Array(512);
  t.is(resolver.answer(query('example.com', AAAA), fromWeb, 'udp', out), ANSWER_FORWARD);
  t.is(resolver.answer(query('internal.example.com', AAAA), fromWeb, 'udp', out), ANSWER_FORWARD);
  t.is(ask('example.com', AAAA, { r: new InternalResolver(view, { forwardExternal: false }) }).rcode, 5);
});

test('ID and RD are echoed; class CH is REFUSED; AXFR REFUSED', (t) => {
  const r = ask('web.internal', AAAA, { id: 0x0102, rd: false });
  t.is(r.id, 0x0102);
  t.is(r.rd, 0);
  t.is(ask('web.internal', AAAA).rd, 1);
  t.is(ask('web.internal', TXT, { qclass: 3 }).rcode, 5);
  t.is(ask('web.internal', AXFR, { tcp: true }).rcode, 5);
});
