#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# bench_image.sh - vfsd as a VM image store: random 4k I/O inside a raw
# image, qemu-img convert to qcow2 and vfsctl image clone, through vfsd's
# file://, sftp:// and nfs:// (v3) mounts, side by side with the raw
# directory and with sshfs on the same sshd, in one run, on loopback.
#
# Usage: bench/bench_image.sh [--quick] [--repeat N] [--dir BASE]
#                             [--vfsd PATH] [--vfsctl PATH]
#                             [--base-vfsd PATH [--base-vfsctl PATH]]
#                             [--keep] [--help]
#
#   --quick        smoke run: 256 MiB image, 1 GiB sparse clone, 3 s fio
#                  (about 2-3 minutes)
#   --repeat N     run every figure N times and report the median (default
#                  3, 1 with --quick); one round of the full run (1 GiB
#                  image, 4 GiB sparse clone, 10 s fio) takes about 6-8
#                  minutes
#   --dir BASE     where the scratch directory goes (default /var/tmp): the
#                  raw directory, vfsd's file:// backing directory and the
#                  source images all live under one mktemp directory there
#   --vfsd PATH    daemon to test (default build/vfsd/vfsd of this checkout)
#   --vfsctl PATH  vfsctl to use (default build/vfsd/vfsctl); both are
#                  copied first, so a rebuild during the run is harmless
#   --base-vfsd PATH
#                  a second daemon to compare with (e.g. a build of an
#                  older commit): every vfsd target gets a twin "base vfsd
#                  ..." served by it with the same URLs (its own directories
#                  beside vfsd's), measured in the same rounds right before
#                  or after its twin (the order alternates from round to
#                  round); the table adds the ratios vfsd/base
#   --base-vfsctl PATH
#                  the vfsctl of the base build, for its clones (default:
#                  vfsctl beside the base daemon)
#   --keep         keep the scratch directory (logs, server configs)
#
# Targets: "raw" (a directory beside vfsd's backing directory: the anchor),
# "vfsd local" (vfsd -m /local=file://DIR), "vfsd sftp" (-m /ssh=sftp://
# root@127.0.0.1:PORT/DIR?identity=..&known_hosts=.., default options),
# "vfsd sftp rx" (the same URL + &remote_exec=yes under /sshx; clone only),
# "vfsd nfs3" (-m /nfs3=nfs://127.0.0.1/EXPORT?version=3&nfsport=..&
# mountport=..) and "sshfs" (default options but the transport, same
# sshd: the second anchor).  sshfs runs ssh with the cipher and MAC vfsd
# negotiates, aes128-ctr and hmac-sha2-256 (ssh_crypto in bench/lib.sh;
# BENCH_SSH_CIPHER / BENCH_SSH_MAC override them).  One vfsd serves all four prefixes.  sshd and nfs-ganesha come
# from bench/remote_servers.py (tests/integration/sshd.py, ganesha.py):
# their directories are in /dev/shm, while raw and vfsd local are on the
# disk under BASE.
#
# Figures:
#   randread 4k and 64k, randwrite 4k   fio --bs=4k|64k --direct=1
#       --ioengine=libaio --iodepth=16 --time_based --runtime=10 (3 with
#       --quick) --ramp_time=1 inside a fully allocated raw image of random
#       data (copied in on the server side first); a remount and
#       drop_caches before each.  Reads run as --rw=randrw --rwmixread=100
#       so that fio opens the image O_RDWR as QEMU does (with
#       --rw=randread it opens O_RDONLY; see run_fio in bench/lib.sh);
#       writes as --rw=randwrite.  If a client refuses O_DIRECT, the
#       figure is taken with --direct=0 and the notes say so.
#   qemu-img raw->qcow2       qemu-img convert -f raw -O qcow2 SRC DST with
#       qemu-img's default destination cache mode (unsafe for convert: no
#       flushes); SRC: the image of random data on BASE's disk, read once
#       into the page cache first.  MiB/s = SRC size / time.  "+ sync"
#       adds the time of a following `sync DST`.  If the default mode
#       fails, -t none is tried and the notes say so.
#   image clone               vfsctl image clone SRC DST of a sparse raw
#       image (4 GiB, 256 MiB of random data in 4 extents; --quick: 1 GiB,
#       64 MiB) through each vfsd mount; on raw: cp --sparse=always.
#       Seconds, lower is better (the ratios are inverted so that above 1
#       still means "faster").  Each clone is compared with cmp on the
#       server side in the first round, and its allocated size (du of the
#       backing file) is reported.
#
# Every FUSE figure runs on a freshly (re)mounted client after
# `sync; echo 3 > /proc/sys/vm/drop_caches`.  Needs root, fio, qemu-utils,
# openssh-server, sshfs, nfs-ganesha(-vfs), fuse3, python3.  The table goes
# to stdout and a tab-separated copy to bench/results/image-<UTC time>.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
me=bench_image.sh
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

