#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# bench_remote.sh - vfsd's sftp:// and nfs:// mounts against the usual
# clients of the same servers, side by side, in one run, on loopback.
#
# Usage: bench/bench_remote.sh [--quick] [--repeat N] [--dir BASE]
#                              [--only sftp|nfs] [--sftp-opts OPTS] [--vfsd PATH]
#                              [--base-vfsd PATH] [--delay-us N] [--keep] [--help]
#
#   --quick      smoke run: 128 MiB files and image, 1,000 files, 3 s fio
#                (about 3 minutes)
#   --repeat N   run every figure N times and report the median (default 3,
#                1 with --quick); the full run (1 GiB files and image,
#                5,000 files, 10 s fio) takes about 25-30 minutes, its
#                SFTP part about 20
#   --dir BASE   where the scratch directory goes (default /var/tmp)
#   --only PART  run only the sftp or only the nfs part
#   --sftp-opts OPTS
#                options added to vfsd's sftp:// URL (not the base daemon's),
#                e.g. cache_names=yes
#   --vfsd PATH  daemon to test (default build/vfsd/vfsd of this checkout;
#                it is copied first, so a rebuild during the run is harmless)
#   --base-vfsd PATH
#                a second daemon to compare with (e.g. a build of an older
#                commit): every vfsd target gets a twin "base vfsd ..."
#                mounted by it with the same URLs (in its own directory on
#                the same server), measured in the same rounds right before
#                or after its twin (the order alternates from round to
#                round); the tables add the ratios vfsd/base
#   --delay-us N every client reaches the servers through bench/delay_relay
#                (a TCP relay on 127.0.0.1 that holds each byte N microseconds
#                in each direction, moving the data with splice(2), so that
#                it does not cap the rates): a round trip of 2N us more, as on
#                a network, where this kernel has no netem.  The same relay
#                and delay for every client (vfsd, sshfs, ssh cat, nfs-cp)
#   --keep       keep the scratch directory (logs, server configs)
#
# SFTP part: one OpenSSH sshd on 127.0.0.1 (tests/integration/sshd.py,
# started by bench/remote_servers.py: free port, fresh ed25519 host and
# user keys, internal-sftp, a known_hosts file), serving a directory in
# /dev/shm.  Compared: vfsd -m /ssh=sftp://root@127.0.0.1:PORT/DIR?identity=
# ..&known_hosts=.. (default connections=4); sshfs with its default options;
# sshfs -o max_conns=4; and, for the sequential figures, the transport's
# own limit: ssh root@127.0.0.1 'cat > FILE' < SRC and ssh ... cat FILE.
# Every client runs the same SSH transport: ssh and sshfs get -o
# Ciphers=aes128-ctr -o MACs=hmac-sha2-256, what vfsd's libssh2 negotiates
# with this sshd (ssh_crypto in bench/lib.sh says how that was checked;
# BENCH_SSH_CIPHER and BENCH_SSH_MAC override them, empty for OpenSSH's
# defaults).  The SFTP part measures every figure issue 15 names:
#   seq write / read of a 1 GiB file (dd through the mounts, ssh cat);
#   CPU seconds per GiB of each: utime + stime from /proc/PID/stat of the
#     FUSE daemon (vfsd; sshfs and its ssh processes, which sshfs starts
#     through a double fork, found by sshfs's session) and of sshd's listener
#     and every process below it (the connections' privsep, session and
#     internal-sftp processes; cat for ssh cat), before and after the
#     copy, reaped children included (cutime + cstime); for ssh cat also
#     the ssh client (this shell's reaped child).  dd's own time is not
#     counted (the same for every mount);
#   fio random read 4 KiB and 64 KiB, random write 4 KiB, O_DIRECT, libaio,
#     iodepth 16, in a raw image of random data on the server (reads opened
#     O_RDWR as QEMU opens a disk: run_fio in bench/lib.sh);
#   qemu-img convert -f raw -O qcow2 onto the mount, without and with a
#     sync of the result;
#   create / ls -l / stat / unlink of N files;
#   vfsd's peak resident set (VmHWM of /proc/PID/status) over all figures:
#     every figure runs on a fresh daemon, so this is the largest any one
#     figure (with its mount) needed.
# A second table sets each of vfsd's figures beside the anchor issue 15
# names and its floor there (e.g. ">= 1.5x" sshfs, ">= 0.9x" ssh cat,
# "<= 1.0x" for CPU, "<= 64 MiB" for RSS) with pass or FAIL.  Both parts
# also take fio's sequential read (1 MiB, psync, opened O_RDWR, cold: issue
# 18's measure of read-ahead); the NFS part has the sequential, metadata and
# 4 KiB random read figures (the last to show read-ahead keeps out of
# random reads).
#
# NFS part: one nfs-ganesha on 127.0.0.1 (tests/integration/ganesha.py:
# FSAL VFS, export in /dev/shm, NFSv3 and v4, ports picked at run time).
# Compared: vfsd -m /nfs3=nfs://...?version=3 -m /nfs4=...?version=4 and,
# for the sequential figures, libnfs's nfs-cp (libnfs-utils) over the same
# protocol version.  nfs-cp has no metadata figure.  libnfs-utils 4.0.0
# (Debian 12) fails every NFSv4 write of nfs-cp ("Failed to write to dest
# file"; libnfs 4.0.0 encodes a COMPOUND into 4 KiB, see backends/nfs/nfs.c):
# that figure reads "fails", and its read figure reads a file copied in on
# the server side.
#
# The servers' directories live in /dev/shm so that no disk sets the pace:
# the figures measure the client, the protocol and the server process.
# Every FUSE figure runs on a freshly (re)mounted client after
# `sync; echo 3 > /proc/sys/vm/drop_caches`, so nothing is served from a
# cache another figure filled; unlink follows stat on the same mount at
# once (before the next target's drop_caches, which is global, could empty
# the kernel's name cache of this one).  Each figure's preparation also
# writes and frees 2 GiB in /dev/shm (warm_memory in bench/lib.sh: on a VM
# that hands freed memory back to its host, what a figure allocates would
# otherwise cost what earlier figures happened to leave).
# Needs root, openssh-server, sshfs, fio, qemu-utils, nfs-ganesha(-vfs),
# libnfs-utils, gcc.
#
# Every figure but CPU (s/GiB) and RSS (MiB) is "higher is better" (MiB/s,
# IOPS, operations/s, entries/s), so a ratio above 1 means vfsd was faster;
# for CPU and RSS below 1 means vfsd used less.  The tables go to stdout and a
# tab-separated copy to bench/results/remote-<UTC time>.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
me=bench_remote.sh
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

