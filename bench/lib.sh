#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# lib.sh - what the bench/ scripts share; sourced by each of them after it
# has set $me (its name, for messages), $T (its scratch directory) and,
# where used, $srv_pid and fd 9 (bench/remote_servers.py's control pipe).

usage() { awk 'NR > 2 && !/^#/ { exit } NR > 2 { sub(/^# ?/, ""); print }' "$0"; }

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

die() { log "FAILED: $*"; exit 1; }

need() {	# TOOL PACKAGE
	command -v "$1" >/dev/null || { echo "$me: '$1' missing (apt-get install $2)" >&2; exit 2; }
}

now() { echo "${EPOCHREALTIME/,/.}"; }

run_bg() {
	"$@" &
	child=$!
	local rc=0
	wait "$child" || rc=$?
	child=
	return "$rc"
}

interrupted() {
	echo "$me: interrupted" >&2
	[ -z "$child" ] || kill "$child" 2>/dev/null || true
	[ -z "$child" ] || wait "$child" 2>/dev/null || true
	exit 130
}

stop_fuse() {
	local mnt=$1 pid=$2 i
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
	fi
	[ -n "$pid" ] || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		sleep 0.5
		kill -9 "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

wait_mounted() {
	local mnt=$1 pid=$2 name=$3 i
	for i in $(seq 300); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$me: $name exited before mounting; log:" >&2
			tail -n 20 "$T/logs/$name.log" >&2
			return 1
		fi
		mountpoint -q "$mnt" && return 0
		sleep 0.1
	done
	echo "$me: $name did not mount $mnt within 30 s" >&2
	return 1
}

errname() {	# errno number or strerror text -> "EIO" etc., else the text's start
	case $1 in
	22|*"Invalid argument"*) echo EINVAL ;;
	5|*"Input/output error"*) echo EIO ;;
	95|*"not supported"*) echo EOPNOTSUPP ;;
	1|*"Operation not permitted"*) echo EPERM ;;
	13|*"Permission denied"*) echo EACCES ;;
	28|*"No space left"*) echo ENOSPC ;;
	2|*"No such file"*) echo ENOENT ;;
	107|*"not connected"*) echo ENOTCONN ;;
	*"timed out"*) echo ETIMEDOUT ;;
	*) printf '%s\n' "$1" | head -n1 | cut -c1-32 | tr -d '|\t' ;;
	esac
}

median() {	# values... -> median of the numbers, or the first failure / "-"
	local v nums=()
	for v in "$@"; do
		case $v in fails*|-|yes|NO) echo "$v"; return ;; esac
		nums+=("$v")
	done
	printf '%s\n' "${nums[@]}" | sort -g | awk '{ a[NR] = $1 } END {
		if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

stop_servers() {
	[ -n "$srv_pid" ] || return 0
	# EOF on its stdin: remote_servers.py stops sshd, ganesha (and rpcbind
	# if it started it) and removes their directories
	exec 9>&- || true
	local i
	for i in $(seq 300); do
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$srv_pid" 2>/dev/null; then
		log "remote_servers.py did not stop within 30 s; sending SIGTERM"
		kill "$srv_pid" 2>/dev/null || true
		sleep 5
		kill -9 "$srv_pid" 2>/dev/null || true
	fi
	wait "$srv_pid" 2>/dev/null || true
	srv_pid=
}

stop_mount() { stop_fuse "$T/mnt/$1" "${mpid[$1]:-}"; unset "mpid[$1]"; }

# Servers of bench_remote.sh and bench_image.sh: bench/remote_servers.py,
# its facts read into the shell, stopped when fd 9 closes (stop_servers).
start_servers() {	# remote_servers.py options (--sftp, --nfs)
	local i
	mkfifo "$T/servers.ctl"
	TMPDIR=$T/srv python3 "$here/remote_servers.py" "$@" \
		<"$T/servers.ctl" >"$T/servers.env" 2>"$T/logs/servers.log" &
	srv_pid=$!
	exec 9>"$T/servers.ctl"
	for i in $(seq 600); do
		grep -q '^SERVERS_READY=1' "$T/servers.env" && break
		if ! kill -0 "$srv_pid" 2>/dev/null; then
			tail -n 30 "$T/logs/servers.log" >&2
			die "starting the servers (bench/remote_servers.py)"
		fi
		sleep 0.1
	done
	grep -q '^SERVERS_READY=1' "$T/servers.env" ||
		die "starting the servers: not ready within 60 s (log: $T/logs/servers.log)"
	# shellcheck disable=SC1091
	. "$T/servers.env"
}

