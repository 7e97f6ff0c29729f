#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench_qos.py - the noisy-neighbour benchmark of issue 17.

Two raw images on one vfsd mount: a reader doing 4 KiB random reads at
queue depth 1 (fio, O_DIRECT, the file opened O_RDWR as QEMU opens a
disk) and a streamer writing 1 MiB O_DIRECT writes (fio, libaio, queue
depth 8).  For each backend it measures, in alternating rounds:

  alone     the reader by itself: p50 and p99 completion latency
  streamer  the streamer by itself: its throughput
  unfair    the reader beside the streamer, through a mount of the same
            storage with fair sharing off (qos.fair = 0)
  fair      the same through the mount with fair sharing (the default)
  limited   fair, and the streamer's image limited (qos.bps_wr on it,
            --limit MiB/s)
  buffered  fair, the streamer writing through the page cache (no
            O_DIRECT: the kernel's writeback, then vfsd's write-behind)
  bypass    the reader through the fair mount beside a streamer that
            does not pass through vfsd at all: nfs-cp (libnfs) to the
            same ganesha export, `ssh HOST 'cat > FILE'` to the same
            sshd, fio on the local directory itself, over and over.
            What the server and these two CPUs cost the reader whatever
            the client: the floor under fair sharing's figure.

and prints medians of --rounds rounds, the reader's p99 against its p99
alone (the issue's floor: at most 3x with fair sharing), and the total
throughput of both jobs against the streamer alone.

    bench/bench_qos.py [--vfsd build/vfsd/vfsd] [--vfsctl build/vfsd/vfsctl]
                       [--only local,nfs,sftp] [--seconds 10] [--rounds 3]
                       [--limit 64]

Servers (sshd, nfs-ganesha) are started on loopback with the integration
tests' classes, their data in /dev/shm (the server's disk does not set the
pace); the local backend's directory is in /dev/shm too.  Run as root.

--pin: the server on the last CPU and everything else (fio, vfsd, the
bypass clients) on the others, as if the server had a machine of its
own: the reader's figures then say what the clients' side costs it.
"""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import harness  # noqa: E402
from harness import Vfsd  # noqa: E402

MiB = 1 << 20
SIZE = "256M"
SRC_MIB = 256   # what the bypass streamer copies each time
NFS_BYPASS_FILE = [None]   # the nfs-cp target, as the server's directory holds it
PHASES = ["alone", "streamer", "unfair", "fair", "limited", "buffered", "bypass"]


def fio(name, path, rw, bs, depth, seconds, engine, direct=True):
    """fio's JSON result of one job."""
    cmd = ["fio", "--name=" + name, "--filename=" + path, "--rw=" + rw,
           "--bs=" + bs, "--iodepth=%d" % depth, "--ioengine=" + engine,
           "--direct=%d" % direct, "--size=" + SIZE, "--time_based",
           "--runtime=%d" % seconds, "--output-format=json",
           "--allow_file_create=0", "--randrepeat=0", "--norandommap"]
    if not direct:
        cmd.append("--end_fsync=1")     # its rate: data that reached the server
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if r.returncode != 0:
        raise RuntimeError("fio %s: %s" % (name, r.stderr[-2000:]))
    return json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]


def lat(job, kind):
    """p50 and p99 completion latency in microseconds."""
    pct = job[kind]["clat_ns"]["percentile"]
    return pct["50.000000"] / 1000, pct["99.000000"] / 1000


def bw(job, kind):
    return job[kind]["bw_bytes"] / MiB


def prefill(path):
    with open(path, "wb") as f:
        chunk = os.urandom(MiB)
        for _ in range(256):
            f.write(chunk)


