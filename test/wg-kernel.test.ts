// sixpn-wg against the Linux kernel's own WireGuard (issue 6, behaviour 9). This machine's
// kernel has no wireguard module, so the peer is Debian's packaged kernel booted under QEMU
// (TCG) with a virtio NIC on a tap device in a test namespace; sixpn-wg runs in that namespace.
// See test/helpers/kernel-vm.ts and scripts/kernel-vm.sh.
import test, { type ExecutionContext } from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { openSync, closeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Lab } from './helpers/netns.ts';
import { KernelVm, vmImage, vmPrerequisiteMissing, type VmImage } from './helpers/kernel-vm.ts';

// full paths: under `npx ava`, node_modules/.bin comes first on PATH
const WG = '/usr/bin/wg';
const PING = '/usr/bin/ping';
const IPERF3 = '/usr/bin/iperf3';
const NCAT = '/usr/bin/ncat';
const TCPDUMP = '/usr/bin/tcpdump';
const pexec = promisify(execFile);

const HOST = { v4: '192.168.242.1', v6: 'fd00:b2::1', in4: '10.9.0.1', in6: 'fd99::1', port: 51821 };
const VM = { v4: '192.168.242.2', v6: 'fd00:b2::2', in4: '10.9.0.2', in6: 'fd99::2', port: 51820 };

/** WireGuard handshake messages seen on the tap (initiation 148 bytes, response 92). */
class HandshakeCapture {
  readonly seen: Array<{ src: string; dst: string; kind: 'initiation' | 'response' }> = [];
  private proc!: ChildProcess;

