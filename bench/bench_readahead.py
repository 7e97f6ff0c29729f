#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench_readahead.py - vfsd's read-ahead (issue 18) with and without, at
several round-trip times.

One nfs-ganesha (NFSv3 and v4) and one OpenSSH sshd on loopback, their
data in /dev/shm.  One vfsd mounts each through the test-only fault
wrapper twice: with read-ahead (readahead=--ra, default 16) and without
(readahead=0).  A fault rule delays every backend read and attribute
request (GETATTR) by --delays MS, as a round trip on a network would:
this machine's kernel has no netem, and the wrapper delays each request
by itself, so requests in flight together overlap as on a wire (what it
does not model is the wire's bandwidth).

For each delay and backend, in alternating rounds (--rounds, medians):
  dd       a cold sequential read of the file, dd bs=1M (page caches
           dropped on both sides first)
  fio seq  fio's 1 MiB psync sequential read of the file opened O_RDWR
           (as issue 18 measures it), cold
  fio rand fio's 4 KiB buffered random read (psync, queue depth 1,
           fadvise random), for --seconds: read-ahead must not fire on
           random access
and it prints MiB/s (IOPS for fio rand) with and without, and their
ratio.

    bench/bench_readahead.py [--vfsd build/vfsd/vfsd] [--only nfs3,nfs4,sftp]
                             [--delays 0,1,2] [--size 256] [--rounds 3]
                             [--seconds 5]

Run as root.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import harness  # noqa: E402
from harness import Vfsd, fault  # noqa: E402

MiB = 1 << 20


def drop_caches():
    subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"],
                   check=True)


def dd_read(path, size_mib):
    drop_caches()
    t0 = time.monotonic()
    subprocess.run(["dd", "if=" + path, "of=/dev/null", "bs=1M"],
                   check=True, capture_output=True)
    return size_mib / (time.monotonic() - t0)


def fio(path, rw, bs, seconds=None, extra=()):
    # opened O_RDWR as QEMU opens a disk: fio opens a file it only reads
    # O_RDONLY, so reads run as a read/write job of 100% reads (see
    # run_fio in bench/lib.sh)
    cmd = ["fio", "--name=j", "--filename=" + path,
           "--rw=" + {"read": "rw", "randread": "randrw"}[rw],
           "--rwmixread=100", "--bs=" + bs, "--ioengine=psync",
           "--allow_file_create=0", "--output-format=json"]
    if seconds:
        cmd += ["--time_based", "--runtime=%d" % seconds]
    out = subprocess.run(cmd + list(extra), check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out[out.index("{"):])["jobs"][0]["read"]


def fio_seq(path, size_mib):
    drop_caches()
    return fio(path, "read", "1M")["bw_bytes"] / MiB


def fio_rand(path, seconds):
    drop_caches()
    return fio(path, "randread", "4k", seconds, ["--fadvise_hint=random"])["iops"]


TESTS = (("dd", "MiB/s"), ("fio seq", "MiB/s"), ("fio rand", "IOPS"))


def one_round(v, prefixes, size_mib, seconds, flip):
    res = {}
    for test, _ in TESTS:
        order = list(prefixes) if not flip else list(reversed(prefixes))
        for p in order:
            path = v.path(p, "data")
            if test == "dd":
                r = dd_read(path, size_mib)
            elif test == "fio seq":
                r = fio_seq(path, size_mib)
            else:
                r = fio_rand(path, seconds)
            res[(test, p)] = r
    return res


def bench(name, url, back, args, results):
    with open(os.path.join(back, "data"), "wb") as f:
        for _ in range(args.size):
            f.write(os.urandom(MiB))
    v = Vfsd([("/ra", "fault+%s&readahead=%d" % (url, args.ra)),
              ("/no", "fault+%s&readahead=0" % url)]).start()
    try:
        for delay in args.delays:
            for p in ("/ra", "/no"):
                fault(v, p, "clear", check=False)
                if delay:
                    fault(v, p, "add", "op=read,getattr", "delay=%d" % delay)
            rows = []
            for rnd in range(args.rounds):
                rows.append(one_round(v, ("/ra", "/no"), args.size,
                                      args.seconds, rnd % 2 == 1))
                print("  %s %d ms round %d: %s" % (
                    name, delay, rnd + 1,
                    ", ".join("%s %s %.0f" % (t, p, r)
                              for (t, p), r in sorted(rows[-1].items()))),
                      file=sys.stderr, flush=True)
            st = v.stats("/ra")["readahead"]
            results.append((name, delay, rows, st))
    finally:
        v.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vfsd", default=os.path.join(TOP, "build", "vfsd", "vfsd"))
    ap.add_argument("--only", default="nfs3,nfs4,sftp")
    ap.add_argument("--delays", default="0,1,2")
    ap.add_argument("--size", type=int, default=256, help="MiB")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--ra", type=int, default=16,
                    help="the readahead option (MiB) of the mount that reads ahead")
    args = ap.parse_args()
    args.delays = [int(d) for d in args.delays.split(",")]
    args.vfsd = os.path.abspath(args.vfsd)
    vfsctl = os.path.join(os.path.dirname(args.vfsd), "vfsctl")
    harness.VFSD, harness.VFSCTL = args.vfsd, vfsctl
    os.environ["VFSD"], os.environ["VFSCTL"] = args.vfsd, vfsctl
    which = args.only.split(",")
    results = []
    try:
        if "nfs3" in which or "nfs4" in which:
            from ganesha import Ganesha
            g = Ganesha(export_parent="/dev/shm").start()
            for ver in (3, 4):
                if "nfs%d" % ver in which:
                    bench("nfs v%d" % ver, g.url(version=ver), g.export, args,
                          results)
        if "sftp" in which:
            from sshd import Sshd
            s = Sshd().start()
            remote = tempfile.mkdtemp(prefix="vfsd-bench-ra-", dir="/dev/shm")
            harness._cleanups.append(lambda: subprocess.run(["rm", "-rf", remote]))
            bench("sftp", s.url(remote), remote, args, results)
    finally:
        harness._run_cleanups()
    print("\nmedians of %d rounds, %d MiB file; ratio = read-ahead / none"
          % (args.rounds, args.size))
    print("%-8s %5s %-9s %10s %10s %7s" % ("backend", "delay", "figure",
                                          "ra=16", "ra=0", "ratio"))
    for name, delay, rows, st in results:
        for test, unit in TESTS:
            a = statistics.median(r[(test, "/ra")] for r in rows)
            b = statistics.median(r[(test, "/no")] for r in rows)
            print("%-8s %3d ms %-9s %10.0f %10.0f %7.2f  %s" % (
                name, delay, test, a, b, a / b, unit))
        print("%-8s %3d ms read-ahead counters: read %d MiB, served %d MiB, "
              "dropped %d MiB" % (name, delay, st["read"] // MiB,
                                  st["served"] // MiB, st["dropped"] // MiB))


if __name__ == "__main__":
    main()