quick=0 repeat= base=/var/tmp keep=0
vfsd_src=$top/build/vfsd/vfsd vfsctl_src=$top/build/vfsd/vfsctl base_vfsctl_src=
while [ $# -gt 0 ]; do
	common_opt "$@"
	if [ "$nargs" = 0 ]; then
		case $1 in
		--vfsctl) vfsctl_src=${2:?}; nargs=2 ;;
		--base-vfsctl) base_vfsctl_src=${2:?}; nargs=2 ;;
		*) unknown_opt "$1" ;;
		esac
	fi
	shift "$nargs"
done
parse_done

if [ "$quick" = 1 ]; then
	img_mb=256 runtime=3 clone_mb=1024 clone_data_mb=64
else
	img_mb=1024 runtime=10 clone_mb=4096 clone_data_mb=256
fi

[ "$(id -u)" = 0 ] || { echo "$me: run it as root (servers, FUSE mounts, drop_caches)" >&2; exit 2; }
need python3 python3; need fusermount3 fuse3; need findmnt util-linux
need mountpoint util-linux; need fio fio; need qemu-img qemu-utils
need sshfs sshfs; need ssh openssh-client; need cmp diffutils
[ -x "$vfsd_src" ] || { echo "$me: no daemon at $vfsd_src (meson setup build && meson compile -C build)" >&2; exit 2; }
[ -x "$vfsctl_src" ] || { echo "$me: no vfsctl at $vfsctl_src (meson compile -C build)" >&2; exit 2; }
if [ -n "$base_vfsd_src" ]; then
	[ -n "$base_vfsctl_src" ] || base_vfsctl_src=$(dirname "$base_vfsd_src")/vfsctl
	[ -x "$base_vfsctl_src" ] || { echo "$me: no base vfsctl at $base_vfsctl_src (--base-vfsctl)" >&2; exit 2; }
elif [ -n "$base_vfsctl_src" ]; then
	echo "$me: --base-vfsctl needs --base-vfsd" >&2; exit 2
fi

# ---- scratch area, servers, mounts and cleanup ----------------------------

T=$(mktemp -d "$base/vfsd-bench-image.XXXXXX")
mkdir -p "$T/bin" "$T/logs" "$T/srv" "$T/home" "$T/mnt" "$T/src" "$T/raw" "$T/vfsd-back"
[ -z "$base_vfsd_src" ] || mkdir -p "$T/base-back"
chmod 700 "$T/home"
srv_pid=
declare -A mpid=()	# mount name -> pid of the FUSE daemon serving it

# Measured commands run in the background and are waited for (run_bg):
# bash defers a trap while a foreground child runs, and ignores a Ctrl-C
# the child handled itself (fio does), so the run would just go on.
child=
trap cleanup_remote EXIT
trap interrupted INT TERM

do_nfs=1
# The FUSE clients.  Each runs in the foreground (-f) so that we hold its
# pid, and without fd 9 (the servers' control pipe), so that the servers
# see EOF as soon as this shell dies, whatever the daemons do.
start_mount() {	# NAME
	local m=$1 mnt=$T/mnt/$1 args=()
	mkdir -p "$mnt"
	case $m in
	vfsd)
		args=(-m "/local=file://$T/vfsd-back" -m "/ssh=$SFTP_URL"
		      -m "/sshx=$SFTP_URL&remote_exec=yes")
		[ "$do_nfs" = 0 ] || args+=(-m "/nfs3=$NFS3_URL")
		# HOME without ~/.ssh and no agent: key and known_hosts only from the URL
		env -u SSH_AUTH_SOCK HOME="$T/home" "$T/bin/vfsd" -f "${args[@]}" "$mnt" \
			>>"$T/logs/$m.log" 2>&1 9>&- & ;;
	base)	# vfsd's twin: the same URLs, less what the base daemon refused
		args=(-m "/local=$(base_url "file://$T/base-back")" -m "/ssh=$(base_url "$SFTP_URL")"
		      -m "/sshx=$(base_url "$SFTP_URL&remote_exec=yes")")
		[ "$do_nfs" = 0 ] || args+=(-m "/nfs3=$(base_url "$NFS3_URL")")
		env -u SSH_AUTH_SOCK HOME="$T/home" "$T/bin/base-vfsd" -f "${args[@]}" "$mnt" \
			>>"$T/logs/$m.log" 2>&1 9>&- & ;;
	sshfs) start_sshfs "$m" ;;
	*) die "start_mount: unknown mount $m" ;;
	esac
	mount_started "$m" $!
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# ---- targets --------------------------------------------------------------
# tdir: where the client sees the target's directory; sdir: the same
# directory on the server side (set-up, checks and clean-up behind the
# clients' backs, never while a figure runs).

