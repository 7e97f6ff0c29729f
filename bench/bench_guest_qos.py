#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench_guest_qos.py - the noisy-neighbour benchmark of issue 17 with
booted guests.

Two guests under QEMU (the test guest of tests/guest/, the guest tests'
harness) with raw images on one vfsd mount of an NFSv3 (nfs-ganesha) or
SFTP (sshd) server on loopback, each disk cache=none:

  guest R   the writer's `randread SECONDS`: 4 KiB O_DIRECT reads of
            random blocks at queue depth 1; it answers its p50, p99 and
            longest latency, measured with the guest's clock
  guest W   the writer's `stream SECONDS` (the default, --w stream):
            eight threads writing 1 MiB O_DIRECT chunks in order over
            its disk, wrapping around, one each in flight, as the issue's
            "fio streaming 1 MiB writes"; it answers its MiB/s, measured
            with the guest's clock.  --w writer: the verifying writer's
            `start` instead, four threads writing 4 KiB O_DIRECT blocks all
            over its disk, a flush every 64 writes (paused between phases),
            a weak neighbour under TCG (6-14 MiB/s)

Phases, in alternating order over --rounds rounds of --seconds each:

  alone     R by itself
  writer    W by itself: its write rate
  unfair    R beside W, both through a mount of the same storage with
            fair sharing off (qos.fair = 0)
  fair      R beside W through the default mount (fair sharing on)
  limited   fair, and W's image limited by root's
            user.vfsd.qos.bps_wr xattr (--limit KiB/s)