quick=0 repeat= base=/var/tmp keep=0 only= vfsd_src=$top/build/vfsd/vfsd sftp_opts= delay_us=
while [ $# -gt 0 ]; do
	common_opt "$@"
	if [ "$nargs" = 0 ]; then
		case $1 in
		--only) only=${2:?}; nargs=2 ;;
		--sftp-opts) sftp_opts=${2:?}; nargs=2 ;;
		--delay-us) delay_us=${2:?}; nargs=2 ;;
		*) unknown_opt "$1" ;;
		esac
	fi
	shift "$nargs"
done
parse_done
case $only in ''|sftp|nfs) ;; *) echo "$me: --only takes sftp or nfs" >&2; exit 2 ;; esac
[[ -z $delay_us || $delay_us =~ ^[0-9]{1,8}$ ]] || { echo "$me: --delay-us takes microseconds" >&2; exit 2; }
do_sftp=1 do_nfs=1
[ "$only" != sftp ] || do_nfs=0
[ "$only" != nfs ] || do_sftp=0

if [ "$quick" = 1 ]; then
	size_mb=128 nfiles=1000 fio_runtime=3
else
	size_mb=1024 nfiles=5000 fio_runtime=10
fi

[ "$(id -u)" = 0 ] || { echo "$me: run it as root (servers, FUSE mounts, drop_caches)" >&2; exit 2; }
need python3 python3; need fusermount3 fuse3; need cc gcc; need findmnt util-linux
need mountpoint util-linux; need dd coreutils
if [ "$do_sftp" = 1 ]; then
	need sshfs sshfs; need ssh openssh-client; need fio fio; need qemu-img qemu-utils
fi
if [ "$do_nfs" = 1 ]; then need nfs-cp libnfs-utils; fi
[ -x "$vfsd_src" ] || { echo "$me: no daemon at $vfsd_src (meson setup build && meson compile -C build)" >&2; exit 2; }

# ---- scratch area, servers, mounts and cleanup ----------------------------

T=$(mktemp -d "$base/vfsd-bench-remote.XXXXXX")
mkdir -p "$T/bin" "$T/logs" "$T/srv" "$T/home" "$T/mnt"
chmod 700 "$T/home"
SRC=
srv_pid=
declare -A mpid=()	# mount name -> pid of the FUSE daemon serving it

# Measured commands run in the background and are waited for (run_bg):
# bash defers a trap while a foreground child runs, so a Ctrl-C would only
# be seen after a long copy.
child=
trap cleanup_remote EXIT
trap interrupted INT TERM

ssh_opts=()	# set once the sshd is up
# The FUSE clients.  Each runs in the foreground (-f) so that we hold its
# pid, and without fd 9 (the servers' control pipe), so that the servers
# see EOF as soon as this shell dies, whatever the daemons do.
start_mount() {	# NAME
	local m=$1 mnt=$T/mnt/$1
	mkdir -p "$mnt"
	case $m in
	vfsd-sftp)
		# HOME without ~/.ssh and no agent: key and known_hosts only from the URL
		env -u SSH_AUTH_SOCK HOME="$T/home" "$T/bin/vfsd" -f -m "/ssh=$SFTP_URL${sftp_opts:+&$sftp_opts}" "$mnt" \
			>>"$T/logs/$m.log" 2>&1 9>&- & ;;
	vfsd-nfs)
		"$T/bin/vfsd" -f -m "/nfs3=$NFS3_URL" -m "/nfs4=$NFS4_URL" "$mnt" \
			>>"$T/logs/$m.log" 2>&1 9>&- & ;;
	# the base daemon's twins: the same URLs, less what it refused
	base-sftp)
		env -u SSH_AUTH_SOCK HOME="$T/home" "$T/bin/base-vfsd" -f \
			-m "/ssh=$(base_url "$SFTP_URL")" "$mnt" \
			>>"$T/logs/$m.log" 2>&1 9>&- & ;;
	base-nfs)
		"$T/bin/base-vfsd" -f -m "/nfs3=$(base_url "$NFS3_URL")" \
			-m "/nfs4=$(base_url "$NFS4_URL")" "$mnt" \
			>>"$T/logs/$m.log" 2>&1 9>&- & ;;
	sshfs) start_sshfs "$m" ;;
	sshfs4) start_sshfs "$m" -o max_conns=4 ;;
	*) die "start_mount: unknown mount $m" ;;
	esac
	mount_started "$m" $!
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# ---- targets --------------------------------------------------------------
# Every target works in its own directory of the served tree: tdir is where
# the client sees it (a FUSE path, or a URL for nfs-cp), sdir where it is
# on the server (for set-up behind the clients' backs, never while a
# figure runs; removal goes through server_rm, see bench/lib.sh).