declare -A tname mountof tdir sdir
setup_targets() {
	tname=([raw]=raw [local]="vfsd local" [sftp]="vfsd sftp" [sftpx]="vfsd sftp rx"
	       [nfs3]="vfsd nfs3" [sshfs]=sshfs)
	mountof=([raw]= [local]=vfsd [sftp]=vfsd [sftpx]=vfsd [nfs3]=vfsd [sshfs]=sshfs)
	tdir=([raw]=$T/raw [local]=$T/mnt/vfsd/local [sftp]=$T/mnt/vfsd/ssh/vfsd
	      [sftpx]=$T/mnt/vfsd/sshx/vfsdx [sshfs]=$T/mnt/sshfs/sshfs)
	sdir=([raw]=$T/raw [local]=$T/vfsd-back [sftp]=$SSH_REMOTE/vfsd
	      [sftpx]=$SSH_REMOTE/vfsdx [sshfs]=$SSH_REMOTE/sshfs)
	if [ "$do_nfs" = 1 ]; then
		tdir[nfs3]=$T/mnt/vfsd/nfs3/vfsd3
		sdir[nfs3]=$NFS_EXPORT/vfsd3
	fi
	if [ -n "$base_vfsd_src" ]; then
		tname+=([blocal]="base vfsd local" [bsftp]="base vfsd sftp"
			[bsftpx]="base vfsd sftp rx" [bnfs3]="base vfsd nfs3")
		mountof+=([blocal]=base [bsftp]=base [bsftpx]=base [bnfs3]=base)
		tdir+=([blocal]=$T/mnt/base/local [bsftp]=$T/mnt/base/ssh/bvfsd
		       [bsftpx]=$T/mnt/base/sshx/bvfsdx)
		sdir+=([blocal]=$T/base-back [bsftp]=$SSH_REMOTE/bvfsd
		       [bsftpx]=$SSH_REMOTE/bvfsdx)
		twin=([local]=blocal [sftp]=bsftp [sftpx]=bsftpx)
		if [ "$do_nfs" = 1 ]; then
			tdir[bnfs3]=$T/mnt/base/nfs3/bvfsd3
			sdir[bnfs3]=$NFS_EXPORT/bvfsd3
			twin[nfs3]=bnfs3
		fi
	fi
	local t
	for t in "${!sdir[@]}"; do mkdir -p "${sdir[$t]}"; done
}

# ---- measuring ------------------------------------------------------------

# Result of the last measurement: a number, "fails (WHY)" or "-".
val=
declare -A note=()	# "figure,target" -> remark for the notes column

# run_timed STEP CMD... : secs = seconds of CMD, or rc != 0 and why = reason
secs= why=
run_timed() {
	local step=$1 t0 t1 rc=0 err=$T/logs/cmd.err
	shift
	t0=$(now)
	run_bg "$@" >"$T/logs/cmd.out" 2>"$err" || rc=$?
	t1=$(now)
	{ echo "[$step] $* -> rc=$rc"; cat "$err"; } >>"$T/logs/cmd.log"
	if [ "$rc" != 0 ]; then
		why="fails ($(errname "$(head -c 300 "$err")"))"
		log "FAILED: $step (rc $rc): $(head -n 3 "$err" | tr '\n' ' ')"
		return 1
	fi
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}
mibps() { awk -v m="$1" -v s="$2" 'BEGIN { printf "%.1f", m / s }'; }

