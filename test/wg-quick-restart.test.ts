// sixpn-wg brought up by the stock wg-quick (WG_QUICK_USERSPACE_IMPLEMENTATION), killed with
// SIGKILL (a crash: its TUN goes, its UAPI socket stays behind), and brought up again by wg-quick
// with the same file: the stale socket is replaced, the configuration applies again, and traffic
// to a wireguard-go peer (which still holds the dead process's session) flows again (issue 11).
import test from 'ava';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, SIXPN_WG, isRoot, sh } from './helpers/netns.ts';

const rootTest = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root

async function daemonPid(ifname: string): Promise<number> {
  const out = await sh('pgrep', ['-f', `sixpn-wg.ts --foreground ${ifname}$`]).catch(() => '');
  return Number(out.trim().split('\n')[0] || 0);
}

rootTest('sixpn-wg under wg-quick: SIGKILL, then wg-quick up again replaces the stale socket and traffic flows again', async (t) => {
  t.timeout(90_000);
  const lab = new Lab('wr');
  t.teardown(() => lab.cleanup());
  const nsA = await lab.ns('A');
  const nsB = await lab.ns('B');
  await lab.veth(nsA, ['fd00:b3::1/64'], nsB, ['fd00:b3::2/64']);
  const ifA = lab.name('wa');
  const ifB = lab.name('wb');
  const a = await lab.genkey();
  const b = await lab.genkey();
  // B: wireguard-go, configured with wg
  await lab.wg(nsB, 'wggo', ifB);
  await lab.exec(nsB, 'wg', ['set', ifB, 'private-key', b.file, 'listen-port', '51831', 'peer', a.pub, 'allowed-ips', 'fd98::1/128']);
  await lab.exec(nsB, 'ip', ['addr', 'add', 'fd98::2/64', 'dev', ifB, 'nodad']);
  await lab.exec(nsB, 'ip', ['link', 'set', ifB, 'up']);
  // A: sixpn-wg through wg-quick
  const conf = join(lab.dir, `${ifA}.conf`);
  writeFileSync(conf, `[Interface]\nPrivateKey = ${a.priv}\nAddress = fd98::1/64\nListenPort = 51830\n\n` +
    `[Peer]\nPublicKey = ${b.pub}\nAllowedIPs = fd98::2/128\nEndpoint = [fd00:b3::2]:51831\n`, { mode: 0o600 });
  lab.ifnames.push(ifA);
  const env = { ...process.env, WG_QUICK_USERSPACE_IMPLEMENTATION: SIXPN_WG, SIXPN_NODE: process.execPath };
  const ping = () => lab.exec(nsA, 'ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', 'fd98::2'], { timeout: 20_000 });
  await lab.exec(nsA, 'wg-quick', ['up', conf], { env });
  t.regex(await ping(), / 3 received/);

  const pid = await daemonPid(ifA);
  t.true(pid > 0, 'the sixpn-wg daemon runs');
  process.kill(pid, 'SIGKILL');
  const sock = `/var/run/wireguard/${ifA}.sock`;
  for (let i = 0; i < 50 && (await lab.exec(nsA, 'ip', ['link', 'show', 'dev', ifA]).then(() => true, () => false)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  t.true(existsSync(sock), 'the dead daemon left its UAPI socket behind');

  const t0 = performance.now();
  await lab.exec(nsA, 'wg-quick', ['up', conf], { env });
  const show = await lab.exec(nsA, 'wg', ['show', ifA]);
  t.regex(show, /listening port: 51830/);
  t.regex(show, /allowed ips: fd98::2\/128/);
  const again = await ping();
  t.regex(again, / 3 received/, again);
  t.log(`wg-quick up again to 3 pings answered: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  t.not(await daemonPid(ifA), pid, 'a new daemon');
  await lab.exec(nsA, 'wg-quick', ['down', conf], { env });
  t.false(existsSync(sock), 'wg-quick down removes the socket');
});
