#!/usr/bin/env bash
# Captures the router pcap fixtures (pcaps/router-*.pcap) from a live `sixpn demo --keep`.
#
#   bin/sixpn demo --keep            # prints "sixpn demo TAG: …; files in DIR"
#   scripts/capture-pcaps.sh TAG DIR [OUT]
#
# Every capture is tcpdump on a machine's TUN inside the machine's namespace (link type RAW),
# one file per direction: OUT/router-NAME.MACHINE.out.pcap holds what the machine sent (-Q out:
# what the router read from the TUN), router-NAME.MACHINE.in.pcap what the router wrote into it.
# Traffic comes from real programs (ping, ncat, dig) run inside the demo's machine namespaces.
# The topology the captures were made under is copied to OUT/router-topology.json.
# Run as root, after the demo finished (web3 stopped, db2 migrated from ord1 to syd1).
set -euo pipefail
tag=${1:?usage: capture-pcaps.sh TAG DEMO_DIR [OUT]}
dir=${2:?usage: capture-pcaps.sh TAG DEMO_DIR [OUT]}
out=${3:-pcaps}
mkdir -p "$out"
TCPDUMP=/usr/bin/tcpdump
IP=/usr/sbin/ip
[ -x "$IP" ] || IP=/usr/bin/ip

ns() { local s="${tag}$1"; s="${s}00000000000000"; printf '%s' "${s:0:14}"; }
ifname() { "$IP" -n "$(ns "$1")" -o link show | grep -o '6pn[0-9a-f]*' | head -1; }
run() { local m=$1; shift; "$IP" netns exec "$(ns "$m")" "$@"; }

# Addresses (see the topology): acme 0x18, initech 0x863; hosts ams1 a7b:1, ord1 a7b:2, syd1 a7b:3
web1=fdaa:0:18:a7b:1:0:101:2
web2=fdaa:0:18:a7b:2:0:102:2
web3=fdaa:0:18:a7b:3:0:103:2
db1=fdaa:0:18:a7b:1:0:201:2
db2=fdaa:0:18:a7b:3:0:202:2
db2old=fdaa:0:18:a7b:2:0:202:2
led1=fdaa:0:863:a7b:1:0:301:2
led2=fdaa:0:863:a7b:3:0:302:2

pids=()
# cap NAME MACHINE…: starts tcpdump on each machine's TUN, both directions in separate files
cap() {
  local name=$1; shift
  pids=()
  for m in "$@"; do
    local i; i=$(ifname "$m")
    for d in out in; do
      # not through run(): `ip netns exec` execs tcpdump, so $! is tcpdump itself
      "$IP" netns exec "$(ns "$m")" "$TCPDUMP" -Z root -i "$i" -Q "$d" -U -w "$out/router-$name.$m.$d.pcap" 2>/dev/null &
      pids+=($!)
    done
  done
  sleep 2 # tcpdump needs a moment before it sees packets
}
endcap() {
  sleep 1
  kill -INT "${pids[@]}"
  wait "${pids[@]}" 2>/dev/null || true
}

cp "$dir/topology.json" "$out/router-topology.json"

# 1. ping, same org, same host
cap ping-local web1 db1
run web1 ping -6 -c 2 -i 0.3 -W 2 $db1 || true
endcap

# 2. ping, same org, across hosts (ams1 → ord1 over the mesh)
cap ping-mesh web1 web2
run web1 ping -6 -c 2 -i 0.3 -W 2 $web2 || true
endcap

# 3. TCP across hosts: an ncat echo server on web2, an ncat client on web1
"$IP" netns exec "$(ns web2)" ncat -6 -l 7001 --exec /bin/cat & srv=$!
sleep 0.5
cap tcp-mesh web1 web2
(echo hello-6pn; sleep 1) | run web1 ncat -6 -w 3 $web2 7001 || true
endcap
kill $srv 2>/dev/null || true; wait $srv 2>/dev/null || true

# 4. UDP DNS to fdaa::3 (answered by the host's DNS server)
cap dns web1
run web1 dig +time=2 +tries=1 AAAA web.internal @fdaa::3 || true
run web1 dig +time=2 +tries=1 TXT _apps.internal @fdaa::3 || true
endcap

# 5. across orgs: acme's web1 → initech's led1 (same host) and led2 (syd1), ping and TCP
cap cross-org web1 led1
run web1 ping -6 -c 1 -W 1 $led1 || true
run web1 ping -6 -c 1 -W 1 $led2 || true
run web1 ncat -6 -w 2 $led1 7000 </dev/null || true
endcap

# 6. a spoofed source: web1 sends with web2's address
i=$(ifname web1)
"$IP" -n "$(ns web1)" addr add $web2/128 dev "$i" nodad
cap spoof web1 db1
run web1 ping -6 -c 1 -W 1 -I $web2 $db1 || true
endcap
"$IP" -n "$(ns web1)" addr del $web2/128 dev "$i"

# 7. unreachable: a stopped machine (web3 on syd1), an unknown instance on ord1, an unknown host,
#    and the Internet (the demo hosts have no egress)
cap unreachable web1
run web1 ping -6 -c 1 -W 1 $web3 || true
run web1 ping -6 -c 1 -W 1 fdaa:0:18:a7b:2:0:999:2 || true
run web1 ping -6 -c 1 -W 1 fdaa:0:18:dead:beef:0:1:2 || true
run web1 ping -6 -c 1 -W 1 2001:db8::1 || true
endcap

# 8. migration: db2 moved ord1 → syd1; web1 uses its old address (ping, TCP to the demo's echo
#    server on port 7000, UDP to an ncat UDP echo), then its new one
"$IP" netns exec "$(ns db2)" ncat -6 -u -l 7002 --exec /bin/cat & usrv=$!
sleep 0.5
cap migrated web1 db2
run web1 ping -6 -c 2 -i 0.3 -W 2 $db2old || true
(echo hello-old-address; sleep 1) | run web1 ncat -6 -w 3 $db2old 7000 || true
(echo hello-udp; sleep 1) | run web1 ncat -6 -u -w 2 $db2old 7002 || true
run web1 ping -6 -c 1 -W 2 $db2 || true
endcap
kill $usrv 2>/dev/null || true; wait $usrv 2>/dev/null || true

# 9. hop limit: 1 expires on ams1; 2 reaches db1 (same host) but expires on ord1 for web2
cap hop-limit web1 db1 web2
run web1 ping -6 -c 1 -W 1 -t 1 $db1 || true
run web1 ping -6 -c 1 -W 1 -t 1 $web2 || true
run web1 ping -6 -c 1 -W 1 -t 2 $db1 || true
run web1 ping -6 -c 1 -W 1 -t 2 $web2 || true
endcap

# 10. too big: web1's TUN MTU raised to 1500, a 1448-byte echo across hosts (mesh MTU 1420)
i=$(ifname web1)
"$IP" -n "$(ns web1)" link set "$i" mtu 1500
cap too-big web1 web2
run web1 ping -6 -c 1 -W 1 -M do -s 1400 $web2 || true
run web1 ping -6 -c 1 -W 2 -s 1400 $web2 || true
endcap
"$IP" -n "$(ns web1)" link set "$i" mtu 1420

# 11. not routed: multicast and link-local
i=$(ifname web1)
cap not-unicast web1
run web1 ping -6 -c 1 -W 1 "ff02::1%$i" || true
run web1 ping -6 -c 1 -W 1 "fe80::1%$i" || true
endcap

ls -l "$out"/router-*
