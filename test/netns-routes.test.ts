// A machine's routes in its namespace (src/host/netns.ts): each host's TUN carries its own
// (a metric per host), so where two host processes share a kernel and the namespace — a
// migration between hosts of a lab on one machine — the host that tears its interface down last
// cannot take with it the routes the other host set. The soak found it: a migration and its
// migration back applied late by one host left the machine with no route but its /112. Veth
// links stand in for the TUNs (the routes do not care); in namespaces of this test's own.
import test from 'ava';
import { configureMachineLink, machineRouteMetric } from '../src/host/netns.ts';
import { parseTopology } from '../src/topology/index.ts';
import type { Machine } from '../src/topology/index.ts';
import { Lab, isRoot, sh } from './helpers/netns.ts';

const rootTest = isRoot() ? test : test.skip;

/** The machine `m1` of a two-host topology, placed on `host`. */
function machineOn(host: 'ams1' | 'ord1'): Machine {
  const t = parseTopology(JSON.stringify({
    version: 1,
    orgs: [{ name: 'acme', network: '0x18' }],
    hosts: [
      { name: 'ams1', id: 'a7b:7d', region: 'ams', publicKey: 'mxVLM6Q/ZCB4ugOaHLdmb2kTSRnMJJSnmb/pgjFHjXo=', endpoint: '192.0.2.11:51820' },
      { name: 'ord1', id: 'a7b:d6b', region: 'ord', publicKey: 'WS0mNefJBriX2ZDbr+CZ3bnV9oLyw4Ff+0Pf7sOQVRg=', endpoint: '192.0.2.12:51820' },
    ],
    apps: [{ name: 'web', org: 'acme' }],
    machines: [{ id: '148e21ea235a89', app: 'web', region: host.slice(0, 3), host, instance: '0x101', state: 'started' }],
    peers: [],
  }), 'test');
  return t.machine('148e21ea235a89')!;
}

/** The namespace's IPv6 routes for fdaa::/16 and default, as "PREFIX dev IF metric N". */
async function routes(ns: string): Promise<string[]> {
  const out = await sh('ip', ['-n', ns, '-6', '-o', 'route', 'show']);
  return out.split('\n').filter((l) => /^(fdaa::\/16|default) /.test(l))
    .map((l) => l.replace(/^(\S+) dev (\S+).* metric (\d+).*$/, '$1 dev $2 metric $3')).sort();
}

rootTest('two hosts\' TUNs in one namespace: each keeps its own routes, and the other\'s survive its teardown', async (t) => {
  const lab = new Lab('nr');
  t.teardown(() => lab.cleanup());
  const ns = await lab.ns('m');
  const [onAms, onOrd] = [machineOn('ams1'), machineOn('ord1')];
  t.not(machineRouteMetric(onAms), machineRouteMetric(onOrd));
  const link = async (suffix: string, m: Machine): Promise<string> => {
    const name = lab.name(suffix);
    // a veth whose other end stays here and goes with it (this kernel may have no dummy links)
    await sh('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`.slice(-15)]);
    await configureMachineLink(ns, name, m);
    return name;
  };
  // the machine came back to ams1; ord1 applied the migration late and set its TUN up after
  const ams = await link('a', onAms);
  const ord = await link('o', onOrd);
  const both = await routes(ns);
  t.is(both.length, 4, both.join('; '));
  // ord1 catches up and drops its TUN: ams1's routes stay
  await sh('ip', ['-n', ns, 'link', 'del', ord]);
  t.deepEqual(await routes(ns), [
    `default dev ${ams} metric ${machineRouteMetric(onAms)}`,
    `fdaa::/16 dev ${ams} metric ${machineRouteMetric(onAms)}`,
  ]);
  // a restarted ams1 (a new TUN of the same host) replaces its own routes: still one of each
  await sh('ip', ['-n', ns, 'link', 'set', ams, 'name', lab.name('x')]);
  await sh('ip', ['-n', ns, 'addr', 'flush', 'dev', lab.name('x')]);
  const again = await link('b', onAms);
  t.deepEqual(await routes(ns), [
    `default dev ${again} metric ${machineRouteMetric(onAms)}`,
    `fdaa::/16 dev ${again} metric ${machineRouteMetric(onAms)}`,
  ]);
});