SRC=	# the raw image of random data, on BASE's disk
SPARSE=	# the sparse image to clone, on BASE's disk

# The fio image: a fully allocated copy of SRC, put in on the server side.
put_image() {	# TARGET
	[ -f "${sdir[$1]}/img.raw" ] || cp "$SRC" "${sdir[$1]}/img.raw" ||
		die "copying the image into ${sdir[$1]}"
}
fio_fig() {	# FIGURE TARGET RW BS
	local id=$1 t=$2 rw=$3 bs=$4
	put_image "$t"
	remount_fresh "$t"
	run_fio "${tdir[$t]}/img.raw" "$img_mb" "$rw" "$bs" 1 "$runtime"
	if [[ $val == fails* ]] && [ "$t" != raw ]; then
		local first=$val
		log "  ${tname[$t]}: $rw with --direct=1 $first; again with --direct=0"
		remount_fresh "$t"
		run_fio "${tdir[$t]}/img.raw" "$img_mb" "$rw" "$bs" 0 "$runtime"
		note[$id,$t]="${tname[$t]}: direct=1 $first, figure with direct=0"
	fi
}
fig_randread() { fio_fig randread "$1" randread 4k; }
fig_randread64() { fio_fig randread64 "$1" randread 64k; }
fig_randwrite() {
	fio_fig randwrite "$1" randwrite 4k
	server_rm "$1" img.raw	# room for the next figures (the client is remounted before any use)
}

# The sftp rx targets (remote_exec) differ from the sftp ones in clones only.
is_rx() { [ "$1" = sftpx ] || [ "$1" = bsftpx ]; }

# qemu-img convert: two figures from one run, without and with `sync DST`.
declare -A qsync=()
fig_qemu() {
	local t=$1 dst=${tdir[$1]}/out.qcow2 s1
	! is_rx "$t" || { val=-; qsync[$t]=-; return; }
	server_rm "$t" out.qcow2
	remount_fresh "$t"
	cat "$SRC" >/dev/null
	if run_timed "qemu-img convert to ${tname[$t]}" qemu-img convert -f raw -O qcow2 "$SRC" "$dst"; then
		s1=$secs
	else
		local first=$why
		server_rm "$t" out.qcow2
		remount_fresh "$t"
		cat "$SRC" >/dev/null
		if run_timed "qemu-img convert -t none to ${tname[$t]}" qemu-img convert -f raw -O qcow2 -t none "$SRC" "$dst"; then
			s1=$secs
			note[qemu,$t]="${tname[$t]}: default cache $first, figure with -t none"
		else
			val="$first; -t none $why"; qsync[$t]=$val
			server_rm "$t" out.qcow2
			return
		fi
	fi
	val=$(mibps "$img_mb" "$s1")
	if run_timed "sync of the qcow2 on ${tname[$t]}" sync "$dst"; then
		qsync[$t]=$(mibps "$img_mb" "$(awk -v a="$s1" -v b="$secs" 'BEGIN { print a + b }')")
	else
		qsync[$t]=$why
	fi
	server_rm "$t" out.qcow2
}
fig_qemu_sync() { val=${qsync[$1]}; }

# Clone of the sparse image; checked on the server side in the first round.
declare -A calloc=() csame=()
fig_clone() {
	local t=$1
	[ "$t" != sshfs ] || { val=-; calloc[$t]=-; csame[$t]=-; return; }
	server_rm "$t" sparse.raw clone.raw
	cp --sparse=always "$SPARSE" "${sdir[$t]}/sparse.raw" || die "copying the sparse image into ${sdir[$t]}"
	remount_fresh "$t"
	local src=${tdir[$t]}/sparse.raw dst=${tdir[$t]}/clone.raw ok
	if [ "$t" = raw ]; then
		run_timed "cp --sparse=always on raw" cp --sparse=always "$src" "$dst" && ok=1 || ok=0
	else
		local ctl=vfsctl
		[ "${mountof[$t]}" != base ] || ctl="base-vfsctl"
		run_timed "vfsctl image clone on ${tname[$t]}" \
			"$T/bin/$ctl" -m "$T/mnt/${mountof[$t]}" image clone "$src" "$dst" && ok=1 || ok=0
	fi
	if [ "$ok" = 1 ]; then
		val=$secs
		if [ -z "${csame[$t]:-}" ]; then
			if cmp "${sdir[$t]}/sparse.raw" "${sdir[$t]}/clone.raw" >>"$T/logs/cmd.log" 2>&1; then
				csame[$t]=yes
			else
				csame[$t]=NO
				log "FAILED: the clone on ${tname[$t]} differs from its source"
			fi
			calloc[$t]=$(du -B1M "${sdir[$t]}/clone.raw" | cut -f1)
		fi
	else
		val=$why; csame[$t]=-; calloc[$t]=-
	fi
	server_rm "$t" sparse.raw clone.raw
}
fig_clone_alloc() { val=${calloc[$1]}; }
fig_clone_same() { val=${csame[$1]}; }

