#!/usr/bin/env bash
# Builds, once per machine, the small VM that test/wg-kernel.test.ts boots to talk to the Linux
# kernel's own WireGuard (this machine's kernel has none): Debian's packaged kernel, fetched
# from the Debian archive with `apt-get download`, and an initramfs holding busybox-static,
# iproute2's `ip`, `wg`, `iperf3`, their shared libraries, wireguard.ko and the virtio NIC
# modules (with their dependencies, in load order), and an /init that brings up lo and eth0 and
# then runs one shell command per line read from the serial console, each answered by
# "@@RC <id> <status>". Nothing here is committed; the result is cached in
#   ${SIXPN_VM_CACHE:-/var/cache/sixpn-test-vm}/<kernel package>_<version>_<recipe hash>/
# (rebuilt when missing or when this script changes). Prints that directory, which holds
# `vmlinuz`, `initrd.gz` and `kernel-release`. Needs root, apt-get, busybox-static, cpio.
set -euo pipefail
export LC_ALL=C

CACHE_ROOT=${SIXPN_VM_CACHE:-/var/cache/sixpn-test-vm}
SELF=$(readlink -f "$0")
RECIPE=$(sha256sum "$SELF" | cut -c1-12)
BUSYBOX=/usr/bin/busybox
log() { echo "kernel-vm: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
for tool in apt-get apt-cache dpkg-deb cpio gzip ldd flock "$BUSYBOX"; do
  command -v "$tool" >/dev/null || die "missing $tool (scripts/setup.sh installs busybox-static and cpio)"
done
if ldd "$BUSYBOX" >/dev/null 2>&1; then die "$BUSYBOX is not static (install busybox-static)"; fi

# The kernel package that linux-image-amd64 currently depends on, and its candidate version.
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
pkg=$(kernel_package || true)
if [ -z "$pkg" ]; then
  log "no package lists for linux-image-amd64; apt-get update"
  apt-get update -q >/dev/null 2>&1 || true
  pkg=$(kernel_package || true)
fi
mkdir -p "$CACHE_ROOT"
if [ -z "$pkg" ]; then
  # offline and no lists: any earlier build of this recipe will do
  prev=$(ls -1dt "$CACHE_ROOT"/*_"$RECIPE" 2>/dev/null | head -1 || true)
  [ -n "$prev" ] && [ -f "$prev/initrd.gz" ] && { echo "$prev"; exit 0; }
  die "cannot find the kernel package linux-image-amd64 depends on (apt-get update?)"
fi
ver=$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" { print $2; exit }')
[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "no candidate version of $pkg"
OUT="$CACHE_ROOT/${pkg}_${ver//[^A-Za-z0-9.+-]/_}_$RECIPE"

exec 9>"$CACHE_ROOT/.lock"
flock 9
if [ -f "$OUT/initrd.gz" ] && [ -f "$OUT/vmlinuz" ]; then echo "$OUT"; exit 0; fi

WORK=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
log "building $OUT"
log "apt-get download $pkg=$ver"
apt-get download -q "$pkg=$ver" >/dev/null 2>apt.err || { cat apt.err >&2; die "apt-get download $pkg failed"; }
deb=$(ls -1 ./*.deb | head -1)
dpkg-deb -x "$deb" kpkg
rm -f "$deb"
krel=$(ls -1 kpkg/lib/modules | head -1)
[ -n "$krel" ] || die "no modules in $pkg"
MODDIR="kpkg/lib/modules/$krel"
"$BUSYBOX" depmod -b kpkg "$krel"

# Module closure of wireguard + the virtio NIC, in load order (dependencies first).
declare -A deps=() seen=() byname=()
while IFS= read -r line; do
  mod=${line%%:*}
  deps[$mod]=${line#*:}
  name=${mod##*/}
  name=${name%%.ko*}
  byname[${name//-/_}]=$mod
done <"$MODDIR/modules.dep"
path_of() { # module name -> path relative to the modules dir
  [ -n "${byname[$1]:-}" ] && echo "${byname[$1]}"
}
order=()
visit() {
  local p=$1 d
  [ -n "${seen[$p]:-}" ] && return 0
  seen[$p]=1
  for d in ${deps[$p]}; do visit "$d"; done
  order+=("$p")
}
for m in virtio_pci virtio_net wireguard; do
  p=$(path_of "$m") || die "module $m not in $pkg"
  visit "$p"
done

R=rootfs
mkdir -p $R/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,var/run/wireguard,lib/modules}
cp "$BUSYBOX" $R/bin/busybox
for a in $("$BUSYBOX" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
: >$R/etc/vm-modules
for p in "${order[@]}"; do
  f=$(basename "$p")
  case "$f" in
    *.ko) cp "$MODDIR/$p" "$R/lib/modules/$f" ;;
    *.ko.xz) xz -dc "$MODDIR/$p" >"$R/lib/modules/${f%.xz}"; f=${f%.xz} ;;
    *.ko.zst) zstd -qdc "$MODDIR/$p" >"$R/lib/modules/${f%.zst}"; f=${f%.zst} ;;
    *) die "unexpected module file $f" ;;
  esac
  echo "$f" >>$R/etc/vm-modules
