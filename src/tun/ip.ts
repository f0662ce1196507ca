/**
 * Interface and namespace setup through iproute2's `ip` (no netlink code of our own). Setup is
 * rare and off the packet path; each call is one `ip` process, and a failure throws an
 * {@link IpCommandError} that carries the command line and ip's own message.
 */
import { execFile } from 'node:child_process';

/** Where to run: `netns` is a named namespace (`ip -n NAME …`); default: ours. */
export interface NetnsOption {
  netns?: string;
}

export class IpCommandError extends Error {
  readonly code = 'ERR_IP_COMMAND';
  readonly args: readonly string[];
  readonly stderr: string;
  readonly exitCode: number | null;

  constructor(args: readonly string[], stderr: string, exitCode: number | null, cause?: unknown) {
    super(`ip ${args.join(' ')}: ${stderr.trim() || `exit code ${exitCode}`}`, { cause });
    this.name = 'IpCommandError';
    this.args = args;
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

const IP_BIN = process.env.SIXPN_IP ?? 'ip';
const IP_TIMEOUT_MS = 10_000;

/** Runs `ip [-n NETNS] ARGS…` and returns its stdout. */
export function ip(args: readonly string[], opts: NetnsOption = {}): Promise<string> {
  const full = opts.netns === undefined ? [...args] : ['-n', opts.netns, ...args];
  return new Promise((resolve, reject) => {
    execFile(IP_BIN, full, { timeout: IP_TIMEOUT_MS, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else {
        const exitCode = typeof err.code === 'number' ? err.code : null;
        reject(new IpCommandError(full, stderr || err.message, exitCode, err));
      }
    });
  });
}

/** `ip netns add NAME` */
export async function netnsAdd(name: string): Promise<void> {
  await ip(['netns', 'add', name]);
}

/** `ip netns delete NAME`; with `ignoreMissing`, a namespace that is already gone is fine. */
export async function netnsDelete(name: string, opts: { ignoreMissing?: boolean } = {}): Promise<void> {
  try {
    await ip(['netns', 'delete', name]);
  } catch (err) {
    if (opts.ignoreMissing === true && err instanceof IpCommandError && /No such file/.test(err.stderr)) return;
    throw err;
  }
}

/** `ip link set dev DEV up [mtu MTU]` */
export async function linkUp(dev: string, opts: NetnsOption & { mtu?: number } = {}): Promise<void> {
  const mtu = opts.mtu === undefined ? [] : ['mtu', String(opts.mtu)];
  await ip(['link', 'set', 'dev', dev, 'up', ...mtu], opts);
}

/** `ip link set dev DEV mtu MTU` */
export async function linkSetMtu(dev: string, mtu: number, opts: NetnsOption = {}): Promise<void> {
  await ip(['link', 'set', 'dev', dev, 'mtu', String(mtu)], opts);
}

/** `ip link set dev DEV netns TARGET` — moves DEV (from `opts.netns`) into namespace TARGET. */
export async function linkSetNetns(dev: string, target: string, opts: NetnsOption = {}): Promise<void> {
  await ip(['link', 'set', 'dev', dev, 'netns', target], opts);
}

/**
 * `ip link add NAME type TYPE` (dummy, …); for `veth`, `peer` names the other end and
 * `peerNetns` where it goes.
 */
export async function linkAdd(
  name: string,
  type: string,
  opts: NetnsOption & { peer?: string; peerNetns?: string } = {},
): Promise<void> {
  const peer = opts.peer === undefined ? [] : ['peer', 'name', opts.peer];
  const peerNetns = opts.peer !== undefined && opts.peerNetns !== undefined ? ['netns', opts.peerNetns] : [];
  await ip(['link', 'add', name, 'type', type, ...peer, ...peerNetns], opts);
}

/** `ip link delete dev DEV` */
export async function linkDelete(dev: string, opts: NetnsOption = {}): Promise<void> {
  await ip(['link', 'delete', 'dev', dev], opts);
}

/**
 * `ip addr add CIDR [peer PEER] dev DEV [nodad]` — IPv4 or IPv6 by the address. `peer`
 * installs a route to the peer prefix through DEV (point-to-point links such as a TUN);
 * `nodad` skips IPv6 duplicate address detection, so the address is usable at once.
 */
export async function addrAdd(
  dev: string,
  cidr: string,
  opts: NetnsOption & { peer?: string; nodad?: boolean } = {},
): Promise<void> {
  const peer = opts.peer === undefined ? [] : ['peer', opts.peer];
  const nodad = opts.nodad === true ? ['nodad'] : [];
  await ip(['addr', 'add', cidr, ...peer, 'dev', dev, ...nodad], opts);
}

/**
 * `ip route add PREFIX dev DEV [via GW] [src SRC] [mtu MTU]`; IPv6 if the prefix or gateway is,
 * or `family: 6` (for `default`).
 */
export async function routeAdd(
  prefix: string,
  dev: string,
  opts: NetnsOption & { family?: 4 | 6; via?: string; src?: string; mtu?: number } = {},
): Promise<void> {
  const v6 = opts.family === 6 || prefix.includes(':') || opts.via?.includes(':') === true;
  const family = v6 ? ['-6'] : opts.family === 4 ? ['-4'] : [];
  const via = opts.via === undefined ? [] : ['via', opts.via];
  const src = opts.src === undefined ? [] : ['src', opts.src];
  const mtu = opts.mtu === undefined ? [] : ['mtu', String(opts.mtu)];
  await ip([...family, 'route', 'add', prefix, ...via, 'dev', dev, ...src, ...mtu], opts);
}