# id | label | unit | measured (1) or derived from the figure before (0)
figures=(
	"randread|fio randread 4k qd16|IOPS|1"
	"randread64|fio randread 64k qd16|IOPS|1"
	"randwrite|fio randwrite 4k qd16|IOPS|1"
	"qemu|qemu-img convert ->qcow2|MiB/s|1"
	"qemu_sync|qemu-img convert ->qcow2 + sync|MiB/s|0"
	"clone|clone $((clone_mb / 1024)) GiB sparse|s|1"
	"clone_alloc|clone: dst allocated|MiB|0"
	"clone_same|clone: cmp identical|-|0"
)

# ---- run ------------------------------------------------------------------

bench_start "other work competes with the clients and servers"
loadmax=${load0%% *}
log "scratch: $T (on $(findmnt -n -o SOURCE,FSTYPE -T "$T" | tr -s ' '))"
cp "$vfsd_src" "$T/bin/vfsd"
cp "$vfsctl_src" "$T/bin/vfsctl"
if [ -n "$base_vfsd_src" ]; then
	base_install
	cp "$base_vfsctl_src" "$T/bin/base-vfsctl"
fi
# the checkout's state when the binaries were taken (it may move during the run)
git_rev=$(git -C "$top" describe --always --dirty 2>/dev/null || echo '?')
SRC=$T/src/src.raw
log "source image: ${img_mb} MiB of random data in $SRC"
head -c "${img_mb}M" /dev/urandom >"$SRC" || die "making $SRC"
SPARSE=$T/src/sparse.raw
log "sparse image: ${clone_mb} MiB, ${clone_data_mb} MiB of random data in 4 extents, in $SPARSE"
truncate -s "${clone_mb}M" "$SPARSE"
for i in 0 1 2 3; do
	# extents at 0 (where a partition table would be), 1/4, 1/2 and 3/4 + a bit
	dd if=/dev/urandom of="$SPARSE" bs=1M count=$((clone_data_mb / 4)) \
		seek=$((i * clone_mb / 4 + (i == 3 ? 7 : 0))) conv=notrunc status=none ||
		die "writing $SPARSE"
done
log "starting the servers"
start_servers --sftp --nfs
if [ -n "${NFS_SKIP:-}" ]; then
	log "WARNING: NFS target skipped: $NFS_SKIP"
	do_nfs=0
fi
setup_targets
if [ -n "$base_vfsd_src" ]; then
	probe_urls=("file://$T/base-back" "$SFTP_URL" "$SFTP_URL&remote_exec=yes")
	[ "$do_nfs" = 0 ] || probe_urls+=("$NFS3_URL")
	base_probe "${probe_urls[@]}"
fi
log "sshd on 127.0.0.1:$SSH_PORT serving $SSH_REMOTE"
[ "$do_nfs" = 0 ] || log "ganesha on 127.0.0.1:$NFS_PORT (mount $NFS_MNT_PORT) exporting $NFS_EXPORT"

targets=(raw local sftp sftpx)
[ "$do_nfs" = 0 ] || targets+=(nfs3)
targets+=(sshfs)
mounts=(vfsd sshfs)
if [ -n "$base_vfsd_src" ]; then
	# each twin right after its vfsd target (round_order swaps the two)
	targets=(raw local blocal sftp bsftp sftpx bsftpx)
	[ "$do_nfs" = 0 ] || targets+=(nfs3 bnfs3)
	targets+=(sshfs)
	mounts+=(base)
fi
# mount the clients once up front: a broken one stops the run at once
for m in "${mounts[@]}"; do
	start_mount "$m"