declare -A tname mountof tdir sdir
setup_targets() {
	if [ "$do_sftp" = 1 ]; then
		tname+=([vfsd]=vfsd [sshfs]=sshfs [sshfs4]="sshfs max_conns=4" [sshcat]="ssh cat")
		mountof+=([vfsd]=vfsd-sftp [sshfs]=sshfs [sshfs4]=sshfs4 [sshcat]=)
		tdir+=([vfsd]=$T/mnt/vfsd-sftp/ssh/vfsd [sshfs]=$T/mnt/sshfs/sshfs
		       [sshfs4]=$T/mnt/sshfs4/sshfs4 [sshcat]=$SSH_REMOTE/sshcat)
		if [ -n "$base_vfsd_src" ]; then
			tname+=([bvfsd]="base vfsd")
			mountof+=([bvfsd]=base-sftp)
			tdir+=([bvfsd]=$T/mnt/base-sftp/ssh/bvfsd)
			twin+=([vfsd]=bvfsd)
		fi
		local t
		for t in "${sftp_targets[@]}"; do
			sdir[$t]=$SSH_REMOTE/$t
			mkdir -p "${sdir[$t]}"
		done
		ssh_opts=(-p "$SSH_PORT" -i "$SSH_IDENTITY" -o "UserKnownHostsFile=$SSH_KNOWN_HOSTS"
			  -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes
			  "${ssh_crypto[@]}")
	fi
	if [ "$do_nfs" = 1 ]; then
		tname+=([vfsd3]="vfsd v3" [nfscp3]="nfs-cp v3" [vfsd4]="vfsd v4" [nfscp4]="nfs-cp v4")
		mountof+=([vfsd3]=vfsd-nfs [vfsd4]=vfsd-nfs [nfscp3]= [nfscp4]=)
		tdir+=([vfsd3]=$T/mnt/vfsd-nfs/nfs3/vfsd3 [vfsd4]=$T/mnt/vfsd-nfs/nfs4/vfsd4)
		if [ -n "$base_vfsd_src" ]; then
			tname+=([bvfsd3]="base vfsd v3" [bvfsd4]="base vfsd v4")
			mountof+=([bvfsd3]=base-nfs [bvfsd4]=base-nfs)
			tdir+=([bvfsd3]=$T/mnt/base-nfs/nfs3/bvfsd3 [bvfsd4]=$T/mnt/base-nfs/nfs4/bvfsd4)
			twin+=([vfsd3]=bvfsd3 [vfsd4]=bvfsd4)
		fi
		local t
		for t in "${nfs_targets[@]}"; do
			sdir[$t]=$NFS_EXPORT/$t
			mkdir -p "${sdir[$t]}"
		done
	fi
}
# Every client through bench/delay_relay (--delay-us): the servers' ports
# and URLs are replaced by the relay's; the known_hosts file gains the
# host key under the relay's port (OpenSSH clients and vfsd look a key up
# by host and port).  cleanup_remote stops it.
start_delay_relay() {
	local ports=() from to i
	cc -O2 -Wall -o "$T/bin/delay_relay" "$here/delay_relay.c" 2>"$T/logs/cc-relay.log" ||
		{ cat "$T/logs/cc-relay.log" >&2; die "compiling bench/delay_relay.c"; }
	[ "$do_sftp" = 0 ] || ports+=("$SSH_PORT")
	[ "$do_nfs" = 0 ] || ports+=("$NFS_PORT" "$NFS_MNT_PORT")
	"$T/bin/delay_relay" "$delay_us" "${ports[@]}" >"$T/relay.ports" 2>"$T/logs/relay.log" 9>&- &
	relay_pid=$!
	for i in $(seq 100); do
		grep -qx ready "$T/relay.ports" && break
		kill -0 "$relay_pid" 2>/dev/null || break
		sleep 0.05
	done
	grep -qx ready "$T/relay.ports" ||
		die "starting bench/delay_relay: $(cat "$T/logs/relay.log")"
	while read -r from to; do
		[ "$from" != ready ] || break
		if [ "$do_sftp" = 1 ] && [ "$from" = "$SSH_PORT" ]; then
			sed -n "s/^\[127\.0\.0\.1\]:$from /[127.0.0.1]:$to /p" \
				"$SSH_KNOWN_HOSTS" >"$SSH_KNOWN_HOSTS.relay"
			cat "$SSH_KNOWN_HOSTS.relay" >>"$SSH_KNOWN_HOSTS"
			SFTP_URL=${SFTP_URL/:$from\//:$to/}
			SSH_PORT=$to
		fi
		if [ "$do_nfs" = 1 ] && [ "$from" = "$NFS_PORT" ]; then
			NFS3_URL=${NFS3_URL/nfsport=$from/nfsport=$to}
			NFS4_URL=${NFS4_URL/nfsport=$from/nfsport=$to}
			NFS_PORT=$to
		fi
		if [ "$do_nfs" = 1 ] && [ "$from" = "$NFS_MNT_PORT" ]; then
			NFS3_URL=${NFS3_URL/mountport=$from/mountport=$to}
			NFS4_URL=${NFS4_URL/mountport=$from/mountport=$to}
			NFS_MNT_PORT=$to
		fi
	done <"$T/relay.ports"
	log "every client through bench/delay_relay: ${delay_us} us each way ($(grep -v ready "$T/relay.ports" | tr '\n' ' '))"
}

nfscp_url() {	# TARGET FILE -> nfs://127.0.0.1/EXPORT/TARGET/FILE?version=..
	case $1 in
	nfscp3) echo "nfs://127.0.0.1$NFS_EXPORT/$1/$2?version=3&nfsport=$NFS_PORT&mountport=$NFS_MNT_PORT" ;;
	nfscp4) echo "nfs://127.0.0.1$NFS_EXPORT/$1/$2?version=4&nfsport=$NFS_PORT" ;;
	esac
}

# ---- measuring ------------------------------------------------------------

# Result of the last measurement: a number, "fails (WHY)" or "-" (no such
# figure for this client).
val=

# run_timed STEP AMOUNT CMD... : val = AMOUNT / seconds of CMD, or the
# failure, logged with the step's name; secs = the seconds.
secs=
run_timed() {
	local step=$1 amount=$2 t0 t1 rc=0 err=$T/logs/cmd.err
	shift 2
	t0=$(now)
	run_bg "$@" >"$T/logs/cmd.out" 2>"$err" || rc=$?
	t1=$(now)
	{ echo "[$step] $* -> rc=$rc"; cat "$err"; } >>"$T/logs/cmd.log"
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
	if [ "$rc" != 0 ]; then
		val="fails ($(errname "$(head -c 300 "$err")"))"
		log "FAILED: $step (rc $rc): $(head -n 3 "$err" | tr '\n' ' ')"
	else
		val=$(awk -v m="$amount" -v s="$secs" 'BEGIN { printf "%.1f", m / s }')
	fi
}