# EXIT trap of the scripts with servers: every FUSE mount under $T/mnt
# (mpid: mount name -> daemon pid), the servers, the scratch directory.
cleanup_remote() {
	local rc=$? m busy=0
	trap - EXIT INT TERM
	for m in "${!mpid[@]}"; do
		stop_fuse "$T/mnt/$m" "${mpid[$m]}"
	done
	for m in "$T"/mnt/*; do
		[ -d "$m" ] || continue
		stop_fuse "$m" ""
		! mountpoint -q "$m" 2>/dev/null || busy=1
	done
	if [ -n "${relay_pid:-}" ]; then
		kill "$relay_pid" 2>/dev/null || true
		wait "$relay_pid" 2>/dev/null || true
	fi
	stop_servers
	[ -z "${SRC:-}" ] || rm -f "$SRC" "$SRC.out"
	if [ "$busy" = 1 ]; then
		echo "$me: a mount under $T is still busy; not removing $T" >&2
	elif [ "$keep" = 1 ]; then
		echo "$me: scratch kept in $T" >&2
	else
		rm -rf --one-file-system "$T"
	fi
	exit $rc
}

# The SSH transport every OpenSSH client of the benches (ssh, sshfs) uses:
# the one vfsd's libssh2 1.10 negotiates with the bench sshd, so that all
# clients pay for the same cipher and MAC.  vfsd asks for aes128-ctr first
# (backends/sftp/session.c); libssh2 1.10 knows no -etm or umac MACs and
# takes hmac-sha2-256, its first that OpenSSH offers.  OpenSSH's own
# defaults would be chacha20-poly1305 (sshfs) or umac-64-etm (ssh with
# -c aes128-ctr), another transport.  Seen with the bench sshd at LogLevel
# DEBUG1: "kex: client->server cipher: aes128-ctr MAC: hmac-sha2-256" for
# each of vfsd's connections.  BENCH_SSH_CIPHER and BENCH_SSH_MAC override
# them; set empty, OpenSSH picks its default.
ssh_cipher=${BENCH_SSH_CIPHER-aes128-ctr}
ssh_mac=${BENCH_SSH_MAC-hmac-sha2-256}
ssh_crypto=()	# ssh(1) / sshfs options
[ -z "$ssh_cipher" ] || ssh_crypto+=(-o "Ciphers=$ssh_cipher")
[ -z "$ssh_mac" ] || ssh_crypto+=(-o "MACs=$ssh_mac")
ssh_crypto_text="cipher ${ssh_cipher:-OpenSSH default}, MAC ${ssh_mac:-OpenSSH default}"

# sshfs on $T/mnt/NAME against the bench sshd, in the background; extra
# arguments go to sshfs (e.g. -o max_conns=4).  mount_started follows.
start_sshfs() {	# NAME [sshfs options...]
	local m=$1
	shift
	# setsid: a session of its own, which its ssh processes keep (tree_ticks)
	env -u SSH_AUTH_SOCK setsid sshfs -f -o "IdentityFile=$SSH_IDENTITY,UserKnownHostsFile=$SSH_KNOWN_HOSTS,port=$SSH_PORT" \
		-o IdentitiesOnly=yes,BatchMode=yes,StrictHostKeyChecking=yes "${ssh_crypto[@]}" "$@" \
		"$SSH_USER@127.0.0.1:$SSH_REMOTE" "$T/mnt/$m" >>"$T/logs/$m.log" 2>&1 9>&- &
}

# The FUSE daemon just started in the background ($!) serves $T/mnt/NAME.
mount_started() {	# NAME PID
	local m=$1 mnt=$T/mnt/$1
	mpid[$m]=$2
	wait_mounted "$mnt" "$2" "$m" || die "mounting $m on $mnt (log: $T/logs/$m.log)"
	# the first access waits for FUSE INIT (and vfsd's connections)
	stat "$mnt/." >/dev/null 2>>"$T/logs/$m.log" || die "first stat of $mnt ($m)"
}

# Removing a target's files on the server, between figures.
# ganesha keeps a file it served open (its descriptor cache) until an NFS
# client removes it: a file deleted behind its back stays allocated in
# /dev/shm, and after a few GiB of such leftovers every later figure, of
# every client, ran 2-3x slower (2026-11-30: the same 1 GiB vfsd write at
# 720-790 MiB/s with removals through NFS, 270-320 MiB/s after four
# removals behind ganesha's back).  So the files of NFS targets are removed
# through an NFS client: a vfsd mount of the export (nfs-janitor), idle
# while figures run.  janitor[TARGET] is TARGET's directory seen through it.
declare -A janitor=()
start_nfs_janitor() {	# NFS targets (their sdir must be below $NFS_EXPORT)
	local m=nfs-janitor t
	mkdir -p "$T/mnt/$m"
	"$T/bin/vfsd" -f -m "/x=$NFS3_URL&cache_ttl=0" "$T/mnt/$m" \
		>>"$T/logs/$m.log" 2>&1 9>&- &
	mount_started "$m" $!
	for t; do
		janitor[$t]=$T/mnt/$m/x${sdir[$t]#"$NFS_EXPORT"}
		[ -d "${janitor[$t]}" ] || die "${janitor[$t]} not visible through $m"
	done
}
server_rm() {	# TARGET NAME... (below the target's server directory)
	local t=$1 f
	shift
	for f; do
		if [ -n "${janitor[$t]:-}" ]; then
			rm -rf "${janitor[$t]:?}/$f"
		else
			rm -rf "${sdir[$t]:?}/$f"
		fi
	done
}

# Options every script takes: --quick, --repeat N, --dir BASE, --vfsd PATH,
# --base-vfsd PATH, --keep, --help.  The caller sets the defaults, loops
# over "$@" and passes each word here first: nargs tells how many words it
# took (0: not one of these, the script's own or an error).  parse_done
# checks the result.
base_vfsd_src=
common_opt() {
	nargs=1
	case $1 in
	--quick) quick=1 ;;
	--repeat) repeat=${2:?}; nargs=2 ;;
	--dir) base=${2:?}; nargs=2 ;;
	--vfsd) vfsd_src=${2:?}; nargs=2 ;;
	--base-vfsd) base_vfsd_src=${2:?}; nargs=2 ;;
	--keep) keep=1 ;;
	-h|--help) usage; exit 0 ;;
	*) nargs=0 ;;
	esac
}
unknown_opt() { echo "$me: unknown argument '$1' (see --help)" >&2; exit 2; }
parse_done() {
	[ -n "$repeat" ] || repeat=$((quick ? 1 : 3))
	case $repeat in
	''|*[!0-9]*|0) echo "$me: --repeat needs a positive number" >&2; exit 2 ;;
	esac
	if [ -n "$base_vfsd_src" ] && [ ! -x "$base_vfsd_src" ]; then
		echo "$me: no base daemon at $base_vfsd_src" >&2
		exit 2
	fi
}

# ---- the base daemon (--base-vfsd) ----------------------------------------
# With --base-vfsd every vfsd target has a twin, "base vfsd ...", served by
# that other build with the same URLs, measured in the same rounds.  twin:
# vfsd target -> its twin; the scripts fill it only when the option is set.
declare -A twin=()
base_drop=()	# URL options the base daemon refused, dropped from its URLs
base_notes=()	# what the report must say about the twins

# The targets of round $1 in their order: a vfsd target and its twin, which
# follow each other in the list, swap places in every even round, so that
# neither always runs first (on a cold machine, or after the other's files).
round_order() {	# ROUND TARGET...
	local r=$1 t prev=
	shift
	for t; do
		if [ -n "$prev" ]; then
			if [ "${twin[$prev]:-}" = "$t" ] && [ $((r % 2)) = 0 ]; then
				printf '%s\n' "$t" "$prev"
			else
				printf '%s\n' "$prev" "$t"
			fi
			prev=
		elif [ -n "${twin[$t]:-}" ]; then
			prev=$t
		else
			printf '%s\n' "$t"
		fi
	done
	[ -z "$prev" ] || printf '%s\n' "$prev"
}

# URL without the options the base daemon refused (base_probe).
base_url() {	# URL
	local url=$1 o
	for o in "${base_drop[@]}"; do
		url=$(printf '%s\n' "$url" | sed -E "s/([?&])$o=[^&]*(&|\$)/\1/; s/[?&]\$//")
	done
	printf '%s\n' "$url"
}

# Mount every URL the twins use once with the base daemon ($T/bin/base-vfsd)
# on a scratch mount point: an older build may not know an option this
# checkout's scripts use ("unknown option 'X'"); such an option is dropped
# from the twins' URLs (base_drop), the probe retried, and the notes say so.
base_probe() {	# URL...
	local mnt=$T/base-probe name=base-probe pid opt args=() u
	# under $T/mnt where there is one, so that cleanup_remote finds it
	[ ! -d "$T/mnt" ] || mnt=$T/mnt/base-probe
	mkdir -p "$mnt" "$T/home"
	chmod 700 "$T/home"
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		args=()
		for u; do args+=(-m "/p${#args[@]}=$(base_url "$u")"); done
		: >"$T/logs/$name.log"
		env -u SSH_AUTH_SOCK HOME="$T/home" "$T/bin/base-vfsd" -f "${args[@]}" "$mnt" \
			>>"$T/logs/$name.log" 2>&1 9>&- &
		pid=$!
		if wait_mounted "$mnt" "$pid" "$name" 2>/dev/null && stat "$mnt/." >/dev/null 2>&1; then
			stop_fuse "$mnt" "$pid"
			rmdir "$mnt"
			return 0
		fi
		stop_fuse "$mnt" "$pid"
		opt=$(grep -m1 -o "unknown option '[^']*'" "$T/logs/$name.log" | cut -d"'" -f2 || true)
		if [ -z "$opt" ]; then
			tail -n 20 "$T/logs/$name.log" >&2
			die "the base daemon $base_vfsd_src cannot mount the targets' URLs (log: $T/logs/$name.log)"
		fi
		base_drop+=("$opt")
		base_notes+=("base vfsd refuses the URL option '$opt': its twin targets run without it")
		log "base vfsd refuses the URL option '$opt'; its twins run without it"
	done
	die "the base daemon refused too many options"
}

# Copy the base daemon in and name it for the report (base_ver).
base_install() {
	cp "$base_vfsd_src" "$T/bin/base-vfsd"
	base_ver=$("$T/bin/base-vfsd" --version 2>/dev/null | head -n1 || echo '?')
	local d
	d=$(cd "$(dirname "$base_vfsd_src")" && git rev-parse --short HEAD 2>/dev/null || echo '?')
	base_ver="$base_ver (base, $base_vfsd_src, commit $d)"
}

# A virtual machine may get its memory from the host on first touch and
# hand what it frees back (virtio-balloon free page reporting, on here):
# a figure that allocates much, such as the 1 GiB of page cache a FUSE read
# fills, then runs at the pace of the host's page faults whenever nothing
# used that much memory just before, which depends on what the figures
# before it happened to allocate (2026-11-30: one NFSv3 read through vfsd
# at 323 MiB/s after an NFSv4 write, 1,230 MiB/s with this warm-up before
# it; both the same code).  So every figure starts right after 2 GiB were
# written to and freed from /dev/shm.
warm_memory() {
	dd if=/dev/zero of=/dev/shm/vfsd-bench-warm bs=1M count=2048 status=none || true
	rm -f /dev/shm/vfsd-bench-warm
}

# Forget everything target $1's client holds: remount it (a new FUSE
# daemon with empty caches and new connections; the script's mountof,
# start_mount) and drop the page cache; then warm_memory.
remount_fresh() {
	local m=${mountof[$1]}
	[ -z "$m" ] || stop_mount "$m"
	drop_caches
	[ -z "$m" ] || start_mount "$m"
	warm_memory
}

# Start the clock (start_ts) and note the load (load0); warn, saying
# what suffers, when other work already keeps half the CPUs busy.
bench_start() {	# what-suffers
	start_ts=$(date +%s)
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	if awk -v l="${load0%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
		log "WARNING: load average $load0 on $(nproc) CPUs: $1"
	fi
}

# res[ID,TARGET] = median of runs[ID,TARGET] ("|v1|v2..."), for every
# figure in figures[] ("ID|...") and target in targets[].
collect_medians() {
	local spec id t vals
	for spec in "${figures[@]}"; do
		IFS='|' read -r id _ <<<"$spec"
		for t in "${targets[@]}"; do
			IFS='|' read -r -a vals <<<"${runs[$id,$t]#|}"
			res[$id,$t]=$(median "${vals[@]}")
		done
	done
}

# ---- fio ------------------------------------------------------------------
# fio in a raw image as QEMU drives a disk: O_DIRECT, libaio, 16 requests
# in flight, and the image opened O_RDWR also when only read (QEMU opens a
# writable disk O_RDWR; the image store's rules, vfsd's write-behind and a
# FUSE client's caching may treat a read-write open differently).  fio
# opens a file it only reads O_RDONLY whatever --readonly says, so reads
# run as --rw=randrw --rwmixread=100: an O_RDWR open, every request a
# read.  Checked with `strace -f -e trace=openat fio --rw=randrw
# --rwmixread=100 --direct=1 ...` (fio 3.33): openat(AT_FDCWD, "IMG",
# O_RDWR|O_CREAT|O_DIRECT, 0600), and 0 write IOPS in its report; with
# --rw=randread: O_RDONLY|O_DIRECT.
# val = IOPS, or "fails (WHY)"; the command and its output go to
# $T/logs/fio.log.
run_fio() {	# FILE SIZE_MB randread|randwrite BS DIRECT RUNTIME
	local file=$1 size=$2 rw=$3 bs=$4 direct=$5 runtime=$6 out err=$T/logs/fio.err rc=0 f
	local args=(--name=bench "--filename=$file" "--size=${size}M" "--bs=$bs"
		"--direct=$direct" --ioengine=libaio --iodepth=16 --time_based
		"--runtime=$runtime" --ramp_time=1 --randrepeat=0 --thread=0
		--output-format=terse --terse-version=3)
	case $rw in
	randread) args+=(--rw=randrw --rwmixread=100) ;;
	*) args+=("--rw=$rw") ;;
	esac
	run_bg fio "${args[@]}" >"$T/logs/fio.out" 2>"$err" || rc=$?
	out=$(cat "$T/logs/fio.out")
	{ echo "fio ${args[*]} -> rc=$rc: $out"; cat "$err"; } >>"$T/logs/fio.log"
	f=$(printf '%s\n' "$out" | grep -m1 '^3;' | cut -d';' -f5 || true)
	if [ "$rc" != 0 ] || [ -z "$f" ] || [ "$f" != 0 ]; then
		if [ -n "$f" ] && [ "$f" != 0 ]; then
			val="fails ($(errname "$f"))"
		else
			val="fails ($(errname "$(grep -m1 -o 'error=[^:]*\|: [A-Z][a-z ]*$' "$err" || echo "rc $rc")"))"
		fi
		return 0
	fi
	# terse v3: field 8 read IOPS, 49 write IOPS
	case $rw in *read) f=8 ;; *write) f=49 ;; esac
	val=$(printf '%s\n' "$out" | grep -m1 '^3;' | cut -d';' -f"$f")
}

# ---- CPU time and memory of processes -------------------------------------
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)

# Clock ticks of CPU (user + system, all threads, plus what reaped children
# left in cutime/cstime) of the processes PID... and every process below
# them or in a session one of them leads.  A child that exits and is
# reaped adds its time to its parent's cutime/cstime, so the sum over a
# tree whose roots live on (sshd's listener, sshfs) only grows while
# connections and commands come and go below them.  The session is for
# sshfs: it starts each ssh through a double fork, so the ssh is init's
# child, not sshfs's; start_sshfs makes sshfs a session leader, and its
# ssh processes stay in that session.
tree_ticks() {	# PID...
	# a process may end between the glob and cat's read of it
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v roots="$*" '
	{
		pid = $1; r = $0
		sub(/^.*\) /, "", r)	# the command name may hold ") "
		split(r, f, " ")	# f[k] is field k + 2 of proc(5)
		ppid[pid] = f[2]; sid[pid] = f[4]
		t[pid] = f[12] + f[13] + f[14] + f[15]
	}
	END {
		n = split(roots, q, " ")
		for (i = 1; i <= n; i++) in_tree[q[i]] = 1
		do {
			grew = 0
			for (p in ppid)
				if (!(p in in_tree) && ((ppid[p] in in_tree) ||
				    ((sid[p] in in_tree) && sid[sid[p]] == sid[p]))) {
					in_tree[p] = 1; grew = 1
				}
		} while (grew)
		for (p in in_tree) if (p in t) s += t[p]
		print s + 0
	}'
}

# Clock ticks of the children this shell has reaped (cutime + cstime of
# $$), into the variable named $1.  Read with builtins only: a command
# substitution would fork a child whose own time lands there too.
self_child_ticks() {	# VARNAME
	local l f=()
	read -r l </proc/$$/stat
	read -r -a f <<<"${l##*) }"
	printf -v "$1" '%s' "$((f[14] + f[15]))"
}

vm_hwm_kb() {	# PID -> peak resident set size (VmHWM) in KiB, or nothing
	awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true
}
