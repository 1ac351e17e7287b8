#!/bin/bash
# tests/chroot.sh fresh | deb DEB... - checks in a bare Debian 12, as root.
#
#   fresh  clones this repository's HEAD into a fresh debootstrap
#          --variant=minbase bookworm and runs the README's first two
#          commands there (the first two indented lines of README.md),
#          one after the other, as root from the clone, printing each
#          command's exit status and time (`make fresh-check`).
#   deb    installs the given .deb files with apt in another fresh copy,
#          runs llm-estimate on a chat and `man llm-route`, removes the
#          package with --purge and checks that none of its paths is
#          left (`make deb-check`).
#
# The minbase system is made once in $FRESH_DIR/base (default
# build-fresh/base, about 210 MB; downloads from $MIRROR) and copied for
# each run; a run's whole output is in $FRESH_DIR/NAME.log.  /proc, a new
# devpts instance and a tmpfs /dev/shm are mounted in the copy and
# unmounted on exit, whatever happened.  Exit status: 0 if every step
# passed, 1 if one failed, 2 on a usage or setup error.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${FRESH_DIR:-$top/build-fresh}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mount)"
command -v debootstrap >/dev/null ||
    die "debootstrap missing: apt-get install debootstrap"
mkdir -p "$dir" || exit 2
dir=$(cd "$dir" && pwd)

root=
mounts=()
unmount() {	# everything mounted under $root, innermost first
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}"
	done
	mounts=()
}
trap unmount EXIT
trap 'exit 130' INT TERM

base() {	# make $dir/base once
	[ -f "$dir/base/.complete" ] && return 0
	echo "=== debootstrap --variant=minbase bookworm $dir/base"
	rm -rf "$dir/base.tmp"
	local t0=$SECONDS
	debootstrap --variant=minbase bookworm "$dir/base.tmp" "$MIRROR" \
	    >"$dir/debootstrap.log" 2>&1 ||
	    { tail -n 20 "$dir/debootstrap.log"; die "debootstrap failed"; }
	rm -rf "$dir/base"
	mv "$dir/base.tmp" "$dir/base" && touch "$dir/base/.complete" || exit 2
	echo "--- done in $((SECONDS - t0)) s"
}

enter() {	# enter NAME: a fresh copy of the base as $root, mounted
	base
	root=$dir/$1
	if grep -q " $root/" /proc/mounts; then
		die "$root has mounts left from an interrupted run: umount them"
	fi
	rm -rf "$root" && cp -a "$dir/base" "$root" || exit 2
	rm -f "$root/.complete"
	cp /etc/resolv.conf "$root/etc/resolv.conf" || exit 2
	mount -t proc proc "$root/proc" && mounts+=("$root/proc") &&
	    mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" &&
	    mounts+=("$root/dev/pts") &&
	    mount -t tmpfs -o mode=1777 shm "$root/dev/shm" &&
	    mounts+=("$root/dev/shm") || die "mount failed under $root"
	ln -sf pts/ptmx "$root/dev/ptmx"
	# Behind a proxy that intercepts TLS, npm (make npm-deps) needs the
	# proxy's CA: the file the host names in NODE_EXTRA_CA_CERTS is
	# copied in and named there too (the only thing the host passes in).
	extra_ca=
	if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
		cp "$NODE_EXTRA_CA_CERTS" "$root/etc/host-extra-ca.pem" &&
		    extra_ca=NODE_EXTRA_CA_CERTS=/etc/host-extra-ca.pem
		echo "passing the host's NODE_EXTRA_CA_CERTS in as $extra_ca"
	fi
	log=$dir/$1.log
	: >"$log"
}