def bypass_stream(cmd, seconds, res):
    """Run cmd (a copy of SRC_MIB MiB) over and over for `seconds`: its
    MiB/s in res["bw"] (whole copies only, over the time they took)."""
    import time
    t0 = time.monotonic()
    done = 0
    while time.monotonic() - t0 < seconds:
        if cmd[0] == "nfs-cp":
            # it refuses to replace a file: the last copy goes first, in
            # the server's own directory
            with contextlib.suppress(FileNotFoundError):
                os.unlink(NFS_BYPASS_FILE[0])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
        if r.returncode != 0:
            raise RuntimeError("bypass streamer %s: %s" % (cmd[0], r.stderr[-1000:]))
        done += 1
    res["bw"] = done * SRC_MIB / (time.monotonic() - t0)


def round_once(v, seconds, phase, limit, vfsctl, bypass=None):
    via = "n" if phase == "unfair" else "b"
    reader_path = v.path(via, "reader.img")
    streamer_path = v.path(via, "streamer.img")
    out = {}
    if phase == "limited":
        subprocess.run([vfsctl, "-m", v.mnt, "qos", "set", streamer_path,
                        "bps_wr=%d" % (limit * MiB)], check=True,
                       capture_output=True)
    try:
        if phase == "streamer":
            s = fio("streamer", streamer_path, "write", "1M", 8, seconds, "libaio")
            out["streamer_bw"] = bw(s, "write")
            return out
        res = {}

        def stream():
            if phase == "bypass":
                bypass_stream(bypass, seconds + 2, res)
            elif phase == "buffered":
                res["s"] = fio("streamer", streamer_path, "write", "1M", 1,
                               seconds + 2, "psync", direct=False)
            else:
                res["s"] = fio("streamer", streamer_path, "write", "1M", 8,
                               seconds + 2, "libaio")
        t = None
        if phase != "alone":
            t = threading.Thread(target=stream)
            t.start()
        r = fio("reader", reader_path, "randread", "4k", 1, seconds, "psync")
        if t:
            t.join()
            out["streamer_bw"] = res["bw"] if phase == "bypass" else bw(res["s"], "write")
        out["p50"], out["p99"] = lat(r, "read")
        out["reader_bw"] = bw(r, "read")
        return out
    finally:
        if phase == "limited":
            subprocess.run([vfsctl, "-m", v.mnt, "qos", "clear", streamer_path],
                           capture_output=True)


def pin_server(pid, args):
    """--pin: every thread of the server `pid` (and what it forks later)
    on the last CPU."""
    if args.pin:
        subprocess.run(["taskset", "-a", "-c", "-p", str(args.server_cpu), str(pid)],
                       check=True, capture_output=True)


def bench_backend(name, url, args, bypass):
    cfg = ("[mount /b]\nurl = %s\n[mount /n]\nurl = %s\nqos.fair = 0\n"
           % (url, url))
    v = Vfsd(config_text=cfg).start()
    try:
        prefill(v.path("b", "reader.img"))
        prefill(v.path("b", "streamer.img"))
        phases = PHASES
        results = {p: [] for p in phases}
        for rnd in range(args.rounds):
            order = phases if rnd % 2 == 0 else list(reversed(phases))
            for p in order:
                results[p].append(round_once(v, args.seconds, p, args.limit,
                                             args.vfsctl, bypass))
                print("  %s round %d %s: %s" % (name, rnd + 1, p, results[p][-1]),
                      file=sys.stderr, flush=True)
        return results
    finally:
        v.stop()


def med(rows, key):
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else float("nan")