# CPU of the SFTP targets' sequential figures (see the header): ticks of
# the FUSE daemon's and sshd's trees (tree_ticks) and, for ssh cat, of
# this shell's reaped children (self_child_ticks), around the copy.  The
# order matters: tree_ticks forks, and its children are reaped by this
# shell, so the shell's count is read after it at the start and before it
# at the end.
is_sftp() { [[ " ${sftp_targets[*]} " == *" $1 "* ]]; }
client_ticks() {	# TARGET -> ticks of its FUSE daemon's tree, 0 for ssh cat
	local m=${mountof[$1]}
	if [ -n "$m" ]; then tree_ticks "${mpid[$m]}"; else echo 0; fi
}
cpu_sshd0=0 cpu_client0=0 cpu_self0=0
cpu_begin() {	# TARGET
	is_sftp "$1" || return 0
	cpu_sshd0=$(tree_ticks "$SSHD_PID")
	cpu_client0=$(client_ticks "$1")
	self_child_ticks cpu_self0
}
per_gib() { awk -v d="$1" -v hz="$clk_tck" -v m="$size_mb" 'BEGIN { printf "%.2f", d / hz / (m / 1024) }'; }
cpu_end() {	# TARGET -> cpu_val, cpu_sshd_val: CPU s per GiB of the copy (all, sshd's part) or "-"
	local t=$1 self1 sshd1 client1 self=0
	cpu_val=- cpu_sshd_val=-
	is_sftp "$t" || return 0
	self_child_ticks self1
	sshd1=$(tree_ticks "$SSHD_PID")
	client1=$(client_ticks "$t")
	[[ $val != fails* ]] || return 0
	# ssh cat's client is this shell's child; dd (FUSE targets) is not counted
	[ -n "${mountof[$t]}" ] || self=$((self1 - cpu_self0))
	cpu_val=$(per_gib "$((sshd1 - cpu_sshd0 + client1 - cpu_client0 + self))")
	cpu_sshd_val=$(per_gib "$((sshd1 - cpu_sshd0))")
}
declare -A cpuw=() cpur=() cpuw_sshd=() cpur_sshd=()

# The source of every write: random data (compression can never help),
# made once in /dev/shm and kept in the page cache.
src_warm() { cat "$SRC" >/dev/null; }

# A server-side copy of the source, for a read figure whose write failed.
ensure_server_file() {	# PATH
	if [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" != "$((size_mb * 1048576))" ]; then
		log "  (the write left no full $1; copying it in on the server side for the read)"
		cp "$SRC" "$1"
	fi
}

fig_seqwrite() {
	local t=$1
	server_rm "$t" seq.dat
	src_warm
	cpu_begin "$t"
	case $t in
	sshcat)
		run_timed "ssh cat write" "$size_mb" \
			sh -c 'exec ssh "$@" <"$0"' "$SRC" "${ssh_opts[@]}" "$SSH_USER@127.0.0.1" \
			"cat > '${sdir[$t]}/seq.dat'" ;;
	nfscp*)
		run_timed "nfs-cp write ($t)" "$size_mb" nfs-cp "$SRC" "$(nfscp_url "$t" seq.dat)" ;;
	*)
		run_timed "dd write through ${tname[$t]}" "$size_mb" \
			dd if="$SRC" of="${tdir[$t]}/seq.dat" bs=1M conv=fsync status=none ;;
	esac
	cpu_end "$t"
	cpuw[$t]=$cpu_val
	cpuw_sshd[$t]=$cpu_sshd_val
}
fig_seqread() {
	local t=$1
	ensure_server_file "${sdir[$t]}/seq.dat"
	cpu_begin "$t"
	case $t in
	sshcat)
		run_timed "ssh cat read" "$size_mb" \
			sh -c 'exec ssh "$@" >/dev/null' sh "${ssh_opts[@]}" "$SSH_USER@127.0.0.1" \
			"cat '${sdir[$t]}/seq.dat'" ;;
	nfscp*)
		# nfs-cp opens a local destination with O_CREAT|O_EXCL, so it
		# cannot write to /dev/null: a new file in /dev/shm (a memcpy)
		rm -f "$SRC.out"
		run_timed "nfs-cp read ($t)" "$size_mb" nfs-cp "$(nfscp_url "$t" seq.dat)" "$SRC.out"
		rm -f "$SRC.out" ;;
	*)
		run_timed "dd read through ${tname[$t]}" "$size_mb" \
			dd if="${tdir[$t]}/seq.dat" of=/dev/null bs=1M status=none ;;
	esac
	cpu_end "$t"
	cpur[$t]=$cpu_val
	cpur_sshd[$t]=$cpu_sshd_val
	server_rm "$t" seq.dat
}
fig_cpuw() { val=${cpuw[$1]:--}; }
fig_cpur() { val=${cpur[$1]:--}; }
fig_cpuw_sshd() { val=${cpuw_sshd[$1]:--}; }
fig_cpur_sshd() { val=${cpur_sshd[$1]:--}; }

declare -A note=()	# "figure,target" -> remark printed under the tables

# fio in img.raw, a copy of SRC put in on the server side before the
# figure's fresh mount (prep_*); removed after the write figure.  If a
# client refuses O_DIRECT the figure is taken with --direct=0, noted.
put_image() {	# TARGET
	[ -f "${sdir[$1]}/img.raw" ] || cp "$SRC" "${sdir[$1]}/img.raw" ||
		die "copying the image into ${sdir[$1]}"
}
fio_fig() {	# FIGURE TARGET RW BS
	local id=$1 t=$2 rw=$3 bs=$4 first
	run_fio "${tdir[$t]}/img.raw" "$size_mb" "$rw" "$bs" 1 "$fio_runtime"
	if [[ $val == fails* ]]; then
		first=$val
		log "  ${tname[$t]}: $rw $bs with --direct=1 $first; again with --direct=0"
		remount_fresh "$t"
		run_fio "${tdir[$t]}/img.raw" "$size_mb" "$rw" "$bs" 0 "$fio_runtime"
		note[$id,$t]="${tname[$t]}: direct=1 $first, figure with direct=0"
	fi
}
# fio's sequential read, as issue 18 measures it: 1 MiB psync, opened
# O_RDWR (rw with 100% reads) as QEMU opens a disk, cold
prep_fioseq() { put_image "$1"; }
fig_fioseq() {
	is_fuse "$1" || { val=-; return; }
	local out rc=0 f
	run_bg fio --name=bench "--filename=${tdir[$1]}/img.raw" "--size=${size_mb}M" \
		--bs=1M --direct=0 --ioengine=psync --rw=rw --rwmixread=100 --thread=0 \
		--output-format=terse --terse-version=3 >"$T/logs/fio.out" 2>>"$T/logs/fio.log" || rc=$?
	out=$(cat "$T/logs/fio.out")
	echo "fio seq read ${tdir[$1]} -> rc=$rc: $out" >>"$T/logs/fio.log"
	# terse v3: field 7 read bandwidth in KiB/s
	f=$(printf '%s\n' "$out" | grep -m1 '^3;' | cut -d';' -f7 || true)
	if [ "$rc" != 0 ] || [ -z "$f" ]; then
		val="fails (rc $rc)"
		return 0
	fi
	val=$(awk -v k="$f" 'BEGIN { printf "%.1f", k / 1024 }')
}
prep_randread4() { put_image "$1"; }
prep_randread64() { put_image "$1"; }
prep_randwrite4() { put_image "$1"; }
fig_randread4() { is_fuse "$1" || { val=-; return; }; fio_fig randread4 "$1" randread 4k; }
fig_randread64() { fio_fig randread64 "$1" randread 64k; }
fig_randwrite4() {
	fio_fig randwrite4 "$1" randwrite 4k
	server_rm "$1" img.raw	# room for the next figures
}

