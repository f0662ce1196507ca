// src/uapi MemoryDevice: the reference semantics of applying a UapiSet (wireguard-go's), driven
// by request text through the parser, the way the socket drives it.
import test from 'ava';
import { MemoryDevice, UapiParser, formatCidr, UAPI_EADDRINUSE, type UapiSet } from '../src/uapi/index.ts';
import { chosenBackend, keyToHex } from '../src/noise/index.ts';

const K1 = '11'.repeat(32);
const K2 = '22'.repeat(32);
const K3 = '33'.repeat(32);

function set(dev: MemoryDevice, body: string): number {
  const p = new UapiParser();
  p.feed(Buffer.from(`set=1\n${body}\n`));
  const r = p.next();
  if (r?.kind !== 'set') throw new Error(`not a set: ${JSON.stringify(r)}`);
  return dev.uapiSet(r.set as UapiSet);
}

function ips(dev: MemoryDevice, hex: string): string[] | undefined {
  const p = dev.peer(Buffer.from(hex, 'hex'));
  return p === undefined ? undefined : [...p.allowed.values()].map(formatCidr);
}

test('create, update, remove; update_only does not create', (t) => {
  const d = new MemoryDevice();
  t.is(set(d, `public_key=${K1}\nallowed_ip=10.0.0.0/8\npersistent_keepalive_interval=5\n`), 0);
  t.deepEqual(ips(d, K1), ['10.0.0.0/8']);
  t.is(d.keepalivesSent, 1, 'turning keepalive on sends one');
  t.is(set(d, `public_key=${K1}\npersistent_keepalive_interval=7\n`), 0);
  t.is(d.keepalivesSent, 1, 'changing a nonzero interval does not');
  t.is(set(d, `public_key=${K2}\nupdate_only=true\nallowed_ip=11.0.0.0/8\n`), 0);
  t.is(ips(d, K2), undefined);
  t.is(set(d, `public_key=${K1}\nupdate_only=true\nallowed_ip=12.0.0.0/8\n`), 0);
  t.deepEqual(ips(d, K1), ['10.0.0.0/8', '12.0.0.0/8']);
  t.is(set(d, `public_key=${K1}\nremove=true\npublic_key=${K3}\nremove=true\n`), 0);
  t.is(d.peers.size, 0);
});

test('a prefix belongs to one peer: adding takes it, "-cidr" removes only its own', (t) => {
  const d = new MemoryDevice();
  set(d, `public_key=${K1}\nallowed_ip=10.0.0.0/8\nallowed_ip=fd00::/8\npublic_key=${K2}\nallowed_ip=10.0.0.0/8\n`);
  t.deepEqual(ips(d, K1), ['fd00::/8']);
  t.deepEqual(ips(d, K2), ['10.0.0.0/8']);
  set(d, `public_key=${K1}\nallowed_ip=-10.0.0.0/8\n`);
  t.deepEqual(ips(d, K2), ['10.0.0.0/8'], 'not K1’s to remove');
  set(d, `public_key=${K2}\nallowed_ip=-10.0.0.0/8\n`);
  t.deepEqual(ips(d, K2), []);
  set(d, `public_key=${K1}\nreplace_allowed_ips=true\nallowed_ip=192.168.0.0/16\n`);
  t.deepEqual(ips(d, K1), ['192.168.0.0/16']);
});

test('replace_peers, private key (own key ignored as a peer), listen_port 0 picks one, fwmark', (t) => {
  const d = new MemoryDevice({ pickPort: () => 43210 });
  const priv = Buffer.from('a0'.repeat(32), 'hex');
  const pub = keyToHex(chosenBackend.x25519.importPrivate(priv).publicKey);
  set(d, `public_key=${K1}\n`);
  t.is(set(d, `private_key=${priv.toString('hex')}\nlisten_port=0\nfwmark=3\nreplace_peers=true\npublic_key=${pub}\nallowed_ip=10.0.0.0/8\npublic_key=${K2}\n`), 0);
  t.deepEqual([...d.peers.keys()], [K2]);
  t.is(d.listenPort, 43210);
  t.is(d.uapiGet().listenPort, 43210, 'get reports the real port');
  t.is(d.fwmark, 3);
  set(d, `private_key=${'0'.repeat(64)}\n`);
  t.is(d.privateKey, null);
});

test('a port in use fails with -EADDRINUSE and changes nothing', (t) => {
  const d = new MemoryDevice({ portsInUse: [5555] });
  set(d, `listen_port=1000\npublic_key=${K1}\nallowed_ip=10.0.0.0/8\n`);
  const before = JSON.stringify(d.uapiGet());
  t.is(set(d, `listen_port=5555\nreplace_peers=true\npublic_key=${K2}\n`), UAPI_EADDRINUSE);
  t.is(JSON.stringify(d.uapiGet()), before);
});
