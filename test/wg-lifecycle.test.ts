// sixpn-wg's life as wireguard-go's: the TUN and the socket exist when the launcher returns;
// the TUN keeps working after it is moved into another namespace; the daemon exits cleanly on
// SIGTERM, when its interface is deleted, and when its socket is removed.
import test from 'ava';
import { existsSync, rmSync } from 'node:fs';
import { Lab, isRoot, sh } from './helpers/netns.ts';

const rootTest = isRoot() ? test : test.skip; // counted as skipped when not root
const rootSerial = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root

async function daemonPid(ifname: string): Promise<number> {
  const out = await sh('pgrep', ['-f', `sixpn-wg.ts --foreground ${ifname}$`]).catch(() => '');
  return Number(out.trim().split('\n')[0] || 0);
}

async function waitGone(pid: number, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

rootSerial('the TUN moved into another namespace after start keeps working with wireguard-go', async (t) => {
  const lab = new Lab('lm');
  t.teardown(() => lab.cleanup());
  const nsA = await lab.ns('A'); // where sixpn-wg runs and its UDP socket lives
  const nsB = await lab.ns('B');
  const nsC = await lab.ns('C'); // where its interface ends up
  await lab.veth(nsA, ['fd00:b1::1/64'], nsB, ['fd00:b1::2/64']);
  const ifA = lab.name('wa');
  const ifB = lab.name('wb');
  await lab.wg(nsA, 'sixpn', ifA);
  t.true(existsSync(`/var/run/wireguard/${ifA}.sock`), 'socket exists when the launcher returns');
  t.regex(await lab.exec(nsA, 'ip', ['link', 'show', ifA]), new RegExp(ifA), 'interface exists when the launcher returns');
  await lab.exec(nsA, 'ip', ['link', 'set', ifA, 'netns', nsC]);
  await lab.wg(nsB, 'wggo', ifB);
  const kA = await lab.genkey();
  const kB = await lab.genkey();
  await lab.exec(nsC, 'wg', ['set', ifA, 'private-key', kA.file, 'listen-port', '51820', 'peer', kB.pub, 'allowed-ips', 'fd99::2/128', 'endpoint', '[fd00:b1::2]:51821']);
  await lab.exec(nsB, 'wg', ['set', ifB, 'private-key', kB.file, 'listen-port', '51821', 'peer', kA.pub, 'allowed-ips', 'fd99::1/128']);
  await lab.exec(nsC, 'ip', ['addr', 'add', 'fd99::1/64', 'dev', ifA, 'nodad']);
  await lab.exec(nsC, 'ip', ['link', 'set', ifA, 'up']);
  await lab.exec(nsB, 'ip', ['addr', 'add', 'fd99::2/64', 'dev', ifB, 'nodad']);
  await lab.exec(nsB, 'ip', ['link', 'set', ifB, 'up']);
  await lab.exec(nsC, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', 'fd99::2']);
  await lab.exec(nsB, 'ping', ['-c', '2', '-i', '0.2', '-W', '3', 'fd99::1']);
  // kernel interface counters see the traffic
  const stats = await lab.exec(nsC, 'ip', ['-s', 'link', 'show', ifA]);
  const rx = Number(/RX:.*\n\s+(\d+)\s+(\d+)/.exec(stats)?.[2] ?? 0);
  t.true(rx >= 4, `ip -s link shows ${rx} packets received`);
});

rootSerial('sixpn-wg exits cleanly on SIGTERM, on `ip link del`, and when its socket is removed', async (t) => {
  const lab = new Lab('lx');
  t.teardown(() => lab.cleanup());
  const ns = await lab.ns('A');
  for (const how of ['SIGTERM', 'link del', 'socket removed'] as const) {
    const ifname = lab.name(`w${how[0]}`);
    await lab.wg(ns, 'sixpn', ifname);
    const pid = await daemonPid(ifname);
    t.true(pid > 0, `${how}: daemon running`);
    if (how === 'SIGTERM') process.kill(pid, 'SIGTERM');
    else if (how === 'link del') await lab.exec(ns, 'ip', ['link', 'del', ifname]);
    else rmSync(`/var/run/wireguard/${ifname}.sock`);
    t.true(await waitGone(pid), `${how}: daemon exited`);
    t.false(existsSync(`/var/run/wireguard/${ifname}.sock`), `${how}: socket removed`);
    const link = await lab.exec(ns, 'ip', ['link', 'show', ifname]).then(() => 'present', () => 'gone');
    t.is(link, 'gone', `${how}: interface removed`);
  }
});

rootTest('sixpn-wg refuses a second daemon for the same interface, and a bad name', async (t) => {
  const lab = new Lab('ld');
  t.teardown(() => lab.cleanup());
  const ns = await lab.ns('A');
  const ifname = lab.name('w');
  await lab.wg(ns, 'sixpn', ifname);
  const second = await lab.wg(ns, 'sixpn', ifname).then(() => 'started', (e: Error) => e.message);
  t.regex(second, /failed to start|exists|in use/i);
  t.true((await daemonPid(ifname)) > 0, 'the first one still runs');
  const bad = await lab.wg(ns, 'sixpn', 'bad/name').then(() => 'started', (e: Error) => e.message);
  t.regex(bad, /not a valid interface name/);
});
