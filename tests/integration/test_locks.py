# SPDX-License-Identifier: GPL-2.0-or-later
"""Locks across hosts: two vfsd instances ("host A" and "host B") serve the
same shared backend; a lock taken through one conflicts with the other."""
import errno
import fcntl
import os
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, tmpdir  # noqa: E402
from posix_suite import write_file  # noqa: E402

F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", 36)
F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)


def ofd(fd, cmd, ltype, start, length):
    """fcntl with an OFD lock, as QEMU locks image bytes."""
    fl = struct.pack("hhqqi4x", ltype, os.SEEK_SET, start, length, 0)
    out = fcntl.fcntl(fd, cmd, fl)
    return struct.unpack("hhqqi4x", out)


CHILD = r"""
import fcntl, os, struct, sys
path, kind = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
try:
    if kind == "posix":
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 100)
    elif kind == "flock":
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    elif kind == "ofd":
        fcntl.fcntl(fd, 37, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 100, 1, 0))
    elif kind == "getlk":
        r = fcntl.fcntl(fd, 36, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 100, 1, 0))
        sys.exit(4 if struct.unpack("hhqqi4x", r)[0] != fcntl.F_UNLCK else 0)
except OSError as e:
    sys.exit(3 if e.errno in (11, 13) else 5)
sys.exit(0)
"""


def try_lock(path, kind):
    """Take (and drop) a lock in another process: 0 granted, 3 conflict."""
    return subprocess.run([sys.executable, "-c", CHILD, path, kind], timeout=60).returncode