  static async start(lab: Lab, ns: string, dev: string): Promise<HandshakeCapture> {
    const c = new HandshakeCapture();
    // message type is the first payload byte; IPv6 without extension headers: 40 + 8
    const filter = '(ip and udp and (udp[8] = 1 or udp[8] = 2)) or (ip6 and ip6[6] = 17 and (ip6[48] = 1 or ip6[48] = 2))';
    c.proc = spawn('ip', ['netns', 'exec', ns, TCPDUMP, '-i', dev, '-n', '-l', '-p', filter], { stdio: ['ignore', 'pipe', 'pipe'] });
    lab.children.push(c.proc);
    let buf = '';
    c.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /IP6? (\S+)\.\d+ > (\S+)\.\d+: UDP, length (\d+)/.exec(line);
        if (m && (m[3] === '148' || m[3] === '92')) c.seen.push({ src: m[1], dst: m[2], kind: m[3] === '148' ? 'initiation' : 'response' });
      }
    });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 20_000);
      c.proc.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (/listening on/.test(err)) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.proc.on('exit', (code) => reject(new Error(`tcpdump exited ${code}: ${err}`)));
    });
    return c;
  }

  mark(): number {
    return this.seen.length;
  }

  /**
   * The distinct sources of handshake initiations since `mark` (a retransmitted initiation
   * counts once), after waiting briefly for tcpdump to print them.
   */
  async initiatorsSince(mark: number): Promise<string[]> {
    for (let i = 0; i < 40 && !this.seen.slice(mark).some((s) => s.kind === 'initiation'); i++) await sleep(100);
    await sleep(200);
    return [...new Set(this.seen.slice(mark).filter((s) => s.kind === 'initiation').map((s) => s.src))];
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `wg show … latest-handshakes` of the only peer, in Unix seconds (0: none). */
function handshakeOf(out: string): number {
  const line = out.trim().split('\n').find((l) => l.trim() !== '');
  return line ? Number(line.trim().split(/\s+/)[1]) : 0;
}

/**
 * Waits until at least 1.1 s have passed since a handshake reported at `secs` (whole seconds)
 * on this clock, so that the next one reads as later on both sides, whatever the VM clock's
 * offset.
 */
async function afterHandshake(secs: number): Promise<void> {
  const wait = (secs + 2.1) * 1000 - Date.now();
  if (wait > 0) await sleep(wait);
}

const TITLE = 'sixpn-wg ⇄ kernel WireGuard in a QEMU VM: PSK, ping v4+v6 inside over v6 and v4 outside, TCP transfers, handshake from either side, rekey forced from each side';
const missing = vmPrerequisiteMissing([WG, PING, IPERF3, NCAT, TCPDUMP]);

if (missing) {
  test.skip(`${TITLE} — skipped: ${missing}`, () => undefined);
} else {
  test.serial(TITLE, async (t) => {
    t.timeout(900_000, 'building the VM image (first run on this machine: apt-get download of the kernel)');
    const built = Date.now();
    const image = await vmImage();
    t.log(`VM image ${image.dir} (kernel ${image.release}) ready in ${Date.now() - built} ms`);
    t.timeout(240_000, 'kernel WireGuard interop under TCG');

    const lab = new Lab('wk');
    let vm: KernelVm | undefined;
    t.teardown(async () => {
      vm?.kill();
      await lab.cleanup();
    });
    try {
      await scenario(t, lab, image, (v) => (vm = v));
    } catch (err) {
      if (vm) t.log(`VM console tail:\n${vm.tail(3000)}`);
      throw err;
    }
  });
}

async function scenario(t: ExecutionContext, lab: Lab, image: VmImage, setVm: (vm: KernelVm) => void): Promise<void> {
  const phase = (() => {
    let last = Date.now();
    return (name: string) => {
      const now = Date.now();
      t.log(`${name}: ${now - last} ms`);
      last = now;
    };
  })();
  const ns = await lab.ns('K');
  const vm = await KernelVm.boot(lab, ns, image);
  setVm(vm);
  phase(`VM boot (to a ready /init, modules loaded, eth0 up; kernel ${image.release})`);
  const tap = vm.tap;
  await lab.exec(ns, 'ip', ['addr', 'add', `${HOST.v4}/24`, 'dev', tap]);
  await lab.exec(ns, 'ip', ['addr', 'add', `${HOST.v6}/64`, 'dev', tap, 'nodad']);
  const cap = await HandshakeCapture.start(lab, ns, tap);

  // keys: A is sixpn-wg, B the kernel; A2/B2 only serve to force a rekey (set, then set back)
  const kA = await lab.genkey();
  const kA2 = await lab.genkey();
  const kB = await lab.genkey();
  const kB2 = await lab.genkey();
  const psk = (await lab.genkey()).priv;
  const pskFile = lab.file('psk', psk);

  // the kernel side: wg0 with no endpoint for sixpn-wg yet (it can only answer)
  await vm.run(`/usr/sbin/ip addr add ${VM.v4}/24 dev eth0 && /usr/sbin/ip addr add ${VM.v6}/64 dev eth0 nodad`);
  await vm.run(`echo ${kB.priv} > /tmp/kb && echo ${kB2.priv} > /tmp/kb2 && echo ${psk} > /tmp/psk && chmod 600 /tmp/kb /tmp/kb2 /tmp/psk`);
  await vm.run('/usr/sbin/ip link add wg0 type wireguard');
  const vmPeer = `peer ${kA.pub} preshared-key /tmp/psk allowed-ips ${HOST.in4}/32,${HOST.in6}/128`;
  await vm.run(`wg set wg0 private-key /tmp/kb listen-port ${VM.port} ${vmPeer}`);
  await vm.run(`/usr/sbin/ip addr add ${VM.in4}/24 dev wg0 && /usr/sbin/ip addr add ${VM.in6}/64 dev wg0 nodad && /usr/sbin/ip link set wg0 up`);

  // sixpn-wg, endpoint the VM over IPv6
  const ifA = lab.name('wg');
  await lab.wg(ns, 'sixpn', ifA);
  const hostPeer = ['peer', kB.pub, 'preshared-key', pskFile, 'allowed-ips', `${VM.in4}/32,${VM.in6}/128`];
  await lab.exec(ns, WG, ['set', ifA, 'private-key', kA.file, 'listen-port', String(HOST.port), ...hostPeer, 'endpoint', `[${VM.v6}]:${VM.port}`]);
  await lab.exec(ns, 'ip', ['addr', 'add', `${HOST.in4}/24`, 'dev', ifA]);
  await lab.exec(ns, 'ip', ['addr', 'add', `${HOST.in6}/64`, 'dev', ifA, 'nodad']);
  await lab.exec(ns, 'ip', ['link', 'set', ifA, 'up']);
  phase('configured both sides');

  const hostPing = (dst: string) => lab.exec(ns, PING, ['-c', '3', '-i', '0.2', '-W', '5', dst], { timeout: 60_000 });
  const vmPing = async (dst: string) => {
    const out = await vm.run(`${dst.includes(':') ? 'ping6' : 'ping'} -c 3 -i 0.2 -w 20 ${dst}`);
    t.regex(out, /3 packets received/, `VM ping ${dst}`);
  };
  const pingAll = async (first: 'host' | 'vm') => {
    const host = async () => {
      await hostPing(VM.in4);
      await hostPing(VM.in6);
    };
    const guest = async () => {
      await vmPing(HOST.in4);
      await vmPing(HOST.in6);
    };
    if (first === 'host') {
      await host();
      await guest();
    } else {
      await guest();
      await host();
    }
  };
  const hostHs = async () => handshakeOf(await lab.exec(ns, WG, ['show', ifA, 'latest-handshakes']));
  const vmHs = async () => handshakeOf(await vm.run('wg show wg0 latest-handshakes'));
  const iperf = async (dst: string, reverse: boolean) => {
    // the server in the VM takes a moment after each test before it accepts the next one
    for (let attempt = 1; ; attempt++) {
      const args = ['netns', 'exec', ns, IPERF3, '-c', dst, '-t', '3', '-J', ...(reverse ? ['-R'] : [])];
      // -J reports errors in its JSON on stdout, with a nonzero exit status
      const out = await pexec('ip', args, { timeout: 60_000 }).then((r) => r.stdout, (e: { stdout?: string; message: string }) => e.stdout || `{"error": ${JSON.stringify(e.message)}}`);
      const j = JSON.parse(out) as { error?: string; end?: { sum_received?: { bits_per_second: number; bytes: number } } };
      if (j.end?.sum_received) return j.end.sum_received;
      if (attempt < 10 && /Connection refused|busy/.test(j.error ?? '')) {
        await sleep(500);
        continue;
      }
      throw new Error(`iperf3 -c ${dst}${reverse ? ' -R' : ''}: ${j.error ?? 'no result'}\n${out.slice(-3000)}`);
    }
  };

  // 1. outer IPv6; sixpn-wg initiates (the kernel has no endpoint for it)
  let mark = cap.mark();
  await pingAll('host');
  t.deepEqual(await cap.initiatorsSince(mark), [HOST.v6], 'the first handshake was initiated by sixpn-wg, over IPv6');
  const hs1 = { host: await hostHs(), vm: await vmHs() };
  t.true(hs1.host > 0 && hs1.vm > 0, `latest handshakes ${JSON.stringify(hs1)}`);
  t.regex(await vm.run('wg show wg0 endpoints'), new RegExp(`\\[${HOST.v6}\\]:${HOST.port}`), 'the kernel learned the endpoint from the handshake');
  t.is((await vm.run('wg show wg0 preshared-keys')).trim().split(/\s+/)[1], psk);
  phase('1. ping v4+v6 both ways, sixpn-wg initiating, outer IPv6');

  // 2. TCP: iperf3 both directions, and byte-exact transfers with ncat / busybox nc
  await vm.run('iperf3 -s -D; i=0; until netstat -ltn | grep -q ":5201 " || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done; netstat -ltn | grep ":5201 "');
  const up = await iperf(VM.in4, false);
  const down = await iperf(VM.in6, true);
  t.log(`iperf3 TCP sixpn-wg → kernel (v4 inside, v6 outside): ${(up.bits_per_second / 1e6).toFixed(1)} Mbit/s; kernel → sixpn-wg (v6 inside): ${(down.bits_per_second / 1e6).toFixed(1)} Mbit/s`);
  t.true(up.bits_per_second > 1e6 && up.bytes > 0, 'TCP towards the kernel moved data');
  t.true(down.bits_per_second > 1e6 && down.bytes > 0, 'TCP from the kernel moved data');
  await transfers(t, lab, ns, vm);
  phase('2. TCP transfers');

  // 3. reset both sides; the kernel initiates, now over outer IPv4 (sixpn-wg has no endpoint)
  await lab.exec(ns, WG, ['set', ifA, 'peer', kB.pub, 'remove']);
  await lab.exec(ns, WG, ['set', ifA, ...hostPeer]);
  await vm.run(`wg set wg0 peer ${kA.pub} remove && wg set wg0 ${vmPeer} endpoint ${HOST.v4}:${HOST.port}`);
  t.is(await hostHs(), 0, 'sixpn-wg: fresh peer');
  t.is(await vmHs(), 0, 'kernel: fresh peer');
  mark = cap.mark();
  await pingAll('vm');
  t.deepEqual(await cap.initiatorsSince(mark), [VM.v4], 'this handshake was initiated by the kernel, over IPv4');
  t.regex(await lab.exec(ns, WG, ['show', ifA, 'endpoints']), new RegExp(`${VM.v4.replace(/\./g, '\\.')}:${VM.port}`), 'sixpn-wg learned the endpoint');
  const hs3 = { host: await hostHs(), vm: await vmHs() };
  t.true(hs3.host > 0 && hs3.vm > 0, `latest handshakes ${JSON.stringify(hs3)}`);
  phase('3. reset; ping v4+v6 both ways, kernel initiating, outer IPv4');

  // 4. rekey forced by sixpn-wg: a private key change (and back) drops its sessions; the next
  //    packet out starts a handshake with the kernel, whose peer entry stays as it was
  await afterHandshake(hs3.host);
  mark = cap.mark();
  await lab.exec(ns, WG, ['set', ifA, 'private-key', kA2.file]);
  await lab.exec(ns, WG, ['set', ifA, 'private-key', kA.file]);
  await pingAll('host');
  t.deepEqual(await cap.initiatorsSince(mark), [HOST.v4], 'the rekey was initiated by sixpn-wg');
  const hs4 = { host: await hostHs(), vm: await vmHs() };
  t.true(hs4.host > hs3.host && hs4.vm > hs3.vm, `latest handshakes advanced on both sides: ${JSON.stringify(hs3)} → ${JSON.stringify(hs4)}`);
  phase('4. rekey forced from sixpn-wg; ping v4+v6 both ways');

  // 5. rekey forced by the kernel, the same way (it ignores a private key equal to the current one)
  await afterHandshake(hs4.host);
  mark = cap.mark();
  await vm.run('wg set wg0 private-key /tmp/kb2 && wg set wg0 private-key /tmp/kb');
  await pingAll('vm');
  t.deepEqual(await cap.initiatorsSince(mark), [VM.v4], 'the rekey was initiated by the kernel');
  const hs5 = { host: await hostHs(), vm: await vmHs() };
  t.true(hs5.host > hs4.host && hs5.vm > hs4.vm, `latest handshakes advanced on both sides: ${JSON.stringify(hs4)} → ${JSON.stringify(hs5)}`);
  const up4 = await iperf(VM.in4, false);
  t.log(`iperf3 TCP sixpn-wg → kernel after both rekeys (outer IPv4): ${(up4.bits_per_second / 1e6).toFixed(1)} Mbit/s`);
  t.true(up4.bits_per_second > 1e6);
  phase('5. rekey forced from the kernel; ping v4+v6 both ways, iperf3');

  // 6. endpoint change on sixpn-wg back to outer IPv6: the session carries on, the kernel roams
  await lab.exec(ns, WG, ['set', ifA, 'peer', kB.pub, 'endpoint', `[${VM.v6}]:${VM.port}`]);
  await pingAll('host');
  t.regex(await vm.run('wg show wg0 endpoints'), new RegExp(`\\[${HOST.v6}\\]:${HOST.port}`), 'the kernel followed sixpn-wg to IPv6');
  const [, rx, tx] = (await lab.exec(ns, WG, ['show', ifA, 'transfer'])).trim().split(/\s+/).map(Number);
  const [, vrx, vtx] = (await vm.run('wg show wg0 transfer')).trim().split(/\s+/).map(Number);
  t.log(`wg show transfer: sixpn-wg rx ${rx} tx ${tx}; kernel rx ${vrx} tx ${vtx}`);
  // since the reset in step 3: the iperf3 upload one way, its ACKs and the pings the other;
  // both count whole WireGuard messages, so each side's tx is the other's rx (bar losses)
  t.true(tx > 1e6 && rx > 1e4, 'sixpn-wg counted the traffic');
  t.true(vrx <= tx && vrx > tx * 0.98, `kernel rx ${vrx} matches sixpn-wg tx ${tx}`);
  t.true(rx <= vtx && rx > vtx * 0.98, `sixpn-wg rx ${rx} matches kernel tx ${vtx}`);
  phase('6. endpoint change to outer IPv6; ping v4+v6 both ways');
  await vm.run('killall iperf3; true');
}

/** Byte-exact TCP transfers: kernel → sixpn-wg over v6 inside, sixpn-wg → kernel over v4. */
async function transfers(t: ExecutionContext, lab: Lab, ns: string, vm: KernelVm): Promise<void> {
  const size = 2 << 20;
  await vm.run(`head -c ${size} /dev/urandom > /tmp/blob`);
  const vmSum = (await vm.run('md5sum /tmp/blob')).trim().split(/\s+/)[0];
  // kernel → sixpn-wg: busybox nc sends and half-closes; ncat receives until then. (Not
  // --recv-only, nor ncat's stdin at EOF: ncat would half-close at once and busybox nc stops
  // sending when it reads EOF.)
  const recv = spawn('ip', ['netns', 'exec', ns, NCAT, '-v', '-l', HOST.in6, '5002'], { stdio: ['pipe', 'pipe', 'pipe'] });
  lab.children.push(recv);
  const md5 = createHash('md5');
  let got = 0;
  recv.stdout!.on('data', (d: Buffer) => {
    got += d.length;
    md5.update(d);
  });
  const recvDone = new Promise<number | null>((r) => recv.on('exit', (code) => r(code))).finally(() => recv.stdin!.destroy());
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`ncat did not listen: ${err}`)), 20_000);
    recv.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/Listening on/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const started = Date.now();
  await vm.run(`nc ${HOST.in6} 5002 < /tmp/blob`, 60_000);
  t.is(await recvDone, 0);
  t.is(got, size, 'kernel → sixpn-wg: every byte arrived');
  t.is(md5.digest('hex'), vmSum, 'kernel → sixpn-wg: the bytes are the ones sent');
  t.log(`nc kernel → sixpn-wg, ${size} bytes: ${Date.now() - started} ms`);

  // sixpn-wg → kernel: busybox nc listens, ncat --send-only sends and closes
  const blob = randomBytes(size);
  const file = join(lab.dir, 'blob');
  writeFileSync(file, blob);
  await vm.run('rm -f /tmp/recv; (nc -l -p 5003 > /tmp/recv &) ; sleep 0.5');
  const fd = openSync(file, 'r');
  const sendStarted = Date.now();
  const send = spawn('ip', ['netns', 'exec', ns, NCAT, '--send-only', VM.in4, '5003'], { stdio: [fd, 'ignore', 'pipe'] });
  closeSync(fd);
  lab.children.push(send);
  let sendErr = '';
  send.stderr!.on('data', (d: Buffer) => (sendErr += d.toString()));
  const code = await new Promise<number | null>((r) => send.on('exit', (c) => r(c)));
  t.is(code, 0, `ncat --send-only: ${sendErr}`);
  await vm.run('i=0; while pidof nc >/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; ! pidof nc');
  const sum = (await vm.run('md5sum /tmp/recv')).trim().split(/\s+/)[0];
  t.is(sum, createHash('md5').update(blob).digest('hex'), 'sixpn-wg → kernel: the bytes arrived intact');
  t.log(`ncat sixpn-wg → kernel, ${size} bytes: ${Date.now() - sendStarted} ms`);
}