# qemu-img convert of SRC (in the page cache) to qcow2 on the mount with
# qemu-img's default cache mode for a convert's destination (unsafe: no
# flushes); qemusync adds the time of a `sync DST` right after it.
declare -A qsync=()
prep_qemu() { server_rm "$1" out.qcow2; }
fig_qemu() {
	local t=$1 dst=${tdir[$1]}/out.qcow2 s1
	src_warm
	run_timed "qemu-img convert to ${tname[$t]}" "$size_mb" \
		qemu-img convert -f raw -O qcow2 "$SRC" "$dst"
	if [[ $val == fails* ]]; then
		qsync[$t]=$val
	else
		s1=$secs
		local v=$val
		run_timed "sync of the qcow2 on ${tname[$t]}" "$size_mb" sync "$dst"
		if [[ $val == fails* ]]; then
			qsync[$t]=$val
		else
			qsync[$t]=$(awk -v m="$size_mb" -v a="$s1" -v b="$secs" 'BEGIN { printf "%.1f", m / (a + b) }')
		fi
		val=$v
	fi
	server_rm "$t" out.qcow2
}
fig_qemusync() { val=${qsync[$1]:--}; }

is_fuse() { [ -n "${mountof[$1]}" ]; }

meta() {	# TARGET PHASE
	local d=${tdir[$1]}/meta out rc=0
	run_bg "$T/bin/metabench" "$d" "$nfiles" "$2" >"$T/logs/meta.out" 2>>"$T/logs/meta.log" || rc=$?
	out=$(cat "$T/logs/meta.out")
	if [ "$rc" != 0 ]; then
		val="fails ($(errname "$(tail -n1 "$T/logs/meta.log" | sed 's/.*: //')"))"
		log "FAILED: metabench $2 through ${tname[$1]}: $(tail -n1 "$T/logs/meta.log")"
	else
		val=$(echo "$out" | awk '{ printf "%.0f", $4 }')
	fi
}
fig_create() {
	is_fuse "$1" || { val=-; return; }
	server_rm "$1" meta	# leftovers of a failed round
	mkdir "${tdir[$1]}/meta" || die "mkdir ${tdir[$1]}/meta"
	meta "$1" create
}
# ls -l of the directory the create phase filled, on a fresh mount after
# drop_caches (fresh(), the figure's preparation): the client holds no
# name, attribute or listing, so this is READDIR(PLUS) + whatever LOOKUP /
# GETATTR / GETXATTR calls the client needs per entry.  entries/s.
fig_ls() {
	is_fuse "$1" || { val=-; return; }
	run_timed "ls -l through ${tname[$1]}" "$nfiles" ls -l "${tdir[$1]}/meta"
	if [[ $val != fails* ]]; then
		local n
		n=$(($(wc -l <"$T/logs/cmd.out") - 1))
		if [ "$n" != "$nfiles" ]; then
			log "FAILED: ls -l through ${tname[$1]} listed $n of $nfiles entries"
			val="fails (listed $n)"
		fi
	fi
}
fig_stat() { is_fuse "$1" || { val=-; return; }; meta "$1" stat; }
fig_unlink() {
	is_fuse "$1" || { val=-; return; }
	meta "$1" unlink
	server_rm "$1" meta
}

# id | label | unit | preparation: fresh (prep_ID if there is one, then
# remount + drop caches), or after:ID (on the same target right after
# figure ID, before any other target's preparation can drop what ID left
# in the caches; also figures that only report what ID measured)
figures=(
	"seqwrite|seq write ${size_mb} MiB + fsync|MiB/s|fresh"
	"cpuw|CPU of seq write|s/GiB|after:seqwrite"
	"cpuw_sshd|  of it sshd's|s/GiB|after:seqwrite"
	"seqread|seq read ${size_mb} MiB (cold)|MiB/s|fresh"
	"cpur|CPU of seq read|s/GiB|after:seqread"
	"cpur_sshd|  of it sshd's|s/GiB|after:seqread"
	"fioseq|fio seq read 1M psync (O_RDWR, cold)|MiB/s|fresh"
	"randread4|fio randread 4k qd16 (O_RDWR)|IOPS|fresh"
	"randread64|fio randread 64k qd16 (O_RDWR)|IOPS|fresh"
	"randwrite4|fio randwrite 4k qd16|IOPS|fresh"
	"qemu|qemu-img convert ->qcow2|MiB/s|fresh"
	"qemusync|qemu-img convert ->qcow2 + sync|MiB/s|after:qemu"
	"create|create ${nfiles} files|ops/s|fresh"
	"ls|ls -l of ${nfiles} entries (cold)|entries/s|fresh"
	"stat|stat ${nfiles} files (cold)|ops/s|fresh"
	"unlink|unlink ${nfiles} files|ops/s|after:stat"
)
# figures of the SFTP part only
sftp_only=" cpuw cpuw_sshd cpur cpur_sshd randread64 randwrite4 qemu qemusync "
sftp_targets=(vfsd sshfs sshfs4 sshcat)
nfs_targets=(vfsd3 nfscp3 vfsd4 nfscp4)
if [ -n "$base_vfsd_src" ]; then
	# each twin right after its vfsd target (round_order swaps the two)
	sftp_targets=(vfsd bvfsd sshfs sshfs4 sshcat)
	nfs_targets=(vfsd3 bvfsd3 nfscp3 vfsd4 bvfsd4 nfscp4)