class CrossHost(harness.TestCase):
    LEASE = 6

    def setUp(self):
        self.shared = tmpdir()
        url = "file://%s?shared=yes&cache_ttl=0" % self.shared
        cfg = "[vfsd]\nlock_lease = %d\n[mount /s]\nurl = %s\n" % (self.LEASE, url)
        self.a = Vfsd(config_text=cfg, args=["--host-id", "hostA"]).start()
        self.addCleanup(self.a.stop)
        self.b = Vfsd(config_text=cfg, args=["--host-id", "hostB"]).start()
        self.addCleanup(self.b.stop)
        write_file(self.a.path("s/img"), b"\0" * 4096)

    def test_posix_lock(self):
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 100)
            self.assertEqual(try_lock(self.b.path("s/img"), "posix"), 3)
            # the same range through the same host, another process: conflict
            self.assertEqual(try_lock(self.a.path("s/img"), "posix"), 3)
            # records are vfsd's own business
            self.assertNotIn(".vfsd-locks", os.listdir(self.b.path("s")))
            fcntl.lockf(fd, fcntl.LOCK_UN, 10, 100)
            self.assertEqual(try_lock(self.b.path("s/img"), "posix"), 0)
        finally:
            os.close(fd)

    def test_ofd_lock_like_qemu(self):
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        try:
            ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 100, 1)
            self.assertEqual(try_lock(self.b.path("s/img"), "getlk"), 4)
            self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3)
        finally:
            os.close(fd)
        # closing the file ends its OFD locks, on every host
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 0)

    def test_flock(self):
        with open(self.a.path("s/img"), "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            self.assertEqual(try_lock(self.b.path("s/img"), "flock"), 3)
        self.assertEqual(try_lock(self.b.path("s/img"), "flock"), 0)

    def test_lock_calls_are_not_storage_statistics(self):
        """A conflict is no error of the storage and a lock waited for no
        latency of it: `vfsctl stats` counts neither (the lock rows have
        no statistics slot; counting them wrote past ops[])."""
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 100)
            self.assertEqual(try_lock(self.a.path("s/img"), "posix"), 3)
            waiter = subprocess.Popen([sys.executable, "-c", (
                "import fcntl, os, sys\n"
                "fd = os.open(sys.argv[1], os.O_RDWR)\n"
                "fcntl.lockf(fd, fcntl.LOCK_EX, 10, 100)\n"), self.a.path("s/img")])
            time.sleep(1.5)
            fcntl.lockf(fd, fcntl.LOCK_UN, 10, 100)
            self.assertEqual(waiter.wait(timeout=30), 0)
        finally:
            os.close(fd)
        st = self.a.stats("/s")
        self.assertNotIn("EAGAIN", st["errors"])
        self.assertLess(st["latency_us"]["p99"], 1000000)
        self.assertEqual(st["in_flight"], 0)

    def test_no_lock_litter(self):
        """Lease records vanish with the last lock: rmdir and rm -r work."""
        os.mkdir(self.a.path("s/d"))
        write_file(self.a.path("s/d/f"), b"x")
        with open(self.a.path("s/d/f"), "r+") as f:
            fcntl.lockf(f, fcntl.LOCK_EX, 1, 0)
            self.assertIn(".vfsd-locks", os.listdir(os.path.join(self.shared, "d")))
        self.assertEqual(os.listdir(os.path.join(self.shared, "d")), ["f"])
        subprocess.run(["rm", "-r", self.b.path("s/d")], check=True)
        self.assertFalse(os.path.exists(os.path.join(self.shared, "d")))

    def test_records_dir_is_reserved(self):
        """Where records live, .vfsd-locks is vfsd's own on both hosts:
        hidden from listings and cp -r, and every call that names it fails
        with EPERM, so records can be neither read nor planted through
        vfsd (tests/integration/test_local.py: elsewhere it is a name like
        any other)."""
        os.mkdir(self.a.path("s/d"))
        os.mkdir(self.a.path("s/e"))
        write_file(self.a.path("s/d/img"), b"\0" * 4096)
        with open(self.a.path("s/d/img"), "r+") as f:
            fcntl.lockf(f, fcntl.LOCK_EX, 0, 0)
            records = os.path.join(self.shared, "d", ".vfsd-locks")
            for host, v in (("A", self.a), ("B", self.b)):
                d = v.path("s/d")
                self.assertEqual(os.listdir(d), ["img"])
                for parent in (d, v.path("s/e")):
                    name = os.path.join(parent, ".vfsd-locks")
                    for what, fn in (
                            ("stat", os.lstat), ("listdir", os.listdir),
                            ("mkdir", os.mkdir), ("rmdir", os.rmdir),
                            ("create", lambda p: open(p, "w").close()),
                            ("open inside", lambda p: open(os.path.join(p, "img", "x"), "w")),
                            ("symlink", lambda p: os.symlink("x", p)),
                            ("rename to", lambda p: os.rename(v.path("s/d/img"), p))):
                        with self.subTest(host=host, parent=parent, what=what):
                            with self.assertRaises(OSError) as cm:
                                fn(name)
                            self.assertEqual(cm.exception.errno, errno.EPERM)
                copy = os.path.join(tmpdir(), "copy")
                subprocess.run(["cp", "-r", d, copy], check=True)
                self.assertEqual(os.listdir(copy), ["img"])
            # only host A's own records (renewed meanwhile), nothing planted
            self.assertEqual(os.listdir(records), ["img"])
            names = os.listdir(os.path.join(records, "img"))
            self.assertTrue(names)
            self.assertTrue(all(n.startswith("hostA.") for n in names), names)
            self.assertFalse(os.path.exists(os.path.join(self.shared, "e", ".vfsd-locks")))
            # the lock still holds across hosts
            self.assertEqual(try_lock(self.b.path("s/d/img"), "posix"), 3)

    def test_dead_host_lease_expires(self):
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        try:
            ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 100, 1)
            self.a.kill(signal.SIGKILL)
            self.a.proc.wait()
            killed = time.monotonic()
            # not before the lease has run out...
            self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3)
            self.assertLess(time.monotonic() - killed, self.LEASE)
            # ...and surely after
            time.sleep(self.LEASE + 1.5)
            self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 0)
        finally:
            try:
                os.close(fd)
            except OSError:
                pass

    def test_partition_holder_stops_writing_first(self):
        """A holder that cannot renew its lease stops writing (EIO) before
        another host may break it.  The cut is one-sided: A's renewals
        fail (its record replaced by a directory it cannot write) while
        its data path still works."""
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        self.addCleanup(os.close, fd)
        ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 100, 1)
        os.pwrite(fd, b"A0", 0)

        def settled():
            """A's one record, once it no longer marks the lock pending
            (A rewrites it right after the grant)."""
            recs = [os.path.join(r, f) for r, _, fs in
                    os.walk(os.path.join(self.shared, ".vfsd-locks"))
                    for f in fs if f.startswith("hostA.") and f.endswith(".lease")]
            try:
                return len(recs) == 1 and b"pending" not in open(recs[0], "rb").read() \
                    and recs
            except OSError:
                return False
        # A renews every lease/6 under a new name: replace the one that
        # is current, and again if a renewal slipped in between
        for _ in range(20):
            harness.wait_for(settled, 10, "A's record to settle")
            rec = settled()[0]
            try:
                os.unlink(rec)
            except FileNotFoundError:
                continue
            os.mkdir(rec)
            others = [f for f in os.listdir(os.path.dirname(rec))
                      if f.startswith("hostA.") and f.endswith(".lease")
                      and not os.path.isdir(os.path.join(os.path.dirname(rec), f))]
            if not others:
                break
            os.rmdir(rec)
        else:
            self.fail("could not catch A's current record")
        cut = time.monotonic()
        a_failed = b_took = None
        last_ok = b"A0"
        while time.monotonic() - cut < 3 * self.LEASE and b_took is None:
            now = time.monotonic() - cut
            data = b"A%d" % int(now * 10)
            try:
                os.pwrite(fd, data, 0)
                self.assertIsNone(a_failed, "A wrote again after failing")
                last_ok = data
            except OSError as e:
                self.assertEqual(e.errno, errno.EIO)
                if a_failed is None:
                    a_failed = now
            if try_lock(self.b.path("s/img"), "ofd") == 0:
                b_took = now
            time.sleep(0.2)
        self.assertIsNotNone(a_failed, "A kept writing with a dead lease")
        self.assertIsNotNone(b_took, "B never broke the expired lease")
        self.assertLess(a_failed, b_took)
        # A stopped within its 2/3 of the lease (plus a renewal period of
        # slack), B waited for the whole lease
        self.assertLess(a_failed, self.LEASE)
        self.assertGreaterEqual(b_took, self.LEASE - 1)
        with open(os.path.join(self.shared, "img"), "rb") as f:
            self.assertEqual(f.read(len(last_ok)), last_ok)


if __name__ == "__main__":
    harness.main()