done
if [ "$do_nfs" = 1 ]; then
	if [ -n "$base_vfsd_src" ]; then start_nfs_janitor nfs3 bnfs3; else start_nfs_janitor nfs3; fi
fi
for t in "${targets[@]}"; do
	[ -d "${tdir[$t]}" ] || die "${tdir[$t]} not visible through ${mountof[$t]:-the raw directory}"
done

# A vfsd target and its base twin swap places every other round
# (round_order), so that neither always measures first.
declare -A runs res
for r in $(seq "$repeat"); do
	[ "$repeat" = 1 ] || log "round $r of $repeat"
	mapfile -t order < <(round_order "$r" "${targets[@]}")
	for spec in "${figures[@]}"; do
		IFS='|' read -r id label unit measured <<<"$spec"
		for t in "${order[@]}"; do
			if [ "$measured" = 1 ]; then
				l=$(cut -d' ' -f1 /proc/loadavg)
				loadmax=$(awk -v a="$loadmax" -v b="$l" 'BEGIN { print (b > a ? b : a) }')
			fi
			case $id in
			randread*|randwrite) ! is_rx "$t" || { val=-; runs[$id,$t]="|-"; continue; } ;;
			esac
			"fig_$id" "$t"
			runs[$id,$t]="${runs[$id,$t]:-}|$val"
			u=" $unit"; [ "$unit" != - ] || u=
			[ "$val" = - ] || log "$label: ${tname[$t]} = $val$u"
		done
	done
done
collect_medians
elapsed=$(( $(date +%s) - start_ts ))
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report ---------------------------------------------------------------

ratio() {	# UNIT a b -> a/b (b/a for seconds: above 1 = a faster), or why not
	case $1 in MiB|-) echo "-"; return ;; esac
	case $2 in fails*) echo "fails"; return ;; -|'') echo "-"; return ;; esac
	case $3 in fails*) echo "n/a (fails)"; return ;; -|'') echo "-"; return ;; esac
	if [ "$1" = s ]; then
		awk -v a="$2" -v b="$3" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }'
	else
		awk -v a="$2" -v b="$3" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
	fi
}

outdir=$here/results
mkdir -p "$outdir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
summary=$outdir/image-$stamp.txt
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"
disk="raw + vfsd local on $(findmnt -n -o FSTYPE,SOURCE -T "$T" | tr -s ' '); sshd/ganesha directories on $(stat -f -c %T "$SSH_REMOTE") (/dev/shm)"
vfsd_ver=$("$T/bin/vfsd" --version 2>/dev/null | head -n1 || echo '?')
versions="$vfsd_ver ($git_rev); $(sshfs --version 2>&1 | grep -m1 -i 'sshfs version' || echo 'sshfs ?'); $(ssh -V 2>&1); nfs-ganesha $(dpkg-query -W -f='${Version}' nfs-ganesha 2>/dev/null || echo '?'); fio $(fio --version); $(qemu-img --version | head -n1)"

cols=(raw local sftp sftpx nfs3 sshfs)
pairs=(local:raw sftp:raw sftpx:raw nfs3:raw sshfs:raw sftp:sshfs)
if [ -n "$base_vfsd_src" ]; then
	cols=(raw local blocal sftp bsftp sftpx bsftpx nfs3 bnfs3 sshfs)
	pairs+=(local:blocal sftp:bsftp sftpx:bsftpx nfs3:bnfs3)