fi

# ---- run ------------------------------------------------------------------

bench_start "other work competes with the clients and servers"
log "scratch: $T"
cp "$vfsd_src" "$T/bin/vfsd"
[ -z "$base_vfsd_src" ] || base_install
# the checkout's state when the binary was taken (it may move during the run)
git_rev=$(git -C "$top" describe --always --dirty 2>/dev/null || echo '?')
cc -O2 -Wall -o "$T/bin/metabench" "$here/metabench.c" 2>"$T/logs/cc-metabench.log" ||
	{ cat "$T/logs/cc-metabench.log" >&2; die "compiling bench/metabench.c"; }
SRC=$(mktemp /dev/shm/vfsd-bench-src.XXXXXX)
log "source: ${size_mb} MiB of random data in $SRC"
head -c "${size_mb}M" /dev/urandom >"$SRC" || die "making the source file $SRC"
log "starting the servers"
srv_args=()
[ "$do_sftp" = 0 ] || srv_args+=(--sftp)
[ "$do_nfs" = 0 ] || srv_args+=(--nfs)
start_servers "${srv_args[@]}"
if [ "$do_nfs" = 1 ] && [ -n "${NFS_SKIP:-}" ]; then
	log "WARNING: NFS part skipped: $NFS_SKIP"
	do_nfs=0
fi
[ -z "$delay_us" ] || start_delay_relay
setup_targets
if [ -n "$base_vfsd_src" ]; then
	probe_urls=()
	[ "$do_sftp" = 0 ] || probe_urls+=("$SFTP_URL")
	[ "$do_nfs" = 0 ] || probe_urls+=("$NFS3_URL" "$NFS4_URL")
	base_probe "${probe_urls[@]}"
fi
[ "$do_sftp" = 0 ] || log "sshd on 127.0.0.1:$SSH_PORT serving $SSH_REMOTE"
[ "$do_nfs" = 0 ] || log "ganesha on 127.0.0.1:$NFS_PORT (mount $NFS_MNT_PORT) exporting $NFS_EXPORT"

targets=()
[ "$do_sftp" = 0 ] || targets+=("${sftp_targets[@]}")
[ "$do_nfs" = 0 ] || targets+=("${nfs_targets[@]}")
[ "$do_nfs" = 0 ] || start_nfs_janitor "${nfs_targets[@]}"
# mount every client once up front: a broken one stops the run at once
for m in $(for t in "${targets[@]}"; do echo "${mountof[$t]}"; done | sort -u); do
	start_mount "$m"
	for t in "${targets[@]}"; do
		if [ "${mountof[$t]}" = "$m" ]; then
			[ -d "${tdir[$t]}" ] || die "${tdir[$t]} not visible through $m"
		fi
	done
done
if [ "$do_sftp" = 1 ]; then
	ssh "${ssh_opts[@]}" "$SSH_USER@127.0.0.1" true 2>"$T/logs/ssh-check.log" ||
		{ cat "$T/logs/ssh-check.log" >&2; die "ssh to 127.0.0.1:$SSH_PORT"; }
fi

# The whole sequence is repeated (the metadata figures depend on each
# other), each figure target after target, so slow drifts of the machine
# touch all alike; the median of the repeats is reported.  The SFTP part
# runs its figures before the NFS part starts, so that neither runs with
# the other's 1 GiB files still on the servers (the figures are compared
# within a part only).  A vfsd target and its base twin swap places every
# other round (round_order).
declare -A runs res
# vfsd's peak RSS: the highest VmHWM of a vfsd target's daemon after any
# figure (KiB), and that figure
declare -A hwm=() hwm_fig=()
note_hwm() {	# TARGET FIGURE
	local m=${mountof[$1]} kb
	case $m in vfsd-*|base-*) ;; *) return 0 ;; esac
	kb=$(vm_hwm_kb "${mpid[$m]}")
	[ -n "$kb" ] || return 0
	if [ "$kb" -gt "${hwm[$1]:-0}" ]; then
		hwm[$1]=$kb
		hwm_fig[$1]=$2
	fi
}
# one figure on one target (and the figures that follow it there)
measure() {	# spec target
	local id label unit prep t=$2 next
	IFS='|' read -r id label unit prep <<<"$1"
	if { [[ $id != seq* && $id != cpu* ]] && ! is_fuse "$t"; } ||
		{ [ "$part" = nfs ] && [[ $sftp_only == *" $id "* ]]; }; then
		runs[$id,$t]="|-"
	else
		if [ "$prep" = fresh ]; then
			! declare -F "prep_$id" >/dev/null || "prep_$id" "$t"
			remount_fresh "$t"
		fi
		"fig_$id" "$t"
		runs[$id,$t]="${runs[$id,$t]:-}|$val"
		log "$label: ${tname[$t]} = $val $unit"
		note_hwm "$t" "$id"
	fi
	for next in "${figures[@]}"; do
		[[ $next != *"|after:$id" ]] || measure "$next" "$t"
	done
}
parts=()
[ "$do_sftp" = 0 ] || parts+=(sftp)
[ "$do_nfs" = 0 ] || parts+=(nfs)
for r in $(seq "$repeat"); do
	[ "$repeat" = 1 ] || log "round $r of $repeat"
	for part in "${parts[@]}"; do
		declare -n part_targets="${part}_targets"
		mapfile -t order < <(round_order "$r" "${part_targets[@]}")
		for spec in "${figures[@]}"; do
			[[ $spec != *"|after:"* ]] || continue
			for t in "${order[@]}"; do
				measure "$spec" "$t"
			done
		done
		unset -n part_targets
	done
done
collect_medians
# vfsd's peak RSS: the highest of every figure, not a median
figures+=("rss|peak RSS (VmHWM), any figure|MiB|report")
for t in "${targets[@]}"; do
	if [ -n "${hwm[$t]:-}" ]; then
		res[rss,$t]=$(awk -v k="${hwm[$t]}" 'BEGIN { printf "%.1f", k / 1024 }')
		for spec in "${figures[@]}"; do
			[[ $spec != "${hwm_fig[$t]}|"* ]] ||
				note[rss,$t]="${tname[$t]}: highest after $(cut -d'|' -f2 <<<"$spec")"
		done
	else
		res[rss,$t]=-
	fi