done

# iproute2's ip (named exactly `ip`: iproute2 dispatches on its own name), wg, iperf3 and their
# libraries; busybox's shell runs its own `ip` applet for a bare `ip`, so /init and the test
# call /usr/sbin/ip by full path.
copy_bin() {
  local src=$1 dst=$2 lib
  cp -L "$src" "$R$dst"
  for lib in $(ldd "$src" | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]+ \(/ { print $1 }'); do
    mkdir -p "$R$(dirname "$lib")"
    [ -e "$R$lib" ] || cp -L "$lib" "$R$lib"
  done
}
copy_bin "$(command -v ip)" /usr/sbin/ip
copy_bin "$(command -v wg)" /usr/bin/wg
copy_bin "$(command -v iperf3)" /usr/bin/iperf3
# the dynamic loader under its canonical name
[ -e $R/lib64/ld-linux-x86-64.so.2 ] || { mkdir -p $R/lib64; cp -L /lib64/ld-linux-x86-64.so.2 $R/lib64/; }
echo 'root:x:0:0:root:/:/bin/sh' >$R/etc/passwd
echo 'root:x:0:' >$R/etc/group
printf '127.0.0.1 localhost\n::1 localhost\n' >$R/etc/hosts
mknod -m 600 $R/dev/console c 5 1
mknod -m 666 $R/dev/null c 1 3

cat >$R/init <<'EOF'
#!/bin/sh
# sixpn test VM: load modules, bring up lo and eth0, then run the commands the test sends on
# the console, one per line "<id> <shell command>", each in a subshell (an `exit` must not end
# init), answering "@@RC <id> <exit status>".
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ TERM=dumb WG_COLOR_MODE=never
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /var/run/wireguard
dmesg -n 1
for m in $(cat /etc/vm-modules); do insmod "/lib/modules/$m" || echo "@@MODFAIL $m"; done
/usr/sbin/ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
/usr/sbin/ip link set eth0 up || echo "@@NOETH0"
stty -echo 2>/dev/null
echo "@@READY $(uname -r) $(cut -d' ' -f1 /proc/uptime)"
while read -r id cmd; do
  (eval "$cmd") </dev/null 2>&1
  echo "@@RC $id $?"
done
poweroff -f
EOF
chmod 755 $R/init

(cd $R && find . -print0 | sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -6 >initrd.gz
mkdir -p staged
cp kpkg/boot/vmlinuz-"$krel" staged/vmlinuz
mv initrd.gz staged/initrd.gz
echo "$krel" >staged/kernel-release
printf '%s\n' "${order[@]}" >staged/modules
rm -rf "$OUT"
mv staged "$OUT"
log "built $OUT ($(du -sh "$OUT" | cut -f1))"
echo "$OUT"
