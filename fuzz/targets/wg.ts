// The WireGuard receive path: Device.receiveDatagram with a fake io.
//   tag 0: a datagram to the responder of the wireguard-go capture (its static key from the
//          fixture README), whose peer is the capture's initiator: mutations of the real
//          initiation, response and transport messages, and of a cookie reply it made itself;
//   tag 1: a datagram to b of an in-memory pair a ⇄ b with a live session (mutated transport,
//          handshake and keepalive messages that a really sent);
//   tag 2: an inner packet that a seals and b opens: b's checks of the decrypted packet.
// Invariants: nothing throws; what b writes to its TUN is a whole IP packet from a's allowed IPs.
import { fileURLToPath } from 'node:url';
import { MESSAGE_TRANSPORT_HEADER_SIZE, parseKeyBase64 } from '../../src/noise/index.ts';
import { Device, type DeviceIO } from '../../src/wg/device.ts';
import { Endpoint } from '../../src/wg/endpoint.ts';
import { readPcap, udpOfFrame } from '../../test/helpers/pcap.ts';
import { FakeNet, cidr, connect, type Node } from '../../test/helpers/wgnet.ts';
import { mutatedBytes, tagged, type FuzzTarget } from '../lib.ts';

const FIXTURES = new URL('../../../shared/fixtures/wireguard-go-v6/', import.meta.url);
const RESPONDER_PRIVATE = 'eE9CQcGGLhXLZUXJTLCaZeM9mvGc/i65Wx+a4MBTI34=';
const INITIATOR_PUBLIC = '52nGXqYOaYPiTJ5pci1Cdp4p7SI20iLaW9PAyeFZxis=';
const HEADROOM = MESSAGE_TRANSPORT_HEADER_SIZE;

class Clock {
  t = 5_000_000;
  now(): number {
    return this.t;
  }
  wallMs(): number {
    return 1_700_000_000_000 + this.t;
  }
}

export async function wgTarget(): Promise<FuzzTarget> {
  const hs = await readPcap(fileURLToPath(new URL('wg-handshake.pcap', FIXTURES)));
  const inner = await readPcap(fileURLToPath(new URL('inner.pcap', FIXTURES)));
  const captured = hs.packets.map((f) => udpOfFrame(f, hs.linkType)).filter((d) => d !== null).map((d) => new Uint8Array(d.payload));
  const initiatorEp = Endpoint.parse('[fd00:b1::1]:51820');

  let clock!: Clock;
  let fixture!: Device;
  let net!: FakeNet;
  let a!: Node;
  let b!: Node;
  let cookieReply: Uint8Array | null = null;

  const checkTun = (buf: Uint8Array, off: number, len: number): void => {
    if (off < 0 || len <= 0 || off + len > buf.length) throw new Error(`writeTun outside the buffer: ${off}+${len} of ${buf.length}`);
    const v = buf[off] >> 4;
    const total = v === 4 ? (buf[off + 2] << 8) | buf[off + 3] : v === 6 ? 40 + ((buf[off + 4] << 8) | buf[off + 5]) : -1;
    if (total !== len) throw new Error(`writeTun of ${len} bytes whose header says ${total}`);
  };
  const io: DeviceIO = {
    sendUdp: (buf, off, len) => {
      if (off < 0 || off + len > buf.length) throw new Error('sendUdp outside the buffer');
      if (buf[off] === 3 && cookieReply === null) cookieReply = buf.slice(off, off + len);
    },
    writeTun: checkTun,
  };

  const reset = (): void => {
    clock = new Clock();
    fixture = new Device(io, { clock, jitterMs: () => 0 });
    fixture.setPrivateKey(parseKeyBase64(RESPONDER_PRIVATE));
    const p = fixture.addPeer(parseKeyBase64(INITIATOR_PUBLIC));
    fixture.allowedIps.insert(cidr('fdaa:0:1:a7b:1::1/128'), p);
    net = new FakeNet();
    a = net.add('a', '[2001:db8::1]:51820');
    b = net.add('b', '[2001:db8::2]:51821');
    connect(a, b, ['10.0.0.0/8', 'fd00::/16'], ['0.0.0.0/0', '::/0']);
    // b's TUN writes are checked as they happen
    const bio = b.device.io as { writeTun: DeviceIO['writeTun'] };
    const record = bio.writeTun;
    bio.writeTun = (buf, off, len, peer) => {
      checkTun(buf, off, len);
      record(buf, off, len, peer);
    };
  };
  reset();

  // seeds: the capture, a cookie reply (the fixture device under load answers the initiation
  // with one), and what a really sends b
  const seeds: Uint8Array[] = captured.map((d) => tagged(0, d));
  const initiation = captured.find((d) => d[0] === 1)!;
  const loaded = new Device(io, { clock: new Clock(), underLoadHandshakesPerSecond: 0 });
  loaded.setPrivateKey(parseKeyBase64(RESPONDER_PRIVATE));
  loaded.addPeer(parseKeyBase64(INITIATOR_PUBLIC));
  loaded.receiveDatagram(initiation, 0, initiation.length, initiatorEp);
  loaded.receiveDatagram(initiation, 0, initiation.length, initiatorEp);
  if (cookieReply !== null) seeds.push(tagged(0, cookieReply));
  const live: Uint8Array[] = [];
  net.tap = (_from, _to, data) => {
    live.push(data.slice());
    return true;
  };
  for (const pkt of inner.packets.slice(0, 6)) sendInner(new Uint8Array(pkt));
  net.advance(12_000); // keepalives
  net.tap = null;
  for (const d of live) seeds.push(tagged(1, d));
  for (const pkt of inner.packets.slice(0, 12)) seeds.push(tagged(2, new Uint8Array(pkt)));
  reset();

  function sendInner(pkt: Uint8Array): void {
    const room = HEADROOM + a.device.packetRoom(Math.max(1, pkt.length));
    const buf = new Uint8Array(room);
    buf.set(pkt, HEADROOM);
    a.device.sendPacket(buf, HEADROOM, pkt.length);
    net.pump(64);
  }

  const from = new Endpoint();
  return {
    name: 'wg',
    seeds,
    arbitrary: (s) => mutatedBytes(s, 2048),
    run(input: Uint8Array): void {
      if (input.length === 0) return;
      const body = input.subarray(1);
      clock.t += 7;
      net.clock.t += 7;
      switch (input[0] % 3) {
        case 0: {
          from.copyFrom(initiatorEp);
          const buf = body.slice(); // opened in place
          fixture.receiveDatagram(buf, 0, buf.length, from);
          if ((input[0] & 0x80) !== 0) fixture.tick();
          break;
        }
        case 1: {
          from.copyFrom(a.endpoint);
          const buf = body.slice();
          b.device.receiveDatagram(buf, 0, buf.length, from);
          net.pump(64);
          break;
        }
        default:
          sendInner(body);
      }
      if (b.tun.length > 64) b.tun.length = 0;
      if (a.tun.length > 64) a.tun.length = 0;
    },
    reset,
  };
}
