#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Cross-host lock benchmark: two vfsd daemons ("hosts" A and B) on one
shared backend each, for a shared local directory, NFSv3 (nfs-ganesha) and
SFTP (sshd), all on this machine, started the way the integration tests
start them.

Figures, as medians of --rounds rounds (default 3), rounds alternating
between backends:
  - lock+unlock/s: one process on A takes and drops an exclusive OFD lock
    on an image (what QEMU does per permission byte when it opens one);
    the anchor is the same on the backend's directory without vfsd (kernel
    locks, no cross-host meaning), reported as a ratio;
  - handover/s: A and B take the lock in turn (each waits for the other's
    release), the case of two hosts contending;
  - takeover s: A holds the lock and is killed (-9); the time until B is
    granted, against the formula [L + 1 - L/6, L + 1] s (docs/locking.md).

    bench/bench_locks.py [--rounds N] [--lease S] [--only local,nfs,sftp]

Run as root (FUSE, servers).  Prints a table and, with --markdown, the same
as a Markdown table for docs/performance.md.
"""
import argparse
import fcntl
import os
import signal
import statistics
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests", "integration")
sys.path.insert(0, TESTS)
os.environ.setdefault("VFSD", os.path.join(os.path.dirname(HERE), "build", "vfsd", "vfsd"))
os.environ.setdefault("VFSCTL", os.path.join(os.path.dirname(HERE), "build", "vfsd", "vfsctl"))
import harness  # noqa: E402
from harness import Vfsd, tmpdir  # noqa: E402

F_OFD_SETLK, F_OFD_SETLKW = 37, 38


def ofd(fd, cmd, ltype):
    fcntl.fcntl(fd, cmd, struct.pack("hhqqi4x", ltype, os.SEEK_SET, 0, 0, 0))


def lock_cycles(path, seconds):
    """lock+unlock cycles per second through one open file."""
    fd = os.open(path, os.O_RDWR)
    try:
        n, end = 0, time.monotonic() + seconds
        start = time.monotonic()
        while time.monotonic() < end:
            ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK)
            ofd(fd, F_OFD_SETLK, fcntl.F_UNLCK)
            n += 1
        return n / (time.monotonic() - start)
    finally:
        os.close(fd)


def handovers(pa, pb, count):
    """A and B take the lock in turn; handovers per second."""
    fa, fb = os.open(pa, os.O_RDWR), os.open(pb, os.O_RDWR)
    try:
        start = time.monotonic()
        for k in range(count):
            fd = fa if k % 2 == 0 else fb
            while True:
                try:
                    ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK)
                    break
                except OSError:
                    time.sleep(0.005)
            ofd(fd, F_OFD_SETLK, fcntl.F_UNLCK)
        return count / (time.monotonic() - start)
    finally:
        os.close(fa)
        os.close(fb)


class Backend:
    def __init__(self, name, url, raw_dir, lease, env=None):
        self.name, self.url, self.raw_dir, self.lease, self.env = name, url, raw_dir, lease, env

    def daemon(self, host):
        cfg = "[vfsd]\nlock_lease = %d\n[mount /s]\nurl = %s\n" % (self.lease, self.url)
        return Vfsd(config_text=cfg, args=["--host-id", host], env=self.env).start()

    def round(self, seconds):
        img = os.path.join(self.raw_dir, "img")
        with open(img, "wb") as f:
            f.write(b"\0" * 65536)
        a, b = self.daemon("hostA"), self.daemon("hostB")
        try:
            raw = lock_cycles(img, seconds)
            cyc = lock_cycles(a.path("s/img"), seconds)
            ho = handovers(a.path("s/img"), b.path("s/img"), 20)
            # takeover after a kill
            fd = os.open(a.path("s/img"), os.O_RDWR)
            ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK)
            time.sleep(self.lease / 6 * 0.5)
            a.kill(signal.SIGKILL)
            a.proc.wait()
            killed = time.monotonic()
            fb = os.open(b.path("s/img"), os.O_RDWR)
            while True:
                try:
                    ofd(fb, F_OFD_SETLK, fcntl.F_WRLCK)
                    break
                except OSError:
                    time.sleep(0.05)
            took = time.monotonic() - killed
            os.close(fb)
            try:
                os.close(fd)
            except OSError:
                pass
        finally:
            a.stop()
            b.stop()
        return dict(raw=raw, cycles=cyc, ratio=cyc / raw, handovers=ho, takeover=took)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lease", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--only", default="local,nfs,sftp")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    want = args.only.split(",")
    timeout = max(1, args.lease // 3)
    backends = []
    if "local" in want:
        d = tmpdir()
        backends.append(Backend("local shared", "file://%s?shared=yes&cache_ttl=0" % d, d,
                                args.lease))
    if "nfs" in want:
        import ganesha
        why = ganesha.available()
        if why:
            print("nfs skipped: " + why)
        else:
            g = ganesha.Ganesha().start()
            backends.append(Backend("NFSv3", g.url(version=3, timeout=timeout), g.export,
                                    args.lease))
    if "sftp" in want:
        import sshd
        s = sshd.Sshd().start()
        remote = tmpdir()
        env = dict(os.environ, HOME=s.dir)
        env.pop("SSH_AUTH_SOCK", None)
        backends.append(Backend("SFTP", s.url(remote, timeout=timeout), remote, args.lease,
                                env))
    results = {b.name: [] for b in backends}
    print("bench_locks: %s, lease %d s, %d rounds" % (time.strftime("%Y-%m-%d %H:%M UTC",
                                                                    time.gmtime()),
                                                      args.lease, args.rounds), flush=True)
    for r in range(args.rounds):
        order = backends if r % 2 == 0 else list(reversed(backends))
        for b in order:
            res = b.round(args.seconds)
            results[b.name].append(res)
            print("  round %d %-12s %s" % (r + 1, b.name, " ".join(
                "%s=%.2f" % kv for kv in res.items())), flush=True)
    lo, hi = args.lease + 1 - args.lease / 6, args.lease + 1
    rows = []
    for name, rs in results.items():
        med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
        rows.append((name, med))
    hdr = ("backend", "lock+unlock/s", "raw dir/s", "ratio", "handover/s",
           "takeover s", "formula s")
    fmt = "%-12s %14s %10s %6s %11s %11s %12s"
    print(fmt % hdr)
    for name, m in rows:
        print(fmt % (name, "%.0f" % m["cycles"], "%.0f" % m["raw"], "%.4f" % m["ratio"],
                     "%.1f" % m["handovers"], "%.1f" % m["takeover"],
                     "%.1f-%.1f" % (lo, hi)))
    if args.markdown:
        print("\n| " + " | ".join(hdr) + " |\n|" + "---|" * len(hdr))
        for name, m in rows:
            print("| %s | %.0f | %.0f | %.4f | %.1f | %.1f | %.1f-%.1f |"
                  % (name, m["cycles"], m["raw"], m["ratio"], m["handovers"],
                     m["takeover"], lo, hi))
    harness._run_cleanups()


if __name__ == "__main__":
    main()