fails=0
step() {	# step DIR COMMAND: run COMMAND with bash in DIR of the chroot
	local d=$1 cmd=$2 t0 t1 st out
	echo "=== # $cmd"
	echo "=== # $cmd" >>"$log"
	: >"$log.step"
	t0=$(date +%s.%N)
	# A login as root on a bare machine: no inherited environment, but
	# for the CA of a TLS-intercepting proxy the host trusts (see enter).
	chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb ${extra_ca:+"$extra_ca"} \
	    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	    /bin/bash -c 'cd "$1" && eval "$2"' _ "$d" "$cmd" \
	    </dev/null >"$log.step" 2>&1
	st=$?
	t1=$(date +%s.%N)
	cat "$log.step" >>"$log"
	# apt's progress lines end in \r: show the last part of each line.
	out=$(sed 's/.*\r\(.\)/\1/' "$log.step" | tail -n "${TAIL:-3}")
	if [ $st -ne 0 ]; then
		fails=$((fails + 1))
		out=$(sed 's/.*\r\(.\)/\1/' "$log.step" | tail -n 25)
	fi
	[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/    /'
	rm -f "$log.step"
	awk -v s="$st" -v a="$t0" -v b="$t1" \
	    'BEGIN { printf "--- exit status %d, %.0f s\n", s, b - a }'
	return $st
}

fresh() {
	enter fresh
	git clone -q "$top" "$root/root/llm-route" || die "git clone failed"
	echo "clone of $(git -C "$top" rev-parse --short HEAD) in $root/root/llm-route"
	local cmds
	mapfile -t cmds < <(sed -n 's/^    \([^ ]\)/\1/p' \
	    "$root/root/llm-route/README.md" | head -n 2)
	[ ${#cmds[@]} -eq 2 ] || die "README.md: no two indented commands"
	step /root/llm-route "${cmds[0]}"
	TAIL=1 step /root/llm-route "${cmds[1]}"
	# make demo must leave no server behind.
	local left
	left=$(for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] &&
		    tr '\0' ' ' <"$p/cmdline" && echo
	done)
	if [ -n "$left" ]; then
		echo "--- processes left in the chroot:"
		printf '%s\n' "$left" | sed 's/^/    /'
		fails=$((fails + 1))
	else
		echo "--- no process left in the chroot"
	fi
}

deb() {
	[ $# -gt 0 ] || die "usage: $prog deb FILE.deb..."
	enter deb
	local f names=()
	mkdir -p "$root/root/debs"
	for f; do
		cp "$f" "$root/root/debs/" || exit 2
		names+=("./${f##*/}")
	done
	step /root "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends man-db"
	step /root "dpkg-query -W -f '\${Package}\n' | sort >before.pkgs; wc -l <before.pkgs"
	step /root/debs "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${names[*]}" || return
	step /root "dpkg -L llm-route >llm-route.paths; wc -l <llm-route.paths; dpkg -L llm-route | grep -c '^/usr/bin/'"
	TAIL=1 step /root "printf '%s' '{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"hello there\"}]}' | llm-estimate -c"
	TAIL=4 step /root "MANPAGER=cat man llm-route | head -n 4"
	step /root "systemd-analyze --version >/dev/null 2>&1 || echo no systemd here; ls /usr/lib/systemd/user/llm-serve.service"
	step /root "DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq --purge llm-route && ! dpkg -s llm-route 2>/dev/null"
	# A path of the package still there is left behind, unless another
	# package owns it too (a shared directory such as /usr/bin).
	step /root 'n=0; while read -r p; do
		[ "$p" = /. ] && continue
		[ -e "$p" ] || [ -L "$p" ] || continue
		dpkg -S "$p" >/dev/null 2>&1 && continue
		echo "left: $p"; n=$((n + 1))
	done <llm-route.paths; echo "$n of $(wc -l <llm-route.paths) paths left"; [ $n -eq 0 ]'
	# Not a failure: the Recommends apt pulled in (ca-certificates for
	# libcurl4) stay, as apt itself recommends them.
	step /root "DEBIAN_FRONTEND=noninteractive apt-get autoremove -y -qq --purge >/dev/null && dpkg-query -W -f '\${Package}\n' | sort | comm -13 before.pkgs - | paste -sd ' ' | sed 's/^/still installed after autoremove: /'"
}

mode=${1:-}
case $mode in
fresh) shift; fresh "$@" ;;
deb) shift; deb "$@" ;;
*) die "usage: $prog fresh | deb FILE.deb..." ;;
esac
if [ $fails -eq 0 ]; then
	echo "$prog $mode: all passed"
else
	echo "$prog $mode: $fails failed"
fi
echo "(whole output: $log)"
[ $fails -eq 0 ]