def report(name, res):
    alone99 = med(res["alone"], "p99")
    stream_alone = med(res["streamer"], "streamer_bw")
    print("\n%s (medians of %d rounds)" % (name, len(res["alone"])))
    print("  %-8s %10s %10s %9s %12s %12s %9s" % (
        "phase", "p50 us", "p99 us", "p99/alone", "reader MiB/s",
        "stream MiB/s", "total/str"))
    for p in PHASES:
        rows = res[p]
        total = med(rows, "streamer_bw") + (med(rows, "reader_bw") if p != "streamer" else 0)
        print("  %-8s %10.0f %10.0f %9.2f %12.1f %12.1f %9.2f" % (
            p, med(rows, "p50"), med(rows, "p99"), med(rows, "p99") / alone99,
            med(rows, "reader_bw"), med(rows, "streamer_bw"),
            total / stream_alone if p != "alone" else float("nan")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vfsd", default=os.path.join(TOP, "build", "vfsd", "vfsd"))
    ap.add_argument("--vfsctl", default=None)
    ap.add_argument("--only", default="local,nfs,sftp")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=64,
                    help="the streamer's bps_wr in MiB/s in the 'limited' phase")
    ap.add_argument("--pin", action="store_true",
                    help="the server on a CPU of its own (the last), the rest on the others")
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    args.server_cpu = cpus[-1]
    if args.pin:
        if len(cpus) < 2:
            sys.exit("--pin needs two CPUs at least")
        # fio, vfsd and the bypass clients inherit it
        os.sched_setaffinity(0, cpus[:-1])
    args.vfsd = os.path.abspath(args.vfsd)
    args.vfsctl = os.path.abspath(args.vfsctl or
                                  os.path.join(os.path.dirname(args.vfsd), "vfsctl"))
    harness.VFSD, harness.VFSCTL = args.vfsd, args.vfsctl
    os.environ["VFSD"], os.environ["VFSCTL"] = args.vfsd, args.vfsctl
    which = args.only.split(",")
    all_res = {}
    try:
        # what the bypass streamers copy, from memory
        src = tempfile.mkdtemp(prefix="vfsd-bench-qos-src-", dir="/dev/shm")
        harness._cleanups.append(lambda: subprocess.run(["rm", "-rf", src]))
        src_file = os.path.join(src, "src.img")
        with open(src_file, "wb") as f:
            for _ in range(SRC_MIB):
                f.write(os.urandom(MiB))
        if "local" in which:
            d = tempfile.mkdtemp(prefix="vfsd-bench-qos-", dir="/dev/shm")
            harness._cleanups.append(lambda: subprocess.run(["rm", "-rf", d]))
            direct = ["fio", "--name=bypass", "--filename=" + os.path.join(d, "bypass.img"),
                      "--rw=write", "--bs=1M", "--iodepth=8", "--ioengine=libaio",
                      "--direct=1", "--size=%dM" % SRC_MIB]
            all_res["local"] = bench_backend("local", "file://" + d, args, direct)
        if "nfs" in which:
            from ganesha import Ganesha
            g = Ganesha(export_parent="/dev/shm").start()
            pin_server(g.proc.pid, args)
            NFS_BYPASS_FILE[0] = os.path.join(g.export, "bypass.img")
            all_res["nfs"] = bench_backend("nfs", g.url(version=3), args,
                                           ["nfs-cp", src_file, g.url("/bypass.img")])
        if "sftp" in which:
            from sshd import Sshd
            s = Sshd().start()
            pin_server(s.proc.pid, args)
            remote = tempfile.mkdtemp(prefix="vfsd-bench-qos-", dir="/dev/shm")
            os.chmod(remote, 0o777)
            harness._cleanups.append(lambda: subprocess.run(["rm", "-rf", remote]))
            # the cipher vfsd negotiates with this sshd (docs/performance.md)
            ssh = ["sh", "-c", 'exec ssh -p %d -i %s -o UserKnownHostsFile=%s '
                   '-o BatchMode=yes -c aes128-ctr -m hmac-sha2-256 %s@%s "cat > %s/bypass.img" < %s'
                   % (s.port, s.identity, s.known_hosts, s.user, s.addr, remote, src_file)]
            all_res["sftp"] = bench_backend("sftp", s.url(remote), args, ssh)
    finally:
        harness._run_cleanups()
    for name, res in all_res.items():
        report(name, res)


if __name__ == "__main__":
    main()