and prints, per backend, the medians of R's p50/p99, their ratios to R
alone, R's reads per second and W's write rate (W MiB/s: the stream's
own answer over its whole run, guest clock, with --w stream; W host
MiB/s: QEMU's blockstats of W's disk while R reads), with the machine's
load average at the start and the end (others' work shows there).
`--only local` adds a file:// mount of a /dev/shm directory: there vfsd
hands the open images to the kernel (FUSE passthrough) and fair sharing
does not apply (it is for nfs and sftp), so it shows what the two guests
cost each other on the CPU alone, the floor of the other two.  Its
'limited' row is not limited: an image opened before its first rule
keeps passthrough, and so goes without its limit, until it is opened
again (docs/vfsd.conf.5, QOS), and the guests keep theirs open.  Each pair of guests
(one on the fair mount, one on the unfair one, four guests in all, on
four images) is booted once; the pair not measured is stopped (QMP
`stop`: its vCPUs take no CPU, its clock does not run).  With --w
writer, at the end each W reads back every block it wrote (the writer's
`verify`; a streamed disk cannot be verified); a guest's error, a
stream's write error or a bad block is printed and makes the exit
status 1.

    bench/bench_guest_qos.py [--vfsd build/vfsd/vfsd] [--vfsctl build/vfsd/vfsctl]
                             [--only local,nfs,sftp] [--seconds 10] [--rounds 3]
                             [--limit 1024] [--disk 64] [--w stream|writer]

Run as root.  Server data is in /dev/shm.  Without /dev/kvm the guests
run under TCG, and then the guests' own CPU, not the storage, sets most
of the pace: read the figures with that in mind.  Every server, guest and
mount it starts is stopped at the end, on a failure and on Ctrl-C.
"""
import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import guest  # noqa: E402
import harness  # noqa: E402
import qemu  # noqa: E402
from harness import Vfsd  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20
SEED = 17
PHASES = ["alone", "writer", "unfair", "fair", "limited"]


class Pair:
    """Guests R and W on raw images r-TAG.img and w-TAG.img under one mount
    prefix, booted and waiting for commands."""

    def __init__(self, v, prefix, work, tag, disk_mib, mode):
        self.mode = mode
        self.stream_mark = None
        self.stream_errors = 0
        self.w_image = v.path(prefix, "w-%s.img" % tag)
        images = []
        for name, image in (("R", v.path(prefix, "r-%s.img" % tag)),
                            ("W", self.w_image)):
            prefill(image, disk_mib, name == "R")
            images.append((name, image))
        self.r, self.w = [
            guest.Guest(image, work, name + tag, fmt="raw", werror="report").start()
            for name, image in images]
        for g in (self.r, self.w):
            g.console.wait("READY", 300, what="the guest %s to boot" % g.name)
        self.started = False
        self.running = True

    def cont(self):
        if not self.running:
            for g in (self.r, self.w):
                g.qmp.cmd("cont")
            self.running = True

    def stop(self):
        if self.running:
            for g in (self.r, self.w):
                g.qmp.cmd("stop")
            self.running = False

    def write(self, on, seconds=0):
        """Start W (a stream of `seconds`, or the verifying writer), or
        stop it: the stream's own MiB/s when it was one, else None."""
        if self.mode == "stream":
            if on:
                self.stream_mark = self.w.console.mark()
                self.w.console.send("stream %d" % seconds)
                return None
            line = self.w.console.wait(("STREAM", "ERR"), seconds + 300, self.stream_mark,
                                       what="W's stream to end")
            if not line.startswith("STREAM"):
                raise RuntimeError("W: " + line)
            f = guest.kv(line)
            self.stream_errors += int(f["errors"])
            return float(f["mib_s"])
        if on:
            self.w.command("start %d" % SEED, "STARTED")
            self.started = True
        else:
            self.w.command("pause", "PAUSED")
        return None

    def written(self):
        """QEMU's count of bytes W wrote to its disk."""
        return sum(b["stats"]["wr_bytes"] for b in self.w.qmp.cmd("query-blockstats")
                   if b.get("device") == "drive0")

    def errors(self):
        """The guests' ERR lines, and W's verdict on every block it wrote
        when it is not ok."""
        out = [line for g in (self.r, self.w) for line in g.console.from_mark(0)
               if line.startswith("ERR")]
        if self.stream_errors:
            out.append("W: %d stream write errors" % self.stream_errors)
        if self.started:
            self.cont()
            v = self.w.verify()
            if not v["ok"]:
                out += [v["line"]] + v["bad"]
        return out


def prefill(path, mib, data):
    """A raw image written whole, of random data (R reads something the
    server stores) or of zeros (the writer's verify takes zeros for a block
    it never wrote)."""
    with open(path, "wb") as f:
        chunk = os.urandom(MiB) if data else bytes(MiB)
        for _ in range(mib):
            f.write(chunk)


def randread(g, seconds):
    line = g.command("randread %d" % seconds, "RANDREAD", timeout=seconds + 300)
    f = guest.kv(line)
    return {"p50": float(f["p50_us"]), "p99": float(f["p99_us"]),
            "max": float(f["max_us"]), "reads_s": int(f["count"]) / seconds,
            "errors": int(f["errors"])}


def vfsctl(args, *cmd):
    return subprocess.run([args.vfsctl] + list(cmd), capture_output=True, text=True,
                          timeout=60)


def phase_once(v, pairs, phase, args):
    p = pairs["n" if phase == "unfair" else "b"]
    for other in pairs.values():
        if other is not p:
            other.stop()
    p.cont()
    limited = phase == "limited"
    out = {}
    if limited:
        os.setxattr(p.w_image, "user.vfsd.qos.bps_wr", b"%d" % (args.limit * KiB))
    # a stream runs 1 s before R and outlasts it
    stream_s = args.seconds + 3
    try:
        if phase != "alone":
            p.write(True, stream_s)
            time.sleep(1)       # W's queue is full before R starts
        b0, t0 = p.written(), time.monotonic()
        if phase == "writer":
            time.sleep(args.seconds)
        else:
            out.update(randread(p.r, args.seconds))
        if phase != "alone":
            host = (p.written() - b0) / (time.monotonic() - t0) / MiB
            own = p.write(False, stream_s)
            out["w_mib_s"] = host if own is None else own
            out["w_host_mib_s"] = host
    finally:
        if limited:
            r = vfsctl(args, "-m", v.mnt, "qos", "clear", p.w_image)
            if r.returncode:
                raise RuntimeError("vfsctl qos clear: " + r.stderr)
    return out


def bench_backend(name, url, args):
    cfg = ("[mount /b]\nurl = %s\n[mount /n]\nurl = %s\nqos.fair = 0\n" % (url, url))
    v = Vfsd(config_text=cfg).start()
    work = harness.tmpdir("vfsd-bench-guest-")
    print("  %s: booting four guests (%s)" % (name, qemu.accel()), file=sys.stderr, flush=True)
    pairs = {"b": Pair(v, "b", work, "b", args.disk, args.w)}
    pairs["b"].stop()
    pairs["n"] = Pair(v, "n", work, "n", args.disk, args.w)
    results = {p: [] for p in PHASES}
    load = [os.getloadavg()[0]]
    for rnd in range(args.rounds):
        order = PHASES if rnd % 2 == 0 else list(reversed(PHASES))
        for phase in order:
            res = phase_once(v, pairs, phase, args)
            results[phase].append(res)
            print("  %s round %d %-8s %s" % (name, rnd + 1, phase,
                                             " ".join("%s=%g" % kv for kv in res.items())),
                  file=sys.stderr, flush=True)
    load.append(os.getloadavg()[0])
    errs = [e for p in pairs.values() for e in p.errors()]
    if errs:
        print("  %s: the guests reported errors: %s" % (name, errs[:5]), file=sys.stderr)
    return results, errs, load


def med(rows, key):
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else float("nan")


def report(name, res, load, args):
    alone = res["alone"]
    p50a, p99a = med(alone, "p50"), med(alone, "p99")
    w_alone = med(res["writer"], "w_mib_s")
    print("\n%s, %s, W %s, medians of %d rounds of %d s; W limited to %d KiB/s in "
          "'limited'; load average %.1f at the start, %.1f at the end (%d CPUs)"
          % (name, qemu.accel(), args.w, len(alone), args.seconds, args.limit, load[0],
             load[1], os.cpu_count()))
    print("| phase | R p50 us | R p99 us | p50 / alone | p99 / alone | R max us "
          "| R reads/s | W MiB/s | W / alone | W host MiB/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def cell(x, fmt):
        return "" if x != x else fmt % x      # nan: not measured
    for p in PHASES:
        rows = res[p]
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            p, cell(med(rows, "p50"), "%.0f"), cell(med(rows, "p99"), "%.0f"),
            cell(med(rows, "p50") / p50a, "%.2f"), cell(med(rows, "p99") / p99a, "%.2f"),
            cell(med(rows, "max"), "%.0f"), cell(med(rows, "reads_s"), "%.0f"),
            cell(med(rows, "w_mib_s"), "%.2f"), cell(med(rows, "w_mib_s") / w_alone, "%.2f"),
            cell(med(rows, "w_host_mib_s"), "%.2f")))