done
elapsed=$(( $(date +%s) - start_ts ))
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report ---------------------------------------------------------------

ratio() {	# a b -> a/b, or why not
	case $1 in fails*) echo "vfsd fails"; return ;; -) echo "n/a"; return ;; esac
	case $2 in fails*) echo "n/a (fails)"; return ;; -) echo "n/a"; return ;; esac
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

# Issue 15's floors for the SFTP engine: id | anchor (a target, or a
# number in the figure's unit) | >= or <= | floor of vfsd/anchor
floors=(
	"seqwrite|sshcat|>=|0.9"
	"seqread|sshcat|>=|0.9"
	"randread4|sshfs|>=|1.5"
	"randread64|sshfs|>=|1.5"
	"randwrite4|sshfs|>=|1.0"
	"qemu|sshfs|>=|1.0"
	"qemusync|sshfs|>=|1.0"
	"create|sshfs|>=|1.5"
	"ls|sshfs|>=|1.5"
	"stat|sshfs|>=|1.5"
	"unlink|sshfs|>=|1.5"
	"cpuw|sshfs|<=|1.0"
	"cpur|sshfs|<=|1.0"
	"rss|64|<=|1.0"
)
verdict() {	# RATIO OP FLOOR -> pass, FAIL, or "-" when there is no ratio
	case $1 in ''|*[!0-9.]*) echo "-"; return ;; esac
	awk -v r="$1" -v op="$2" -v f="$3" 'BEGIN {
		ok = (op == ">=") ? (r >= f) : (r <= f); print ok ? "pass" : "FAIL" }'
}

outdir=$here/results
mkdir -p "$outdir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
summary=$outdir/remote-$stamp.txt
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"
vfsd_ver=$("$T/bin/vfsd" --version 2>/dev/null | head -n1 || echo '?')
versions="vfsd $vfsd_ver ($git_rev); $(sshfs --version 2>&1 | grep -m1 -i 'sshfs version' || echo 'sshfs ?'); $(ssh -V 2>&1); libnfs-utils $(dpkg-query -W -f='${Version}' libnfs-utils 2>/dev/null || echo '?'); nfs-ganesha $(dpkg-query -W -f='${Version}' nfs-ganesha 2>/dev/null || echo '?')"
[ "$do_sftp" = 0 ] || versions+="; $(fio --version); $(qemu-img --version | head -n1)"

# part -> "columns" and "ratio pairs"
sftp_cols=(vfsd sshfs sshfs4 sshcat)
sftp_pairs=(vfsd:sshfs vfsd:sshfs4 vfsd:sshcat)
nfs_cols=(vfsd3 nfscp3 vfsd4 nfscp4)
nfs_pairs=(vfsd3:nfscp3 vfsd4:nfscp4)
if [ -n "$base_vfsd_src" ]; then
	sftp_cols=("${sftp_targets[@]}")
	sftp_pairs+=(vfsd:bvfsd)
	nfs_cols=("${nfs_targets[@]}")
	nfs_pairs+=(vfsd3:bvfsd3 vfsd4:bvfsd4)
