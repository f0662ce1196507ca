// etcd's limits on one transaction are etcd's configuration (issue 12): an edit larger than its
// --max-txn-ops is refused by etcd, said in one message naming the limit and what to do, with
// nothing written; started with a larger limit, the same edit commits (the store itself sets no
// lower cap). Against real etcd servers from Debian, started here.
import test from 'ava';
import { openStore } from '../src/store/index.ts';
import { asDocument, parseStoreSpec, replaceDocument } from '../src/topology/index.ts';
import type { TopologyDocument, TopologyStore } from '../src/topology/index.ts';
import { EtcdServer, HAVE_ETCD } from './helpers/etcd.ts';

const maybe = HAVE_ETCD ? test : test.skip;
const servers: EtcdServer[] = [];
const stores: TopologyStore[] = [];
test.after.always(async () => {
  for (const s of stores) await s.close();
  for (const e of servers) await e.stop();
});

/** One org, one host, one app and `n` machines: n + 3 entries, so n + 4 keys with the meta. */
function bigDocument(n: number): TopologyDocument {
  const machines = Array.from({ length: n }, (_, i) => ({
    id: `m${i.toString(16).padStart(13, '0')}`, app: 'web', region: 'ams', host: 'ams1', instance: `0x${(0x1000 + i).toString(16)}`, state: 'started',
  }));
  return asDocument({
    version: 1,
    orgs: [{ name: 'acme', network: '0x18' }],
    hosts: [{ name: 'ams1', id: 'a7b:7d', region: 'ams', publicKey: 'mxVLM6Q/ZCB4ugOaHLdmb2kTSRnMJJSnmb/pgjFHjXo=', endpoint: '192.0.2.11:51820' }],
    apps: [{ name: 'web', org: 'acme' }],
    machines,
    peers: [],
  });
}

async function storeOn(flags: string[]): Promise<TopologyStore> {
  const etcd = await EtcdServer.start(undefined, undefined, flags);
  servers.push(etcd);
  const store = await openStore(parseStoreSpec(`etcd://${etcd.endpoint}/limits${process.pid}`));
  stores.push(store);
  return store;
}

maybe('an import larger than etcd\'s --max-txn-ops is refused whole, naming the limit; a larger limit lets it commit', async (t) => {
  const doc = bigDocument(200); // 204 keys: more than etcd's default of 128
  const small = await storeOn(['--max-txn-ops', '64']);
  const err = await t.throwsAsync(small.update('import', (d) => replaceDocument(d, doc)));
  t.regex(err!.message, /204 keys change in one transaction, more than etcd's --max-txn-ops/);
  t.regex(err!.message, /nothing was written/);
  t.regex(err!.message, /ETCD_MAX_TXN_OPS/);
  t.is((await small.read()).doc.machines.length, 0, 'nothing of the edit committed');
  // a small edit still goes through the same store
  await small.update('small', (d) => replaceDocument(d, bigDocument(10)));
  t.is((await small.read()).doc.machines.length, 10);

  const large = await storeOn(['--max-txn-ops', '1024']);
  await large.update('import', (d) => replaceDocument(d, doc));
  const back = await large.read();
  t.is(back.doc.machines.length, 200);
  t.deepEqual(back.doc.machines.map((m) => m.id).sort(), doc.machines.map((m) => m.id).sort());
});
