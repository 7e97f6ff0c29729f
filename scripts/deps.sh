#!/bin/bash
# deps.sh - install what vfsd needs on Debian 12, as root.
#   deps.sh          build and run dependencies
#   deps.sh --test   also the servers and tools the test suite drives
set -euo pipefail

build_pkgs=(
	meson ninja-build pkg-config gcc libc6-dev
	libfuse3-dev fuse3 libnfs-dev libssh2-1-dev libssl-dev libinih-dev check
)
test_pkgs=(
	python3 clang clang-format libclang-rt-14-dev
	openssh-server openssh-client sshfs
	nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils
	qemu-utils qemu-system-x86 libvirt-daemon-system libvirt-clients
	fio sqlite3 git attr acl util-linux procps psmisc jq man-db spin rsync
	iproute2 nftables
)

pkgs=("${build_pkgs[@]}")
if [ "${1:-}" = "--test" ]; then
	pkgs+=("${test_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages (${missing[*]}); run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# servers installed here must not start on their own: the tests run their
# own instances on free loopback ports (and private libvirtds, one per
# test "host")
policy=/usr/sbin/policy-rc.d
created_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$policy"
	chmod 755 "$policy"
	created_policy=1
fi
trap '[ -n "$created_policy" ] && rm -f "$policy"' EXIT
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