fi
short() { local n=${tname[$1]}; printf '%s' "${n#vfsd }"; }	# name in a heading
pair_name() {	# "A:B" -> heading; "x/base" for a target and its twin
	local a=${1%%:*} b=${1##*:}
	if [ "${twin[$a]:-}" = "$b" ]; then
		printf '%s/base' "$(short "$a")"
	else
		printf '%s/%s' "$(short "$a")" "$(short "$b")"
	fi
}
notes_of() {	# FIGURE -> the notes of its targets, "; "-separated
	local t out=
	for t in "${cols[@]}"; do
		[ -z "${note[$1,$t]:-}" ] || out+="${out:+; }${note[$1,$t]}"
	done
	echo "$out"
}

{
	echo "# vfsd image-store benchmark, $stamp"
	echo "# machine: $machine; $disk"
	echo "# versions: $versions"
	echo "# sshfs's transport: $ssh_crypto_text"
	[ -z "$base_vfsd_src" ] || echo "# base vfsd: $base_ver; base vfsctl: $base_vfsctl_src"
	for n in "${base_notes[@]}"; do echo "# note: $n"; done
	echo "# load average at start: $load0, highest 1-min seen before a figure: $loadmax, at end: $load1; elapsed ${elapsed}s"
	qopt=; [ "$quick" = 0 ] || qopt=" --quick"
	bopt=; [ -z "$base_vfsd_src" ] || bopt=" --base-vfsd $base_vfsd_src --base-vfsctl $base_vfsctl_src"
	echo "# command: $0$qopt --repeat $repeat$bopt"
	echo "# sizes: image ${img_mb} MiB (random data), fio ${runtime} s, clone ${clone_mb} MiB sparse with ${clone_data_mb} MiB data"
	hdr="# figure	unit"
	for t in "${cols[@]}"; do hdr+="	${tname[$t]}"; done
	for p in "${pairs[@]}"; do hdr+="	$(pair_name "$p")"; done
	echo "$hdr	notes"
	for spec in "${figures[@]}"; do
		IFS='|' read -r id label unit measured <<<"$spec"
		line="$id	$unit"
		for t in "${cols[@]}"; do line+="	${res[$id,$t]:--}"; done
		for p in "${pairs[@]}"; do line+="	$(ratio "$unit" "${res[$id,${p%%:*}]:--}" "${res[$id,${p##*:}]:--}")"; done
		echo "$line	$(notes_of "$id")"
	done
} >"$summary"

echo
echo "vfsd as a VM image store: raw dir, vfsd file:// sftp:// nfs:// (v3), sshfs on loopback  ($machine)"
echo "image ${img_mb} MiB, fio ${runtime} s, clone ${clone_mb} MiB sparse (${clone_data_mb} MiB data); median of $repeat; ${elapsed}s; load average $load0 at start, max $loadmax, $load1 at end"
[ -z "$base_vfsd_src" ] || echo "base vfsd: $base_ver"
echo
fmt='%-32s %-5s'
args=(figure unit)
for t in "${cols[@]}"; do fmt+=' %12s'; args+=("${tname[$t]}"); done
for p in "${pairs[@]}"; do fmt+=' %11s'; args+=("$(pair_name "$p")"); done
fmt+='  %s\n'
args+=(notes)
# shellcheck disable=SC2059
printf "$fmt" "${args[@]}"
declare -A labels=()
for spec in "${figures[@]}"; do
	IFS='|' read -r id label _ <<<"$spec"
	labels[$id]=$label
done
grep -v '^#' "$summary" | while IFS=$'\t' read -r -a f; do
	label=${labels[${f[0]}]:-${f[0]}}
	# shellcheck disable=SC2059
	printf "$fmt" "$label" "${f[@]:1}"
done
cat <<EOF

How (SRC: ${img_mb} MiB of random data on the raw disk; DIR: the target's
directory; a remount and drop_caches before every figure; "-": no such figure):
  fio        fio --filename=DIR/img.raw --size=${img_mb}M --bs=4k|64k --direct=1
             --ioengine=libaio --iodepth=16 --time_based --runtime=${runtime} --ramp_time=1
             reads: --rw=randrw --rwmixread=100 (fio opens the image O_RDWR, as QEMU does);
             writes: --rw=randwrite (img.raw: a copy of SRC put in on the server side)
  sshfs      with ${ssh_crypto_text} (as vfsd's libssh2 negotiates)
  qemu-img   qemu-img convert -f raw -O qcow2 SRC DIR/out.qcow2 (default cache
             mode: unsafe; SRC read into the page cache first); "+ sync": then sync DIR/out.qcow2
  clone      vfsctl -m MNT image clone DIR/sparse.raw DIR/clone.raw; raw: cp --sparse=always
             seconds (lower is better; its ratios are time(b)/time(a), above 1 = a faster);
             sftp rx: /sshx = the same sftp URL + &remote_exec=yes (GNU cp on the server)
  allocated  du -B1M of the clone on the server side; cmp of source and clone on the server side
EOF
if [ -n "$base_vfsd_src" ]; then
	echo "  base       the same mounts served by $base_vfsd_src (clones by its vfsctl) in the"
	echo "             same rounds; x/base above 1 = this checkout's vfsd faster (clone: time ratio)"
	for n in "${base_notes[@]}"; do echo "note: $n"; done
fi
echo "summary: $summary"
