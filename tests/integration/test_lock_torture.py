# SPDX-License-Identifier: GPL-2.0-or-later
"""Lock torture: three vfsd daemons on one shared backend take an image's
exclusive lock in turn while a seeded chaos thread pauses (SIGSTOP up to
twice the lease), kills and restarts them, stalls their writes beyond the
lease (fault+ wrapper), and, for NFS and SFTP, cuts, slows and drops their
network: each daemon runs in a network namespace of its own and reaches
the server (in another) over veth links through a bridge.

Every write is tagged (daemon, restart generation, lock epoch, sequence).
A holder reads the whole image right after it is granted the lock and
again just before it releases it, and then writes its header once more: if
that write goes through, the lock was its own all along, and anything that
changed in between and is not its own is a write that landed outside its
holder's lock.  (Reads are not fenced: without that last write, a holder
paused past its lease would read its successor's writes and blame them.)  At the end
the image is read on the server itself and every record checked.  The
test prints its counts and fails on any violation or on fewer than
HANDOVERS lock handovers.

It runs until HANDOVERS handovers and at least 70 s of faults, at most
VFSD_TORTURE_SECONDS (default 240) per backend; VFSD_TORTURE_SEED (default
12) seeds the faults and the workers' choices."""
import errno
import fcntl
import mmap
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, tmpdir, VFSCTL  # noqa: E402
from test_locks import F_OFD_SETLK  # noqa: E402
from netlab import Net, NsVfsd, netns_unavailable  # noqa: E402

LEASE = 6               # lock_lease; remote timeout = LEASE / 3
DAEMONS = 3
HANDOVERS = 200
SLOT = 512              # one tagged record; O_DIRECT-aligned
SLOTS = 512             # image size SLOT * SLOTS = 256 KiB
MAGIC = b"VFSDTORT"
SEED = int(os.environ.get("VFSD_TORTURE_SEED", "12"))
BUDGET = float(os.environ.get("VFSD_TORTURE_SECONDS", "240"))
MIN_SECONDS = 70        # of faults, however fast the handovers come

# record: magic, daemon, generation, epoch, seq, slot, crc32 of the rest
REC = struct.Struct("<8sIIQQQ")
# header (slot 0): magic, tenures completed, next slot
HDR = struct.Struct("<8sQQ")


def record(daemon, gen, epoch, seq, slot):
    body = REC.pack(MAGIC, daemon, gen, epoch, seq, slot)
    body += struct.pack("<I", zlib.crc32(body))
    return body.ljust(SLOT, b"\0")


def parse_record(raw):
    if raw == b"\0" * SLOT:
        return None
    body, crc = raw[:REC.size], struct.unpack("<I", raw[REC.size:REC.size + 4])[0]
    if zlib.crc32(body) != crc or raw[REC.size + 4:] != b"\0" * (SLOT - REC.size - 4):
        return "torn"
    m, d, g, e, s, sl = REC.unpack(body)
    return (d, g, e, s, sl) if m == MAGIC else "torn"


def aligned(n):
    """A page-aligned buffer for O_DIRECT."""
    return mmap.mmap(-1, n)


