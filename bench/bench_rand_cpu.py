#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench_rand_cpu.py - where the CPU of small random reads over SFTP goes.

One OpenSSH sshd on loopback (the integration tests' Sshd: own port and
keys, internal-sftp), a 256 MiB raw image in /dev/shm.  In alternating
rounds, fio reads it at random, 4 KiB, O_DIRECT, libaio, queue depth 16,
for --seconds, through:
  vfsd        vfsd -m /ssh=sftp://... (default options; --vfsd)
  base        the same with a second daemon (--base-vfsd), if given
  sshfs       sshfs with the same cipher and MAC as vfsd negotiates
              (aes128-ctr, hmac-sha2-256)
and prints IOPS and CPU microseconds per read: of the client (vfsd, or
sshfs and its ssh), of the server side (sshd's listener and every process
below it: each connection's sshd and sftp-server), of fio, and of the
whole machine (busy time from /proc/stat).  On a machine whose CPUs are
all busy, the sum per read decides the rate.

    bench/bench_rand_cpu.py [--vfsd build/vfsd/vfsd] [--base-vfsd PATH]
                            [--rounds 3] [--seconds 8] [--extra '&k=v']

Run as root.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import harness  # noqa: E402
from sshd import Sshd  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def tree(pid):
    """pid and every process below it."""
    out = [pid]
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                for c in f.read().split():
                    out += tree(int(c))
        except FileNotFoundError:
            pass
    return out


def cpu_s(pids):
    t = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return t / HZ


def machine_busy_s():
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:]))
    return (sum(v) - v[3] - v[4]) / HZ


def measure(sshd, path, client_pids, seconds):
    subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"], check=True)
    c0, s0, b0 = cpu_s(client_pids()), cpu_s(tree(sshd.proc.pid)), machine_busy_s()
    r = subprocess.run(["fio", "--name=r", "--filename=" + path, "--size=256M", "--bs=4k",
                        "--direct=1", "--ioengine=libaio", "--iodepth=16", "--rw=randread",
                        "--runtime=%d" % seconds, "--time_based", "--output-format=json"],
                       capture_output=True, text=True, check=True)
    c1, s1, b1 = cpu_s(client_pids()), cpu_s(tree(sshd.proc.pid)), machine_busy_s()
    job = json.loads(r.stdout)["jobs"][0]
    ios = job["read"]["total_ios"]
    fio_s = (job["usr_cpu"] + job["sys_cpu"]) / 100 * job["elapsed"]
    us = lambda s: s / ios * 1e6
    return {"iops": job["read"]["iops"], "client": us(c1 - c0), "server": us(s1 - s0),
            "fio": us(fio_s), "machine": us(b1 - b0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vfsd", default=os.path.join(TOP, "build", "vfsd", "vfsd"))
    ap.add_argument("--base-vfsd")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--extra", default="", help="appended to vfsd's URLs")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_rand_cpu.py: run as root (FUSE mounts, drop_caches)")
    sshd = Sshd().start()
    remote = tempfile.mkdtemp(prefix="vfsd-bench-cpu-", dir="/dev/shm")
    mnt = tempfile.mkdtemp(prefix="vfsd-bench-cpu-mnt-")
    subprocess.run(["dd", "if=/dev/urandom", "of=" + os.path.join(remote, "img.raw"),
                    "bs=1M", "count=256", "status=none"], check=True)
    daemons = [("vfsd", args.vfsd)] + ([("base", args.base_vfsd)] if args.base_vfsd else [])
    results = {}
    try:
        for rnd in range(args.rounds):
            order = daemons + [("sshfs", None)]
            if rnd % 2:
                order.reverse()
            for name, binary in order:
                if binary:
                    p = subprocess.Popen([binary, "-f", "-m", "/ssh=" + sshd.url(remote) + args.extra,
                                          mnt], stderr=subprocess.DEVNULL)
                    path = os.path.join(mnt, "ssh", "img.raw")
                    pids = lambda: [p.pid]
                else:
                    p = subprocess.Popen(
                        ["sshfs", "-f", "-o", "IdentityFile=%s,UserKnownHostsFile=%s,port=%d" %
                         (sshd.identity, sshd.known_hosts, sshd.port),
                         "-o", "IdentitiesOnly=yes,BatchMode=yes,StrictHostKeyChecking=yes",
                         "-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha2-256",
                         "%s@127.0.0.1:%s" % (sshd.user, remote), mnt])
                    path = os.path.join(mnt, "img.raw")
                    pids = lambda: tree(p.pid)
                try:
                    harness.wait_for(lambda: os.path.ismount(mnt), 15, name + " to mount")
                    m = measure(sshd, path, pids, args.seconds)
                finally:
                    subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL)
                    p.wait(timeout=30)
                results.setdefault(name, []).append(m)
                print("round %d %-6s IOPS %6.0f  us per read: client %5.1f  server %5.1f  "
                      "fio %5.1f  machine %5.1f" % (rnd + 1, name, m["iops"], m["client"],
                                                    m["server"], m["fio"], m["machine"]),
                      flush=True)
    finally:
        subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL)
        sshd.stop()
        subprocess.run(["rm", "-rf", "--one-file-system", remote, mnt])
    print("\nmedians of %d rounds: fio randread 4k qd16 O_DIRECT, %d s" % (args.rounds, args.seconds))
    print("%-6s %8s %8s %8s %8s %8s" % ("client", "IOPS", "client", "server", "fio", "machine"))
    for name, ms in results.items():
        med = {k: statistics.median(m[k] for m in ms) for k in ms[0]}
        print("%-6s %8.0f %8.1f %8.1f %8.1f %8.1f" % (name, med["iops"], med["client"],
                                                    med["server"], med["fio"], med["machine"]))
    print("(us of CPU per read; client: vfsd, or sshfs and its ssh; server: sshd and "
          "sftp-server)")


if __name__ == "__main__":
    main()
