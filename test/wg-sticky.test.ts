// Sticky source, not too sticky (issue 11): a peer's datagrams leave from the address it last
// wrote to, but when that address goes away the next datagram leaves from one that works, with
// nothing lost beyond what was in flight. sixpn-wg ⇄ sixpn-wg over a veth, IPv6 and IPv4 outside.
import test from 'ava';
import { Lab, SIXPN_WG, isRoot, type WgPair } from './helpers/netns.ts';

const rootTest = isRoot() ? test.serial : test.serial.skip;

async function pair(t: { teardown(fn: () => Promise<void>): void }, outer: 4 | 6): Promise<WgPair> {
  const lab = new Lab('st');
  t.teardown(() => lab.cleanup());
  return lab.wgPair('sixpn', 'sixpn', { outer });
}

/** The interface in `ns` that holds `addr`. */
async function devOf(tn: WgPair, ns: string, addr: string): Promise<string> {
  const out = await tn.lab.exec(ns, 'ip', ['-o', 'addr', 'show', 'to', addr]);
  const dev = /^\d+:\s+(\S+)/.exec(out)?.[1];
  if (dev === undefined) throw new Error(`no interface holds ${addr} in ${ns}`);
  return dev.split('@')[0];
}

/** Replaces `from` by `to` (same prefix) on its interface in `ns`: the old address is removed. */
async function renumber(tn: WgPair, ns: string, from: string, to: string, plen: number): Promise<void> {
  const dev = await devOf(tn, ns, from);
  // as systemd sets it: the new address survives the old (primary) one's removal
  if (!to.includes(':')) await tn.lab.exec(ns, 'sysctl', ['-qw', `net.ipv4.conf.${dev}.promote_secondaries=1`]);
  await tn.lab.exec(ns, 'ip', ['addr', 'add', `${to}/${plen}`, 'dev', dev, ...(to.includes(':') ? ['nodad'] : [])]);
  await tn.lab.exec(ns, 'ip', ['addr', 'del', `${from}/${plen}`, 'dev', dev]);
}

/** Replies of `count` pings 0.1 s apart. */
async function replies(tn: WgPair, ns: string, dst: string, count: number): Promise<number> {
  const out = await tn.lab.exec(ns, 'bash', ['-c', `ping -c ${count} -i 0.1 -W 1 ${dst} || true`], { timeout: 60_000 });
  return Number(/(\d+) received/.exec(out)?.[1] ?? 0);
}

async function stats(tn: WgPair, side: 'A' | 'B'): Promise<string> {
  return tn.lab.exec(side === 'A' ? tn.nsA : tn.nsB, SIXPN_WG, ['--stats', side === 'A' ? tn.ifA : tn.ifB]);
}

const cleared = (s: string) => Number(/^txSourceCleared\s+(\d+)/m.exec(s)?.[1] ?? 0);

for (const outer of [6, 4] as const) {
  const [oldA, newA, plen] = outer === 6 ? ['fd00:b1::1', 'fd00:b1::11', 64] : ['192.168.241.1', '192.168.241.11', 24];
  rootTest(`IPv${outer} outside: the initiator's address is replaced; the next packet leaves from the new one`, async (t) => {
    const tn = await pair(t, outer);
    t.is(await replies(tn, tn.nsA, 'fd99::2', 3), 3);
    await renumber(tn, tn.nsA, oldA, newA, plen);
    // every ping answered: the one that found the old source gone was sent again at once
    t.true(await replies(tn, tn.nsA, 'fd99::2', 20) >= 19);
    t.true(cleared(await stats(tn, 'A')) >= 1, 'the pinned source was dropped');
    // B follows A to its new address (roaming), and A still answers B
    t.regex(await tn.lab.exec(tn.nsB, 'wg', ['show', tn.ifB, 'endpoints']), new RegExp(newA.replace(/\./g, '\\.')));
    t.is(await replies(tn, tn.nsB, 'fd99::1', 3), 3);
  });
}

rootTest('two addresses on one interface: replies leave from the one the peer wrote to, then from the other once it is removed', async (t) => {
  const tn = await pair(t, 6);
  const dev = await devOf(tn, tn.nsB, 'fd00:b1::2');
  await tn.lab.exec(tn.nsB, 'ip', ['addr', 'add', 'fd00:b1::22/64', 'dev', dev, 'nodad']);
  await tn.lab.exec(tn.nsA, 'wg', ['set', tn.ifA, 'peer', (await tn.lab.exec(tn.nsB, 'wg', ['show', tn.ifB, 'public-key'])).trim(), 'endpoint', '[fd00:b1::22]:51821']);
  t.is(await replies(tn, tn.nsA, 'fd99::2', 3), 3);
  // B answered from ::22, the address A wrote to (else A would have roamed to ::2)
  t.regex(await tn.lab.exec(tn.nsA, 'wg', ['show', tn.ifA, 'endpoints']), /fd00:b1::22/);
  await tn.lab.exec(tn.nsB, 'ip', ['addr', 'del', 'fd00:b1::22/64', 'dev', dev]);
  // B's next packet to A leaves from ::2; A roams there and answers
  t.true(await replies(tn, tn.nsB, 'fd99::1', 20) >= 19);
  t.true(cleared(await stats(tn, 'B')) >= 1);
  t.regex(await tn.lab.exec(tn.nsA, 'wg', ['show', tn.ifA, 'endpoints']), /fd00:b1::2\]/);
});

rootTest('the endpoint moves to IPv4, the IPv4 address is replaced, and it moves back to IPv6', async (t) => {
  const tn = await pair(t, 6);
  const pubB = (await tn.lab.exec(tn.nsB, 'wg', ['show', tn.ifB, 'public-key'])).trim();
  t.is(await replies(tn, tn.nsA, 'fd99::2', 3), 3);
  await tn.lab.exec(tn.nsA, 'wg', ['set', tn.ifA, 'peer', pubB, 'endpoint', '192.168.241.2:51821']);
  t.is(await replies(tn, tn.nsA, 'fd99::2', 5), 5);
  await renumber(tn, tn.nsA, '192.168.241.1', '192.168.241.11', 24);
  t.true(await replies(tn, tn.nsA, 'fd99::2', 20) >= 19);
  await tn.lab.exec(tn.nsA, 'wg', ['set', tn.ifA, 'peer', pubB, 'endpoint', '[fd00:b1::2]:51821']);
  t.true(await replies(tn, tn.nsA, 'fd99::2', 10) >= 9);
  t.regex(await tn.lab.exec(tn.nsB, 'wg', ['show', tn.ifB, 'endpoints']), /fd00:b1::1\]/);
});
