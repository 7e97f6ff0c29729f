#!/bin/bash
# run.sh - build vfsd and mount it: the README's first command.
#   run.sh [MOUNTPOINT] [vfsd options...]
# Without a config (/etc/vfsd/vfsd.conf) vfsd serves /local from
# /var/lib/vfsd/local.  The mount is live when this returns.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
mnt=${1:-/mnt/vfsd}
shift || true

"$top/scripts/deps.sh"
if [ ! -d "$top/build" ]; then
	meson setup "$top/build" >/dev/null
fi
meson compile -C "$top/build" >/dev/null
mkdir -p "$mnt"
"$top/build/vfsd/vfsd" "$@" "$mnt"
echo "vfsd is serving $mnt:"
ls -l "$mnt"
echo "stop it with: fusermount3 -u $mnt"
