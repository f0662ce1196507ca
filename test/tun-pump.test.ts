// The packet pump (src/tun/pump.ts) against the kernel, as the egress and the DNS TUN use it:
// readiness from libuv (no polling loop here), replies built in place in the pump's write slots
// (rawSlot/commitRaw) and written by autoFlush at the end of the task, with no flush() call;
// what cannot be written is counted. iputils ping in a namespace made per test (root).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { TunPump, VNET_HDR_LEN, addrAdd, close, linkSetNetns, linkUp, netnsAdd, netnsDelete, tunOpen } from '../src/tun/index.ts';
import { isRoot } from './helpers/netns.ts';

const rootTest = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root
const TAG = (process.pid % 46656).toString(36);
let seq = 0;

async function plumbedTun(t: ExecutionContext, vnetHdr: boolean): Promise<{ fd: number; ns: string }> {
  const ns = `sixpn-pump-${process.pid}-${seq}`;
  const dev = `sxp${TAG}n${(seq++).toString(36)}`;
  await netnsAdd(ns);
  t.teardown(() => netnsDelete(ns, { ignoreMissing: true }));
  const q = tunOpen(dev, { vnetHdr });
  t.teardown(() => close(q.fd));
  await linkSetNetns(dev, ns);
  await linkUp('lo', { netns: ns });
  await linkUp(dev, { netns: ns, mtu: 1420 });
  await addrAdd(dev, 'fd00:70::1/128', { netns: ns, peer: 'fd00:70::2/128', nodad: true });
  return { fd: q.fd, ns };
}

function ping(ns: string, count: number): Promise<string> {
  const args = ['netns', 'exec', ns, 'ping', '-6', '-n', '-c', String(count), '-i', '0.2', '-W', '2', 'fd00:70::2'];
  return new Promise((resolve) => execFile('ip', args, { timeout: 20_000 }, (_err, stdout) => resolve(stdout)));
}

/** Builds at slab[at] the echo reply to the request at buf[off] (ICMPv6 checksum adjusted for the type change). */
function echoReply(buf: Uint8Array, off: number, len: number, slab: Uint8Array, at: number): void {
  slab.set(buf.subarray(off, off + len), at);
  slab.set(buf.subarray(off + 24, off + 40), at + 8); // source ← destination
  slab.set(buf.subarray(off + 8, off + 24), at + 24); // destination ← source
  slab[at + 40] = 129;
  // the type goes from 128 to 129: the one's complement sum grows by 0x0100, the checksum shrinks by it
  let sum = ((slab[at + 42] << 8) | slab[at + 43]) - 0x0100;
  if (sum < 0) sum += 0xffff;
  slab[at + 42] = sum >> 8;
  slab[at + 43] = sum & 0xff;
}

for (const vnet of [false, true]) {
  rootTest(`a ${vnet ? 'vnet_hdr' : 'plain'} pump answers ping: in-place replies, written at the end of the task; oversize counted`, async (t) => {
    const { fd, ns } = await plumbedTun(t, vnet);
    const h = vnet ? VNET_HDR_LEN : 0;
    let requests = 0;
    let afterReads = 0;
    const pump: TunPump = new TunPump(fd, {
      vnet, cut: false, headroom: 16, readBatch: 8, readSlot: 2048, writeBatch: 4, writeSlot: 2048, autoFlush: true,
      onPacket: (buf, off, len) => {
        const p = off + h; // the IP packet (behind its virtio_net_hdr on a vnet queue)
        const n = len - h;
        if (n < 48 || buf[p] >> 4 !== 6 || buf[p + 6] !== 58 || buf[p + 40] !== 128) return; // RS, MLD…
        requests++;
        const at = pump.rawSlot(len);
        if (at < 0) return;
        pump.slab.fill(0, at, at + h); // no offload asked
        echoReply(buf, p, n, pump.slab, at + h);
        pump.commitRaw(len);
      },
      afterRead: () => afterReads++,
      onFail: (err) => t.fail(err.message),
    });
    t.teardown(() => pump.stop());
    const out = await ping(ns, 5);
    t.regex(out, / 5 received/, out);
    t.is(requests, 5);
    t.true(afterReads >= 5);
    t.is(pump.queued, 0, 'autoFlush wrote every reply');
    t.is(pump.counters.txQueueFull, 0);
    t.deepEqual(pump.counters.txErrors, {});
    t.is(pump.counters.rxErrors, 0);
    t.is(pump.rawSlot(2048 + 1), -1, 'a record longer than a slot has no slot');
    pump.write(new Uint8Array(4096), 0, 4096);
    t.is(pump.counters.txTooLong, 2);
    t.is(pump.queued, 0);
  });
}
