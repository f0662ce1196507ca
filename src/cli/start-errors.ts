// Why a program could not start, in one line with what to do: the TUN device and the
// privileges it needs are the usual reasons (not root, no /dev/net/tun, no CAP_NET_ADMIN).
export function explainStartError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = e?.message ?? String(err);
  const root = process.getuid?.() === 0;
  if (/\/dev\/net\/tun/.test(message) && e.code === 'ENOENT') {
    return 'no /dev/net/tun (the kernel\'s TUN driver): modprobe tun, or in a container pass --device /dev/net/tun';
  }
  if ((e.code === 'EACCES' || e.code === 'EPERM') && /tun|TUNSETIFF|netns|netlink|ip /i.test(message)) {
    return root
      ? `not allowed to create network devices (${e.code}): this process lacks CAP_NET_ADMIN — run it with that capability (setcap cap_net_admin+ep, AmbientCapabilities=CAP_NET_ADMIN in a systemd unit, --cap-add NET_ADMIN in a container)`
      : `not root: creating a TUN device needs root or CAP_NET_ADMIN (${e.code}) — run it with sudo, or grant CAP_NET_ADMIN`;
  }
  if (e.code === 'EBUSY' && /TUNSETIFF/.test(message)) {
    return `${message}: the interface is in use by another process (a sixpn-wg or wireguard-go already running for it?)`;
  }
  return message;
}