class Torture:
    def __init__(self, tc, url, server_dir, net=None, env=None):
        self.tc = tc
        self.url = url
        self.server_dir = server_dir
        self.net = net
        self.env = env
        self.rng = random.Random(SEED)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.daemons = [None] * DAEMONS
        self.gens = [0] * DAEMONS
        self.grants = []            # (daemon, epoch, monotonic)
        self.violations = []
        self.chaos_error = None
        self.counts = dict(grants=0, handovers=0, refused=0, fenced=0, aborted=0,
                           pauses=0, kills=0, cuts=0, slow=0, lossy=0, stalls=0,
                           verified=0)

    # -- daemons ------------------------------------------------------------

    def start_daemon(self, i):
        cfg = "[vfsd]\nlock_lease = %d\n[mount /s]\nurl = %s\n" % (LEASE, self.url)
        kw = dict(config_text=cfg, args=["--host-id", "host%d" % i], env=self.env)
        v = NsVfsd(self.net.hosts[i], **kw) if self.net else Vfsd(**kw)
        v.start()
        with self.lock:
            self.daemons[i] = v
            self.gens[i] += 1

    def stop_all(self):
        for v in self.daemons:
            if v and v.proc:
                with_suppress(lambda: v.proc.send_signal(signal.SIGCONT))
                with_suppress(lambda: vfsctl(v, "fault", "/s", "clear"))
        for v in self.daemons:
            if v and v.proc:
                v.killed = True     # a torture run ends however it ends
                with_suppress(v.stop)

    # -- the workload -------------------------------------------------------

    def worker(self, i):
        rng = random.Random(SEED * 100 + i)
        buf = aligned(SLOT * SLOTS)
        one = aligned(SLOT)
        while not self.stop.is_set():
            with self.lock:
                v, gen = self.daemons[i], self.gens[i]
            try:
                fd = os.open(v.path("s/img"), os.O_RDWR | os.O_DIRECT)
            except OSError:
                time.sleep(0.2)
                continue
            try:
                self.tenure(i, gen, fd, rng, buf, one)
            except OSError:
                pass
            finally:
                with_suppress(lambda: os.close(fd))
            # after its own tenure a worker lets the others try first:
            # handovers are what the test counts
            time.sleep(rng.uniform(0.05, 0.15))

    def tenure(self, i, gen, fd, rng, buf, one):
        try:
            fl = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
            fcntl.fcntl(fd, F_OFD_SETLK, fl)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                self.count("refused")
                time.sleep(rng.uniform(0.005, 0.05))
            return
        # granted
        if os.preadv(fd, [buf], 0) != len(buf):
            return
        snap = bytearray(buf)
        m, done, nxt = HDR.unpack(bytes(snap[:HDR.size]))
        if m != MAGIC:
            done, nxt = 0, 1
        epoch = done + 1
        with self.lock:
            prev = self.grants[-1][0] if self.grants else None
            self.grants.append((i, epoch, time.monotonic()))
            self.counts["grants"] += 1
            if prev is not None and prev != i:
                self.counts["handovers"] += 1
        expect = bytearray(snap)
        k = rng.randint(1, 4)
        # the header first: it claims the epoch, so a tenure cut short after
        # it leaves the next holder a new epoch, and every record of an
        # epoch comes from one tenure (check_image relies on that)
        hdr = HDR.pack(MAGIC, epoch, 1 + (nxt - 1 + k) % (SLOTS - 1)).ljust(SLOT, b"\0")
        one[:] = hdr
        try:
            os.pwritev(fd, [one], 0)
        except OSError as e:
            self.count("fenced" if e.errno == errno.EIO else "aborted")
            return      # whether it landed is unknown: no verdict here
        expect[0:SLOT] = hdr
        for seq in range(k):
            slot = 1 + (nxt - 1 + seq) % (SLOTS - 1)
            rec = record(i, gen, epoch, seq, slot)
            one[:] = rec
            try:
                os.pwritev(fd, [one], slot * SLOT)
            except OSError as e:
                self.count("fenced" if e.errno == errno.EIO else "aborted")
                return
            expect[slot * SLOT:(slot + 1) * SLOT] = rec
            time.sleep(rng.uniform(0, 0.05))
        try:
            if os.preadv(fd, [buf], 0) != len(buf):
                return
        except OSError:
            return
        # Reads are not fenced: a holder whose lease ran out while its
        # read waited (its daemon paused past the lease, its link cut)
        # still gets an answer, with what its successor wrote meanwhile.
        # A write is fenced: the header written once more lands only while
        # the lock is still ours, and a lease never comes back once it ran
        # out, so only then does the read speak of our own tenure.
        one[:] = expect[0:SLOT]
        try:
            os.pwritev(fd, [one], 0)
        except OSError as e:
            self.count("fenced" if e.errno == errno.EIO else "aborted")
            return
        if bytes(buf) != bytes(expect):
            self.violation(i, gen, epoch, bytes(expect), bytes(buf))
        else:
            self.count("verified")
        with_suppress(lambda: fcntl.fcntl(fd, F_OFD_SETLK, struct.pack(
            "hhqqi4x", fcntl.F_UNLCK, os.SEEK_SET, 0, 0, 0)))

    def violation(self, i, gen, epoch, expect, got):
        foreign = []
        for s in range(SLOTS):
            a, b = expect[s * SLOT:(s + 1) * SLOT], got[s * SLOT:(s + 1) * SLOT]
            if a != b:
                foreign.append((s, parse_record(b) if s else HDR.unpack(b[:HDR.size])))
        with self.lock:
            self.violations.append("daemon %d gen %d epoch %d: %d slots changed under "
                                   "its lock: %s" % (i, gen, epoch, len(foreign),
                                                      foreign[:4]))

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] += n

    # -- chaos --------------------------------------------------------------

    def chaos(self):
        try:
            self.chaos_loop()
        except Exception as e:  # noqa: BLE001 - reported as a failure
            self.chaos_error = "%s: %s" % (type(e).__name__, e)
            self.stop.set()

    def chaos_loop(self):
        rng = self.rng
        kinds = ["pause", "kill", "stall", "idle"]
        if self.net:
            kinds += ["cut", "slow", "lossy"]
        while not self.stop.is_set():
            what = rng.choice(kinds)
            # mostly the current holder: that is where a fault can hurt
            with self.lock:
                last = self.grants[-1][0] if self.grants else 0
            i = last if rng.random() < 0.7 else rng.randrange(DAEMONS)
            v = self.daemons[i]
            span = rng.uniform(0.5, 2 * LEASE)
            if what == "pause":
                self.count("pauses")
                v.proc.send_signal(signal.SIGSTOP)
                self.stop.wait(span)
                v.proc.send_signal(signal.SIGCONT)
            elif what == "kill":
                self.count("kills")
                v.kill(signal.SIGKILL)
                v.proc.wait()
                with_suppress(v.stop)
                self.stop.wait(rng.uniform(0, 2))
                self.start_daemon(i)
            elif what == "stall":
                # the daemon's next image write waits beyond the lease,
                # while the daemon is paused so its lease runs out too
                self.count("stalls")
                vfsctl(v, "fault", "/s", "add", "op=write", "path=/img",
                       "delay=%d" % ((LEASE + 2) * 1000), "count=1")
                self.stop.wait(rng.uniform(0, 1))
                v.proc.send_signal(signal.SIGSTOP)
                self.stop.wait(LEASE + 2)
                v.proc.send_signal(signal.SIGCONT)
            elif what == "cut":
                self.count("cuts")
                self.net.cut(i, True)
                self.stop.wait(span)
                self.net.cut(i, False)
            elif what == "slow":
                self.count("slow")
                self.net.slow(i, True)
                self.stop.wait(span)
                self.net.slow(i, False)
            elif what == "lossy":
                self.count("lossy")
                self.net.lossy(i, rng.choice((5, 20)))
                self.stop.wait(span)
                self.net.lossy(i, 0)
            self.stop.wait(rng.uniform(0.5, 3))

    # -- the run ------------------------------------------------------------

    def run(self):
        img = os.path.join(self.server_dir, "img")
        with open(img, "wb") as f:
            f.write(b"\0" * SLOT * SLOTS)
        for i in range(DAEMONS):
            self.start_daemon(i)
        workers = [threading.Thread(target=self.worker, args=(i,), daemon=True)
                   for i in range(DAEMONS)]
        chaos = threading.Thread(target=self.chaos, daemon=True)
        start = time.monotonic()
        try:
            for t in workers:
                t.start()
            chaos.start()
            while time.monotonic() - start < BUDGET:
                with self.lock:
                    if self.counts["handovers"] >= HANDOVERS and \
                            time.monotonic() - start > min(MIN_SECONDS, BUDGET):
                        break
                time.sleep(0.5)
            self.stop.set()
            chaos.join(4 * LEASE)
        finally:
            self.stop.set()
            if self.net:
                for i in range(DAEMONS):
                    with_suppress(lambda: self.net.cut(i, False))
                    with_suppress(lambda: self.net.slow(i, False))
                    with_suppress(lambda: self.net.lossy(i, 0))
            for v in self.daemons:
                if v and v.proc:
                    with_suppress(lambda: v.proc.send_signal(signal.SIGCONT))
            for t in workers:
                t.join(6 * LEASE)
            self.stop_all()
        elapsed = time.monotonic() - start
        self.check_image(img)
        links = "" if not self.net else \
            ", slow links by %s" % ("netem" if self.net.netem() else "tbf (no netem here)")
        print("lock torture (%s, seed %d, %.0f s%s): %s; violations: %d"
              % (self.url.split(":")[0], SEED, elapsed, links,
                 ", ".join("%s %d" % kv for kv in self.counts.items()),
                 len(self.violations)))
        for v in self.violations[:10]:
            print("VIOLATION:", v)
        self.tc.assertIsNone(self.chaos_error, "the chaos thread failed")
        self.tc.assertEqual(self.violations, [])
        self.tc.assertGreaterEqual(self.counts["handovers"], HANDOVERS,
                                   "too few handovers to mean anything")

    def check_image(self, img):
        """The image as the server has it: every record whole, and each
        epoch written by one daemon generation only."""
        with open(img, "rb") as f:
            data = f.read()
        owners = {}
        for s in range(1, SLOTS):
            r = parse_record(data[s * SLOT:(s + 1) * SLOT])
            if r is None:
                continue
            if r == "torn":
                self.violations.append("slot %d holds a torn record" % s)
                continue
            d, g, e, seq, slot = r
            if slot != s:
                self.violations.append("slot %d holds a record for slot %d" % (s, slot))
            if owners.setdefault(e, (d, g)) != (d, g):
                self.violations.append("epoch %d written by daemon %s and %s"
                                       % (e, owners[e], (d, g)))


