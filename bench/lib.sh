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