fi
pair_name() {
	local a=${1%%:*} b=${1##*:}
	if [ "${twin[$a]:-}" = "$b" ]; then echo "${tname[$a]}/base"; else echo "${tname[$a]}/${tname[$b]}"; fi
}
declare -A labels=() units=()
for spec in "${figures[@]}"; do
	IFS='|' read -r id label unit _ <<<"$spec"
	labels[$id]=$label
	units[$id]=$unit
done
# the floors' rows: figure, unit, vfsd, anchor, its value, ratio, floor,
# verdict, and with --base-vfsd the base daemon's value, ratio, verdict
floor_rows() {
	local spec id anchor op fl av an r line
	for spec in "${floors[@]}"; do
		IFS='|' read -r id anchor op fl <<<"$spec"
		if [ -n "${tname[$anchor]:-}" ]; then
			av=${res[$id,$anchor]}
			an=${tname[$anchor]}
		else
			av=$anchor
			an=ceiling
		fi
		r=$(ratio "${res[$id,vfsd]}" "$av")
		line="floor	$id	${units[$id]}	${res[$id,vfsd]}	$an	$av	$r	$op $fl	$(verdict "$r" "$op" "$fl")"
		if [ -n "$base_vfsd_src" ]; then
			r=$(ratio "${res[$id,bvfsd]}" "$av")
			line+="	${res[$id,bvfsd]}	$r	$(verdict "$r" "$op" "$fl")"
		fi
		echo "$line"
	done
}
notes_all() {	# every note, one a line
	local k
	for k in "${!note[@]}"; do echo "${labels[${k%%,*}]}: ${note[$k]}"; done | sort
}

{
	echo "# vfsd remote benchmark, $stamp"
	echo "# machine: $machine"
	echo "# versions: $versions"
	[ "$do_sftp" = 0 ] || echo "# ssh and sshfs transport: $ssh_crypto_text"
	[ -z "$base_vfsd_src" ] || echo "# base vfsd: $base_ver"
	for n in "${base_notes[@]}"; do echo "# note: $n"; done
	echo "# load average at start: $load0, at end: $load1; elapsed ${elapsed}s"
	qopt=; [ "$quick" = 0 ] || qopt=" --quick"
	oopt=; [ -z "$only" ] || oopt=" --only $only"
	bopt=; [ -z "$base_vfsd_src" ] || bopt=" --base-vfsd $base_vfsd_src"
	dopt=; [ -z "$delay_us" ] || dopt=" --delay-us $delay_us"
	echo "# command: $0$qopt$oopt --repeat $repeat$bopt$dopt"
	echo "# sizes: ${size_mb} MiB files and image, ${nfiles} files, fio ${fio_runtime} s; servers' directories in /dev/shm"
	[ -z "$delay_us" ] || echo "# delay: every client through bench/delay_relay, ${delay_us} us each way (round trip + $((2 * delay_us)) us)"
	for part in sftp nfs; do
		[ "$part" = sftp ] && [ "$do_sftp" = 0 ] && continue
		[ "$part" = nfs ] && [ "$do_nfs" = 0 ] && continue
		declare -n cols=${part}_cols pairs=${part}_pairs
		hdr="# part	figure	unit"
		for t in "${cols[@]}"; do hdr+="	${tname[$t]}"; done
		for p in "${pairs[@]}"; do hdr+="	$(pair_name "$p")"; done
		echo "$hdr"
		for spec in "${figures[@]}"; do
			IFS='|' read -r id _ unit _ <<<"$spec"
			[ "$part" = sftp ] || [[ $sftp_only != *" $id "* ]] || continue
			line="$part	$id	$unit"
			for t in "${cols[@]}"; do line+="	${res[$id,$t]:--}"; done
			for p in "${pairs[@]}"; do line+="	$(ratio "${res[$id,${p%%:*}]:--}" "${res[$id,${p##*:}]:--}")"; done
			echo "$line"
		done
		unset -n cols pairs
	done
	if [ "$do_sftp" = 1 ]; then
		hdr="# floor	figure	unit	vfsd	anchor	anchor value	vfsd/anchor	floor	verdict"
		[ -z "$base_vfsd_src" ] || hdr+="	base vfsd	base/anchor	base verdict"
		echo "$hdr"
		floor_rows
	fi
	notes_all | sed 's/^/# note: /'
} >"$summary"

echo
echo "vfsd sftp:// and nfs:// vs sshfs, ssh cat, nfs-cp on loopback  ($machine)"
echo "sizes: ${size_mb} MiB files and image, ${nfiles} files, fio ${fio_runtime} s; median of $repeat; ${elapsed}s; load average $load0 at start, $load1 at end"
[ "$do_sftp" = 0 ] || echo "ssh and sshfs transport: $ssh_crypto_text (as vfsd's libssh2 negotiates)"
[ -z "$base_vfsd_src" ] || echo "base vfsd: $base_ver"
for part in sftp nfs; do
	[ "$part" = sftp ] && [ "$do_sftp" = 0 ] && continue
	[ "$part" = nfs ] && [ "$do_nfs" = 0 ] && continue
	declare -n cols=${part}_cols pairs=${part}_pairs
	echo
	fmt='%-34s %-9s'
	args=(figure unit)
	for t in "${cols[@]}"; do fmt+=' %18s'; args+=("${tname[$t]}"); done
	for p in "${pairs[@]}"; do fmt+=' %26s'; args+=("$(pair_name "$p")"); done
	fmt+='\n'
	# shellcheck disable=SC2059
	printf "$fmt" "${args[@]}"
	grep "^$part	" "$summary" | while IFS=$'\t' read -r -a f; do
		# shellcheck disable=SC2059
		printf "$fmt" "${labels[${f[1]}]}" "${f[@]:2}"
	done
	unset -n cols pairs
done
if [ "$do_sftp" = 1 ]; then
	echo
	echo "Issue 15's floors: vfsd sftp:// against each figure's anchor (sshfs: default max_conns=1)"
	fmt='%-34s %-9s %10s %-10s %12s %11s %7s %7s'
	args=(figure unit vfsd anchor "anchor value" vfsd/anchor floor verdict)
	if [ -n "$base_vfsd_src" ]; then
		fmt+=' %10s %11s %7s'
		args+=("base vfsd" base/anchor verdict)
	fi
	fmt+='\n'
	# shellcheck disable=SC2059
	printf "$fmt" "${args[@]}"
	grep '^floor	' "$summary" | while IFS=$'\t' read -r -a f; do
		# shellcheck disable=SC2059
		printf "$fmt" "${labels[${f[1]}]}" "${f[@]:2}"
	done
fi
if [ ${#note[@]} -gt 0 ]; then
	echo
	notes_all | sed 's/^/note: /'
fi
cat <<EOF

How (SRC: random data in /dev/shm; DIR: the target's directory; every FUSE
figure on a fresh mount after drop_caches and 2 GiB written to and freed
from /dev/shm, unlink right after stat on the same mount; ssh and sshfs
with -o Ciphers=${ssh_cipher:-default} -o MACs=${ssh_mac:-default}):
  seq write  FUSE: dd if=SRC of=DIR/seq.dat bs=1M conv=fsync
             ssh cat: ssh -p PORT -i KEY root@127.0.0.1 'cat > DIR/seq.dat' < SRC
             nfs-cp: nfs-cp SRC 'nfs://127.0.0.1/EXPORT/DIR/seq.dat?version=V&nfsport=..'
  seq read   FUSE: dd if=DIR/seq.dat of=/dev/null bs=1M
             ssh cat: ssh ... 'cat DIR/seq.dat' > /dev/null
             nfs-cp: nfs-cp 'nfs://...seq.dat?...' /dev/shm/NEWFILE (it refuses /dev/null: O_EXCL)
  CPU        (SFTP) CPU seconds per GiB copied, utime+stime in /proc/PID/stat incl. reaped
             children: vfsd + sshd's tree; sshfs + its ssh + sshd's tree; ssh cat: ssh +
             sshd's tree (cat included); dd not counted; lower is better; "of it sshd's":
             sshd's tree alone
  fio        (SFTP) fio --filename=DIR/img.raw --size=${size_mb}M --bs=4k|64k --direct=1
             --ioengine=libaio --iodepth=16 --time_based --runtime=${fio_runtime} --ramp_time=1;
             reads --rw=randrw --rwmixread=100 (opens O_RDWR as QEMU does), writes
             --rw=randwrite; img.raw: a copy of SRC put in on the server side
  qemu-img   (SFTP) qemu-img convert -f raw -O qcow2 SRC DIR/out.qcow2 (default cache mode:
             unsafe); "+ sync": then sync DIR/out.qcow2, MiB/s of SRC over both
  create / stat / unlink   bench/metabench DIR/meta N create|stat|unlink (one thread)
  ls -l      ls -l DIR/meta (N entries) > file, entries per second
  peak RSS   highest VmHWM (/proc/PID/status) of the vfsd daemon after any figure
             (each on a fresh daemon); lower is better
  ssh cat and nfs-cp times include their connection set-up; "-": no such figure.
EOF
if [ -n "$base_vfsd_src" ]; then
	echo "  base vfsd: the same URLs mounted by $base_vfsd_src in the same rounds;"
	echo "             vfsd/base above 1 = this checkout's vfsd faster (CPU, RSS: bigger)"
	for n in "${base_notes[@]}"; do echo "note: $n"; done
fi
echo "summary: $summary"