def with_suppress(fn):
    try:
        fn()
    except Exception:   # noqa: BLE001 - clean-up of a torture run
        pass


def vfsctl(v, *args):
    return subprocess.run([VFSCTL, "-m", v.mnt] + list(args), capture_output=True,
                          text=True, timeout=60, check=True)


class LockTorture(harness.TestCase):
    def test_local_shared(self):
        shared = tmpdir()
        Torture(self, "fault+file://%s?shared=yes&cache_ttl=0" % shared, shared).run()

    def with_net(self):
        why = netns_unavailable()
        if why:
            self.skipTest(why)
        net = Net(DAEMONS).setup()
        self.addCleanup(net.teardown)
        return net

    def test_nfs3(self):
        import ganesha
        why = ganesha.available()
        if why:
            self.skipTest(why)
        net = self.with_net()
        g = ganesha.Ganesha(addr=net.server_addr, netns=net.srv).start()
        self.addCleanup(g.stop)
        url = "fault+" + g.url(version=3, timeout=LEASE // 3, cache_ttl=0)
        Torture(self, url, g.export, net=net).run()

    def test_sftp(self):
        import sshd
        if not os.path.exists(sshd.SSHD):
            self.skipTest("openssh-server is not installed (scripts/deps.sh --test)")
        net = self.with_net()
        s = sshd.Sshd(addr=net.server_addr, netns=net.srv).start()
        self.addCleanup(s.stop)
        remote = tmpdir()
        env = dict(os.environ, HOME=s.dir)
        env.pop("SSH_AUTH_SOCK", None)
        url = "fault+" + s.url(remote, timeout=LEASE // 3, cache_ttl=0)
        Torture(self, url, remote, net=net, env=env).run()


if __name__ == "__main__":
    harness.main()