def missing(args):
    """Why this benchmark cannot run here at all, or None."""
    if os.geteuid() != 0:
        return "run it as root (FUSE mounts, QEMU on the mount, servers)"
    for what in (args.vfsd, args.vfsctl):
        if not os.access(what, os.X_OK):
            return "%s is not built (meson setup build && ninja -C build)" % what
    if not shutil.which("fusermount3"):
        return "fusermount3 is not installed (apt install fuse3)"
    try:
        guest.files()
    except guest.Unavailable as e:
        return str(e)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vfsd", default=os.path.join(TOP, "build", "vfsd", "vfsd"))
    ap.add_argument("--vfsctl", default=None)
    ap.add_argument("--only", default="nfs,sftp")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=1024,
                    help="W's bps_wr in KiB/s in the 'limited' phase")
    ap.add_argument("--disk", type=int, default=64, help="each image's size in MiB")
    ap.add_argument("--w", choices=("stream", "writer"), default="stream",
                    help="W streams 1 MiB writes (default) or runs the verifying writer")
    args = ap.parse_args()
    args.vfsd = os.path.abspath(args.vfsd)
    args.vfsctl = os.path.abspath(args.vfsctl or
                                  os.path.join(os.path.dirname(args.vfsd), "vfsctl"))
    harness.VFSD, harness.VFSCTL = args.vfsd, args.vfsctl
    os.environ["VFSD"], os.environ["VFSCTL"] = args.vfsd, args.vfsctl
    why = missing(args)
    if why:
        print("bench_guest_qos: cannot run: " + why, file=sys.stderr)
        return 2
    all_res = {}
    status = 0
    interrupted = []

    def on_sigint(signum, frame):
        # the terminal's Ctrl-C reaches QEMU, vfsd and the servers too:
        # what fails after it is from that, not a finding
        interrupted.append(signum)
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, on_sigint)
    try:
        for name in args.only.split(","):
            if name == "local":
                d = tempfile.mkdtemp(prefix="vfsd-bench-guest-", dir="/dev/shm")
                harness._cleanups.append(lambda d=d: shutil.rmtree(d, ignore_errors=True))
                url = "file://" + d
            elif name == "nfs":
                import ganesha
                why = ganesha.available()
                if why:
                    print("bench_guest_qos: no nfs: " + why, file=sys.stderr)
                    status = 2
                    continue
                g = ganesha.Ganesha(export_parent="/dev/shm").start()
                url = g.url(version=3)
            elif name == "sftp":
                import sshd
                if not os.path.exists(sshd.SSHD):
                    print("bench_guest_qos: no sftp: openssh-server is not installed",
                          file=sys.stderr)
                    status = 2
                    continue
                s = sshd.Sshd().start()
                remote = tempfile.mkdtemp(prefix="vfsd-bench-guest-", dir="/dev/shm")
                os.chmod(remote, 0o777)
                harness._cleanups.append(lambda d=remote: shutil.rmtree(d, ignore_errors=True))
                url = s.url(remote)
            else:
                print("bench_guest_qos: unknown backend %r (local, nfs, sftp)" % name,
                      file=sys.stderr)
                return 2
            try:
                all_res[name] = bench_backend(name, url, args)
            finally:
                # guests, vfsd, server and their directories, last first
                harness._run_cleanups()
    except (KeyboardInterrupt, SystemExit):
        interrupted.append(True)
    except Exception as e:      # noqa: BLE001 - said, then everything stopped
        if not interrupted:
            traceback.print_exc()
            print("bench_guest_qos: failed: %s" % e, file=sys.stderr)
            status = 1
    finally:
        if interrupted:
            print("bench_guest_qos: interrupted; stopping everything it started",
                  file=sys.stderr)
            status = 130
        with contextlib.suppress(Exception):
            harness._run_cleanups()
    for name, (res, errs, load) in all_res.items():
        report(name, res, load, args)
        if errs:
            print("guest errors: %d (first: %s)" % (len(errs), errs[0]))
            status = status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
