# SPDX-License-Identifier: GPL-2.0-or-later
"""Cross-host locks under faults: one regression test for each way the
first protocol let two daemons hold one image's exclusive lock (issue 12),
driven by the fault-injection wrapper (fault+file://) so that each fault
lands exactly where it hurt, plus records that are empty, oversized or
unreadable, and the lease/timeout configuration check.

Every test asserts the safety property from what the file and the records
on the shared directory say, never from the daemons' own word."""
import contextlib
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, tmpdir, vfsctl, VFSCTL  # noqa: E402
from posix_suite import write_file  # noqa: E402
from test_locks import F_OFD_GETLK, F_OFD_SETLK, ofd, try_lock  # noqa: E402

F_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", 38)

LEASE = 6          # lock_lease: W = 4 s, renewals every 1 s


def fault(v, *words):
    """A fault rule on v's /s mount; returns its id."""
    return vfsctl(v, "fault", "/s", *words).stdout.strip()


def records(shared, host):
    """host's lease records on the shared directory (names)."""
    d = os.path.join(shared, ".vfsd-locks", "img")
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(host + ".") and n.endswith(".lease"))


def assert_records(test, shared, host, n, msg=None):
    """host has exactly n lease records on the shared directory.  A
    renewal writes its new record before it removes the old one, so a
    listing may catch one more for a moment; a leaked record stays.
    Listings are taken for up to 2 s until one shows exactly n."""
    deadline = time.monotonic() + 2
    while True:
        got = records(shared, host)
        if len(got) == n or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    test.assertEqual(len(got), n, "%s%s" % (msg + ": " if msg else "", got))


class LockFaultsBase(harness.TestCase):
    """Two daemons (hosts A and B) on one shared directory behind a fault
    rule backend, and the helpers the fault tests share."""

    def daemon(self, host, lease=LEASE):
        url = "fault+file://%s?shared=yes&cache_ttl=0" % self.shared
        cfg = "[vfsd]\nlock_lease = %d\n[mount /s]\nurl = %s\n" % (lease, url)
        v = Vfsd(config_text=cfg, args=["--host-id", host]).start()
        self.addCleanup(v.stop)
        # a paused call keeps the mount busy: release it before unmounting
        self.addCleanup(lambda: vfsctl(v, "fault", "/s", "clear", check=False)
                        if v.proc else None)
        return v

    def setUp(self):
        self.shared = tmpdir()
        write_file(os.path.join(self.shared, "img"), b"\0" * 4096)
        self.a = self.daemon("hostA")
        self.b = self.daemon("hostB")

    def close_later(self, fd):
        """Close fd at the end unless the test closed it itself."""
        def close():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.addCleanup(close)

    def lock_a(self):
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        self.close_later(fd)
        ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 0, 0)
        return fd

    def late_write(self, fd):
        """A thread writing "A-LATE!!" at offset 0 of fd (a write a pause
        rule holds inside the daemon): the thread and a dict that gets
        its outcome, 'rc' 0 or the errno."""
        result = {}

        def writer():
            try:
                os.pwrite(fd, b"A-LATE!!", 0)
                result["rc"] = 0
            except OSError as e:
                result["rc"] = e.errno
        t = threading.Thread(target=writer)
        t.start()
        return t, result

    def read_img(self, n):
        with open(os.path.join(self.shared, "img"), "rb") as f:
            return f.read(n)

    def acquire_in_thread(self, fd, start=0, length=0, unlock=False):
        """An OFD lock call on A in a thread; res["rc"] gets its errno."""
        res = {}

        def call():
            try:
                ofd(fd, F_OFD_SETLK, fcntl.F_UNLCK if unlock else fcntl.F_WRLCK,
                    start, length)
                res["rc"] = 0
            except OSError as e:
                res["rc"] = e.errno
        t = threading.Thread(target=call)
        t.start()
        return t, res

    def take_b(self, start=0, length=0):
        """B's lock, polled until granted (A's record must expire)."""
        fdb = os.open(self.b.path("s/img"), os.O_RDWR)
        self.close_later(fdb)
        deadline = time.monotonic() + 5 * LEASE
        while True:
            try:
                ofd(fdb, F_OFD_SETLK, fcntl.F_WRLCK, start, length)
                return fdb
            except OSError as e:
                self.assertIn(e.errno, (errno.EAGAIN, errno.EACCES))
                self.assertLess(time.monotonic(), deadline, "B never got the lock")
                time.sleep(0.3)

    def next_round(self, fd, fdb):
        """Back to no locks and no faults between subtests."""
        os.close(fdb)
        os.close(fd)
        vfsctl(self.a, "fault", "/s", "clear")
        harness.wait_for(lambda: not records(self.shared, "hostB"), 30,
                         "B's record to go")
        harness.wait_for(lambda: not records(self.shared, "hostA"), 3 * LEASE,
                         "A's lapsed record to expire")

    def wait_lapsed(self, fd, limit):
        """Write through A until its writes fail (its lease lapsed)."""
        end = time.monotonic() + limit
        while True:
            try:
                os.pwrite(fd, b"a", 100)
            except OSError as e:
                self.assertEqual(e.errno, errno.EIO)
                return
            self.assertLess(time.monotonic(), end, "A's lease never lapsed")
            time.sleep(0.1)

    def late_rewrite(self, how):
        """A record rewrite (a renewal, or the publish of another lock)
        whose removal of its predecessor is served but answered past the
        validity, when nothing after it counts: the locks' last valid
        record must stay until it expires.  (W = 4 s, L + 1 = 7 s.)"""
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        opened = [fd]
        self.addCleanup(lambda: [os.close(f) for f in opened])
        ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 0, 200)   # try_lock's byte 100
        time.sleep(0.3)     # past the post-grant rewrite
        before = records(self.shared, "hostA")
        if how == "renewal":
            fault(self.a, "add", "op=unlink", "path=*/.vfsd-locks/img/hostA*",
                  "delay=3500", "when=after", "count=1")
            # the next renewal writes its record, then its removal of
            # the last one (renewed within 1 s) is answered past W
            harness.wait_for(lambda: records(self.shared, "hostA") != before, 3,
                             "a renewal")
            time.sleep(4)
        else:
            fault(self.a, "add", "op=unlink", "path=*/.vfsd-locks/img/hostA*",
                  "delay=4000", "when=after", "count=1")
            t, res = self.acquire_in_thread(fd, 1000, 1)
            t.join(60)
        self.assertNotEqual(records(self.shared, "hostA"), [],
                            "A's record was removed before it expired")
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3,
                         "B was granted the lock before A's record expired")
        os.close(opened.pop())
        fdb = self.take_b()
        os.pwrite(fdb, b"B", 0)
        self.assertEqual(self.read_img(1), b"B")

    def bogus_record(self, content, name="hostZ.0123456789abcdef.1.lease"):
        d = os.path.join(self.shared, ".vfsd-locks", "img")
        # B's last lock may still be on its way out (a FUSE release comes
        # after close returns) and take the empty directory with it
        harness.wait_for(lambda: not records(self.shared, "hostB"), 30,
                         "B's record to go")
        for _ in range(50):
            try:
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, name), "wb") as f:
                    f.write(content)
                return os.path.join(d, name)
            except FileNotFoundError:
                time.sleep(0.1)
        self.fail("cannot place a record in " + d)


class LockFaults(LockFaultsBase):
    def test_2_write_in_flight_is_fenced(self):
        """A's write passes the lock check and then stalls (paused inside
        the daemon) while A itself is stopped past the lease; B takes the
        lock and writes.  A's stalled write must never land after that."""
        fd = self.lock_a()
        os.pwrite(fd, b"A-before", 0)
        rule = fault(self.a, "add", "op=write", "path=/img", "pause", "count=1")
        t, result = self.late_write(fd)
        time.sleep(0.5)   # the write is now held between check and backend
        self.a.kill(signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 4 * LEASE
            fdb = os.open(self.b.path("s/img"), os.O_RDWR)
            self.addCleanup(os.close, fdb)
            while True:
                try:
                    ofd(fdb, F_OFD_SETLK, fcntl.F_WRLCK, 0, 0)
                    break
                except OSError as e:
                    self.assertIn(e.errno, (errno.EAGAIN, errno.EACCES))
                    self.assertLess(time.monotonic(), deadline, "B never got the lock")
                    time.sleep(0.3)
            os.pwrite(fdb, b"B-OWNS!!", 0)
            os.fsync(fdb)
        finally:
            self.a.kill(signal.SIGCONT)
        vfsctl(self.a, "fault", "/s", "resume", rule)
        t.join(30)
        self.assertFalse(t.is_alive())
        self.assertEqual(result.get("rc"), errno.EIO, result)
        time.sleep(1)
        self.assertEqual(self.read_img(8), b"B-OWNS!!")
        # and A stays fenced: later writes fail too
        with self.assertRaises(OSError) as cm:
            os.pwrite(fd, b"A-AGAIN!", 0)
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(self.read_img(8), b"B-OWNS!!")

    def test_3b_pending_record_keeps_others_out(self):
        """An acquirer paused after publishing (before reading the others)
        keeps B out while its record is fresh, and is refused when it
        resumes after B took the lock."""
        fault(self.a, "add", "op=opendir", "path=*/.vfsd-locks/*", "pause", "count=1")
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        self.addCleanup(os.close, fd)
        t, res = self.acquire_in_thread(fd)
        time.sleep(1)
        self.assertTrue(t.is_alive(), "A's acquisition did not pause")
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3)
        self.take_b()
        vfsctl(self.a, "fault", "/s", "resume")
        t.join(60)
        self.assertIn(res.get("rc"), (errno.EAGAIN, errno.EACCES),
                      "A was granted the lock B holds")

    def test_4b_renewals_fail_until_taken_over(self):
        """A cannot renew at all (its record writes fail): it stops writing
        before B may take over, and stays fenced after its storage path
        heals."""
        fd = self.lock_a()
        fault(self.a, "add", "op=create", "path=*/.vfsd-locks/*", "error=EIO")
        fdb = os.open(self.b.path("s/img"), os.O_RDWR)
        self.addCleanup(os.close, fdb)
        start = time.monotonic()
        a_failed = None
        while True:
            try:
                os.pwrite(fd, b"A", 0)
            except OSError as e:
                self.assertEqual(e.errno, errno.EIO)
                if a_failed is None:
                    a_failed = time.monotonic() - start
            try:
                ofd(fdb, F_OFD_SETLK, fcntl.F_WRLCK, 0, 0)
                break
            except OSError:
                self.assertLess(time.monotonic() - start, 4 * LEASE)
                time.sleep(0.2)
        b_took = time.monotonic() - start
        self.assertIsNotNone(a_failed, "A wrote until B took over")
        self.assertLess(a_failed, b_took)
        print("A fenced at %.1f s, B took over at %.1f s (lease %d s)"
              % (a_failed, b_took, LEASE))
        vfsctl(self.a, "fault", "/s", "clear")
        time.sleep(3)     # three of A's renewal periods
        self.assertEqual(records(self.shared, "hostA"), [])
        assert_records(self, self.shared, "hostB", 1)
        with self.assertRaises(OSError) as cm:
            os.pwrite(fd, b"A", 0)
        self.assertEqual(cm.exception.errno, errno.EIO)
        os.pwrite(fdb, b"B", 0)
        self.assertEqual(self.read_img(1), b"B")

    def test_2b_truncate_and_punch_in_flight_are_fenced(self):
        """As test 2, with ftruncate and a punched hole instead of a
        write."""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)

        def punch(fd):
            if libc.fallocate(fd, 3, ctypes.c_long(0), ctypes.c_long(4096)) != 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
        for op, call in (("setattr", lambda fd: os.ftruncate(fd, 0)), ("fallocate", punch)):
            with self.subTest(op=op):
                fd = os.open(self.a.path("s/img"), os.O_RDWR)
                ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 0, 0)
                rule = fault(self.a, "add", "op=" + op, "path=/img", "pause", "count=1")
                res = {}

                def run():
                    try:
                        call(fd)
                        res["rc"] = 0
                    except OSError as e:
                        res["rc"] = e.errno
                t = threading.Thread(target=run)
                t.start()
                time.sleep(0.5)
                self.assertTrue(t.is_alive(), "did not pause")
                self.a.kill(signal.SIGSTOP)
                try:
                    fdb = self.take_b()
                    os.pwrite(fdb, b"B-OWNS!!" * 512, 0)
                    os.fsync(fdb)
                finally:
                    self.a.kill(signal.SIGCONT)
                vfsctl(self.a, "fault", "/s", "resume", rule)
                t.join(30)
                self.assertEqual(res.get("rc"), errno.EIO, res)
                self.assertEqual(os.stat(os.path.join(self.shared, "img")).st_size, 4096)
                self.assertEqual(self.read_img(8), b"B-OWNS!!")
                self.next_round(fd, fdb)

    def test_8_open_o_trunc_is_fenced(self):
        """Once A's locks are lost, open(O_TRUNC) through A fails like a
        write and leaves B's data alone."""
        self.lock_a()
        time.sleep(0.5)
        fault(self.a, "add", "op=getattr,open,create", "path=*/.vfsd-locks/img/hostA*",
              "error=EIO")
        fdb = self.take_b()
        os.pwrite(fdb, b"B" * 4096, 0)
        os.fsync(fdb)
        with self.assertRaises(OSError) as cm:
            os.close(os.open(self.a.path("s/img"), os.O_RDWR | os.O_TRUNC))
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(os.stat(os.path.join(self.shared, "img")).st_size, 4096)

    def test_9_one_directory_two_mounts(self):
        """Two prefixes of one daemon on one shared directory see one file
        twice: their locks conflict like two hosts' and neither removes
        the other's record."""
        url = "file://%s?shared=yes&cache_ttl=0" % self.shared
        cfg = ("[vfsd]\nlock_lease = %d\n[mount /s]\nurl = %s\n[mount /t]\nurl = %s\n"
               % (LEASE, url, url))
        v = Vfsd(config_text=cfg, args=["--host-id", "hostC"]).start()
        self.addCleanup(v.stop)
        fs = os.open(v.path("s/img"), os.O_RDWR)
        self.close_later(fs)
        ft = os.open(v.path("t/img"), os.O_RDWR)
        self.close_later(ft)
        ofd(fs, F_OFD_SETLK, fcntl.F_WRLCK, 0, 1)
        with self.assertRaises(OSError) as cm:
            ofd(ft, F_OFD_SETLK, fcntl.F_WRLCK, 0, 1)
        self.assertIn(cm.exception.errno, (errno.EAGAIN, errno.EACCES))
        got = ofd(ft, F_OFD_GETLK, fcntl.F_WRLCK, 0, 1)
        self.assertEqual(got[0], fcntl.F_WRLCK,
                         "F_GETLK through /t does not report /s's lock: %s" % (got,))
        ofd(ft, F_OFD_SETLK, fcntl.F_RDLCK, 100, 1)
        time.sleep(1.5)
        assert_records(self, self.shared, "hostC", 2)
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3)
        with self.assertRaises(OSError):
            fb = os.open(self.b.path("s/img"), os.O_RDWR)
            self.close_later(fb)
            ofd(fb, F_OFD_SETLK, fcntl.F_WRLCK, 0, 1)

    def test_9b_leftover_of_one_mount_live_lock_of_another(self):
        """One daemon, two prefixes of one shared directory: a record left
        behind by /t's release (its removal failed) keeps only other hosts
        out, but /t's next live lock keeps /s out, as another host's
        would."""
        url = "fault+file://%s?shared=yes&cache_ttl=0" % self.shared
        cfg = ("[vfsd]\nlock_lease = %d\n[mount /s]\nurl = %s\n[mount /t]\nurl = %s\n"
               % (LEASE, url, url))
        v = Vfsd(config_text=cfg, args=["--host-id", "hostC"]).start()
        self.addCleanup(v.stop)
        self.addCleanup(lambda: vfsctl(v, "fault", "/t", "clear", check=False)
                        if v.proc else None)
        ft = os.open(v.path("t/img"), os.O_RDWR)
        self.close_later(ft)
        ofd(ft, F_OFD_SETLK, fcntl.F_WRLCK, 0, 0)
        time.sleep(0.5)     # past the post-grant rewrite, which also unlinks
        vfsctl(v, "fault", "/t", "add", "op=unlink", "path=*/.vfsd-locks/*", "error=EIO")
        ofd(ft, F_OFD_SETLK, fcntl.F_UNLCK, 0, 0)
        vfsctl(v, "fault", "/t", "clear")
        assert_records(self, self.shared, "hostC", 1, "no leftover record")
        # the leftover: others are kept out, its own daemon is not
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3)
        fs = os.open(v.path("s/img"), os.O_RDWR)
        self.close_later(fs)
        ofd(fs, F_OFD_SETLK, fcntl.F_WRLCK, 0, 1)
        ofd(fs, F_OFD_SETLK, fcntl.F_UNLCK, 0, 0)
        # a live lock through /t is another file's to /s
        ofd(ft, F_OFD_SETLK, fcntl.F_WRLCK, 0, 0)
        with self.assertRaises(OSError) as cm:
            ofd(fs, F_OFD_SETLK, fcntl.F_WRLCK, 0, 1)
        self.assertIn(cm.exception.errno, (errno.EAGAIN, errno.EACCES))
        self.assertEqual(ofd(fs, F_OFD_GETLK, fcntl.F_WRLCK, 0, 1)[0], fcntl.F_WRLCK)

    def test_10_lapsed_release_leaves_the_record(self):
        """A's lease lapses (renewals fail) with a write of A still in
        flight; A then unlocks.  Its last record must stay until it
        expires (the L/3 margin covers writes the server may still be
        finishing): B is refused right after A's unlock."""
        fd = self.lock_a()
        time.sleep(0.5)     # past the post-grant rewrite
        rule = fault(self.a, "add", "op=write", "path=/img", "pause", "count=1")
        t, result = self.late_write(fd)
        self.addCleanup(t.join, 30)
        time.sleep(0.3)
        fault(self.a, "add", "op=create", "path=*/.vfsd-locks/*", "error=EIO")
        # its last renewal was sent less than P = 1 s ago: lapsed (W = 4 s)
        # within 4 s, expired (L + 1 = 7 s) no earlier than 6 s from now.
        # (Another write would queue behind the paused one in the kernel.)
        time.sleep(4.3)
        u, res = self.acquire_in_thread(fd, unlock=True)
        u.join(30)
        self.assertEqual(res.get("rc"), 0)
        self.assertNotEqual(records(self.shared, "hostA"), [],
                            "A's lapsed record was removed before it expired")
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3,
                         "B was granted the lock before A's lapsed record expired")
        vfsctl(self.a, "fault", "/s", "resume", rule)
        t.join(30)
        self.assertEqual(result.get("rc"), errno.EIO, result)
        fdb = self.take_b()
        os.pwrite(fdb, b"B-OWNS!!", 0)
        self.assertEqual(self.read_img(8), b"B-OWNS!!")

    def test_10b_late_renewal_keeps_a_record(self):
        """A renewal whose removal of its predecessor is answered late."""
        self.late_rewrite("renewal")

    def test_10c_late_publish_keeps_a_record(self):
        """A publish (lock of byte 1000) whose removal of its predecessor is
        answered late; its own record is removed as too late."""
        self.late_rewrite("publish")

    def test_11_record_directory_removed_under_acquirer(self):
        """Another host's release removes the emptied record directories
        between this acquirer's mkdir and its create (a migration's
        hand-over): the lock is granted, not failed with ENOENT."""
        rule = fault(self.a, "add", "op=create", "path=*/.vfsd-locks/img/hostA*",
                     "pause", "skip=1", "count=1")
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        self.close_later(fd)
        t, res = self.acquire_in_thread(fd)
        harness.wait_for(lambda: os.path.isdir(os.path.join(self.shared, ".vfsd-locks",
                                                            "img")),
                         10, "A's mkdir")
        time.sleep(0.3)     # A is paused at its second create
        self.assertTrue(t.is_alive(), "A's create did not pause")
        os.rmdir(os.path.join(self.shared, ".vfsd-locks", "img"))
        os.rmdir(os.path.join(self.shared, ".vfsd-locks"))
        vfsctl(self.a, "fault", "/s", "resume", rule)
        t.join(60)
        self.assertEqual(res.get("rc"), 0, "A's lock failed: %s"
                         % os.strerror(res.get("rc") or 0))
        assert_records(self, self.shared, "hostA", 1)
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3)

    def test_13_stale_handle_is_a_vanished_record(self):
        """On NFS a record, or the record directory, that another host
        replaced or removed since its lookup answers ESTALE rather than
        ENOENT (a migration's hand-over, widened by storage latency).
        Either way it is gone: the acquirer looks again and decides on
        what is there, and never fails the lock with ESTALE."""
        fd_b = os.open(self.b.path("s/img"), os.O_RDWR)
        self.close_later(fd_b)
        ofd(fd_b, F_OFD_SETLK, fcntl.F_WRLCK, 100, 1)
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        self.close_later(fd)
        for op, path in (("create", "*/.vfsd-locks/img/hostA*"),
                         ("open", "*/.vfsd-locks/img/hostB*"),
                         ("read", "*/.vfsd-locks/img/hostB*"),
                         ("opendir", "*/.vfsd-locks/img"),
                         ("readdir", "*/.vfsd-locks/img")):
            with self.subTest(op=op):
                fault(self.a, "add", "op=" + op, "path=" + path, "error=ESTALE",
                      "count=1")
                ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 0, 1)
                fault(self.a, "clear")
                # B's byte stays B's, whichever of its lookups went stale
                fault(self.a, "add", "op=" + op, "path=" + path, "error=ESTALE",
                      "count=1")
                with self.assertRaises(OSError) as cm:
                    ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 100, 1)
                self.assertIn(cm.exception.errno, (errno.EAGAIN, errno.EACCES))
                fault(self.a, "clear")
                ofd(fd, F_OFD_SETLK, fcntl.F_UNLCK, 0, 1)

    def test_14_failed_record_read_is_no_holder(self):
        """A record read that fails for the server or the connection (EIO)
        says nothing about the record: the lock fails with that error,
        never with EAGAIN as if the record held the whole file, and the
        next try, with the server answering, decides on what is there."""
        fd_b = os.open(self.b.path("s/img"), os.O_RDWR)
        self.close_later(fd_b)
        ofd(fd_b, F_OFD_SETLK, fcntl.F_RDLCK, 100, 1)
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        self.close_later(fd)
        fault(self.a, "add", "op=read", "path=*/.vfsd-locks/img/hostB*", "error=EIO",
              "count=1")
        with self.assertRaises(OSError) as cm:
            ofd(fd, F_OFD_SETLK, fcntl.F_RDLCK, 101, 1)
        self.assertNotIn(cm.exception.errno, (errno.EAGAIN, errno.EACCES),
                         "a failed read taken for a holder")
        fault(self.a, "clear")
        ofd(fd, F_OFD_SETLK, fcntl.F_RDLCK, 101, 1)     # a shared lock beside B's
        ofd(fd, F_OFD_SETLK, fcntl.F_RDLCK, 100, 1)
        ofd(fd, F_OFD_SETLK, fcntl.F_UNLCK, 0, 0)

    def test_14b_backend_eagain_is_no_holder(self):
        """A backend's EAGAIN (NFS3ERR_JUKEBOX) on the way to B's record is
        no holder either, wherever it comes: the listing of the record
        directory, or an open and a stat of the record that both fail.
        The lock fails, but never with EAGAIN or EACCES, "held by
        another", for a lock B's record does not refuse."""
        fd_b = os.open(self.b.path("s/img"), os.O_RDWR)
        self.close_later(fd_b)
        ofd(fd_b, F_OFD_SETLK, fcntl.F_RDLCK, 100, 1)
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        self.close_later(fd)
        for op, path in (("opendir", "*/.vfsd-locks/img"),
                         ("open,getattr", "*/.vfsd-locks/img/hostB*")):
            with self.subTest(op=op):
                fault(self.a, "add", "op=" + op, "path=" + path, "error=EAGAIN")
                try:
                    with self.assertRaises(OSError) as cm:
                        ofd(fd, F_OFD_SETLK, fcntl.F_RDLCK, 101, 1)
                    self.assertNotIn(cm.exception.errno, (errno.EAGAIN, errno.EACCES),
                                     "a backend's EAGAIN taken for a holder (%s)" % op)
                finally:
                    fault(self.a, "clear")
        ofd(fd, F_OFD_SETLK, fcntl.F_RDLCK, 101, 1)
        ofd(fd, F_OFD_SETLK, fcntl.F_UNLCK, 0, 0)

    def test_14c_blocking_wait_outlasts_a_failed_read(self):
        """F_OFD_SETLKW waits through a record read that fails for the
        server: a glitch during the wait is no answer about the holder,
        and the waiter gets the lock once B lets go (as it did while such
        a read counted as a whole-file lock), not EIO at the glitch."""
        fd_b = os.open(self.b.path("s/img"), os.O_RDWR)
        self.close_later(fd_b)
        ofd(fd_b, F_OFD_SETLK, fcntl.F_WRLCK, 0, 1)
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        self.close_later(fd)
        result = {}

        def waiter():
            try:
                ofd(fd, F_OFD_SETLKW, fcntl.F_WRLCK, 0, 1)
                result["rc"] = 0
            except OSError as e:
                result["rc"] = e.errno
        t = threading.Thread(target=waiter, daemon=True)
        t.start()
        time.sleep(1)           # A is waiting: B's record refuses it
        self.assertNotIn("rc", result, "A did not wait")
        fault(self.a, "add", "op=read", "path=*/.vfsd-locks/img/hostB*", "error=EIO",
              "count=1")
        time.sleep(1)           # A's next try meets the failed read
        ofd(fd_b, F_OFD_SETLK, fcntl.F_UNLCK, 0, 1)
        t.join(30)
        self.assertEqual(result.get("rc"), 0,
                         "the wait ended with %s" % os.strerror(result.get("rc") or 0))
        ofd(fd, F_OFD_SETLK, fcntl.F_UNLCK, 0, 0)

    def test_14d_unreadable_record_is_not_nobody(self):
        """While B's live record cannot be read (EIO), the image's holders
        are unknown: user.vfsd.image.locked_by fails or names something,
        never "" (nobody), which an operator would take for a free
        image."""
        fd_b = os.open(self.b.path("s/img"), os.O_RDWR)
        self.close_later(fd_b)
        ofd(fd_b, F_OFD_SETLK, fcntl.F_WRLCK, 0, 1)
        self.assertEqual(os.getxattr(self.a.path("s/img"), "user.vfsd.image.locked_by"),
                         b"hostB")
        fault(self.a, "add", "op=read", "path=*/.vfsd-locks/img/hostB*", "error=EIO")
        try:
            try:
                holders = os.getxattr(self.a.path("s/img"), "user.vfsd.image.locked_by")
            except OSError:
                holders = None      # an error is an honest answer
            self.assertNotEqual(holders, b"", "a live record it could not read shown as nobody")
        finally:
            fault(self.a, "clear")

    def test_15_close_of_another_descriptor_needs_no_round_trip(self):
        """close(2) of any descriptor of a file drops the process's POSIX
        locks on it.  The layer keys files by the backend's inode number,
        which a descriptor that never locked learnt only at that close,
        by an fgetattr: one that failed kept the locks of the process
        past the close (B's stays free of A's then too: the record goes)."""
        path = self.a.path("s/img")
        fd = os.open(path, os.O_RDWR)
        self.close_later(fd)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 100)
        # every fgetattr after the open's own fails (the rule goes in
        # first: vfsctl's fork would close a copy of `other`, a flush)
        fault(self.a, "add", "op=fgetattr", "path=/img", "error=EIO", "skip=1")
        other = os.open(path, os.O_RDONLY)
        with contextlib.suppress(OSError):
            os.close(other)
        vfsctl(self.a, "fault", "/s", "clear")
        self.assertEqual(try_lock(path, "posix"), 0)
        self.assertEqual(try_lock(self.b.path("s/img"), "posix"), 0)

    def test_16_force_removed_mount_gives_locks_up(self):
        """vfsctl mount remove --force while A holds a lock through a file
        still open: the file's writes fail from then on, so A stops
        renewing its record and B takes the lock once it expired (not
        before: a write in flight at the removal may still land), while
        A's descriptor stays open."""
        fd = self.lock_a()
        os.pwrite(fd, b"A0", 0)
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3)
        vfsctl(self.a, "mount", "remove", "--force", "/s")
        removed = time.monotonic()
        with self.assertRaises(OSError) as cm:
            os.pwrite(fd, b"A1", 0)
        self.assertEqual(cm.exception.errno, errno.EIO)
        took = None
        while time.monotonic() - removed < 4 * LEASE:
            if try_lock(self.b.path("s/img"), "ofd") == 0:
                took = time.monotonic() - removed
                break
            time.sleep(0.3)
        self.assertIsNotNone(took, "A's revoked mount kept its lock")
        # A's last record, written at most a renewal period (L/6) before
        # the removal, lives L + 1 s by the server's clock
        self.assertGreaterEqual(took, LEASE - LEASE / 6 - 0.5)
        self.assertIn("given up", self.a.log())

    def test_12_one_record_per_holder(self):
        """Every lock operation that rewrites A's record (another range,
        a refused lock withdrawn, a partial unlock) removes its
        predecessor: superseded records would keep others out."""
        fdb = os.open(self.b.path("s/img"), os.O_RDWR)
        self.close_later(fdb)
        ofd(fdb, F_OFD_SETLK, fcntl.F_WRLCK, 50, 1)
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        self.close_later(fd)
        ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 0, 1)
        time.sleep(0.5)     # past the post-grant rewrite
        steps = [("another range", fcntl.F_WRLCK, 10, 1),
                 ("a refused lock", fcntl.F_WRLCK, 50, 1),
                 ("a partial unlock", fcntl.F_UNLCK, 10, 1)]
        for what, ltype, start, length in steps:
            with contextlib.suppress(BlockingIOError, PermissionError):
                ofd(fd, F_OFD_SETLK, ltype, start, length)
            assert_records(self, self.shared, "hostA", 1, "after " + what)
        ofd(fdb, F_OFD_SETLK, fcntl.F_UNLCK, 0, 0)
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 0,
                         "B refused byte 100, which A never held")

    def test_fifo_record_does_not_hang(self):
        """A FIFO named like a record (put there by whoever can write the
        backing directory) is a lock of unknown content, not a hang."""
        d = os.path.join(self.shared, ".vfsd-locks", "img")
        os.makedirs(d, exist_ok=True)
        os.mkfifo(os.path.join(d, "evil.0.1.lease"))
        start = time.monotonic()
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3)
        self.assertLess(time.monotonic() - start, 10)
        old = time.time() - LEASE - 3
        os.utime(os.path.join(d, "evil.0.1.lease"), (old, old))
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 0)

    def test_5_duplicate_host_id(self):
        """A second daemon with A's host id is refused A's lock, cannot
        remove A's record, and says so once it sees the other alive."""
        dup = self.daemon("hostA")
        fd = self.lock_a()
        assert_records(self, self.shared, "hostA", 1)
        self.assertEqual(try_lock(dup.path("s/img"), "ofd"), 3)
        time.sleep(2.5)   # A renews (new record name) meanwhile
        rc = try_lock(dup.path("s/img"), "ofd")
        self.assertIn(rc, (3, 5), "the duplicate got A's lock")
        assert_records(self, self.shared, "hostA", 1)
        self.assertIn("is used by another running vfsd instance", dup.log())
        # A's lock still holds against everyone
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3)
        os.pwrite(fd, b"A", 0)

    def test_holders_shown_with_token_and_age(self):
        """vfsctl image info names each holder's instance and record age."""
        self.lock_a()
        time.sleep(1.5)
        r = vfsctl(self.b, "--json", "image", "info", self.b.path("s/img"))
        holders = json.loads(r.stdout)["lock_holders"]
        self.assertEqual(len(holders), 1, holders)
        self.assertEqual(holders[0]["host"], "hostA")
        self.assertRegex(holders[0]["token"], "^[0-9a-f]{16}$")
        self.assertTrue(records(self.shared, "hostA." + holders[0]["token"]))
        self.assertLessEqual(holders[0]["age"], LEASE)
        human = vfsctl(self.b, "image", "info", self.b.path("s/img")).stdout
        self.assertIn("lock holder:    hostA token=" + holders[0]["token"], human)

    def test_bad_records_count_as_whole_file_locks(self):
        """An empty, oversized or malformed fresh record is a write lock
        of the whole file until it expires by the server's clock."""
        for content in (b"", b"vfsd-lease 2\nhost z\ntoken t\n" + b"P W 0 1\n" * 9000,
                        b"garbage\n", b"vfsd-lease 2\nhost z\ntoken t\nP W 0\n"):
            path = self.bogus_record(content)
            self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3, content[:40])
            self.assertEqual(try_lock(self.b.path("s/img"), "flock"), 3, content[:40])
            # expired by its age: the lock is free and the record gone
            old = time.time() - LEASE - 3
            os.utime(path, (old, old))
            self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 0, content[:40])
            self.assertFalse(os.path.exists(path))


class LockLeaseWaits(LockFaultsBase):
    """The faults whose proof takes a lease running out, or several (7-20 s
    each): a meson test of their own in suite lease-waits, which the
    sanitizer build leaves out (the code they reach runs there in
    LockFaults and the lock and migration suites)."""

    def test_1_renewal_never_empties_the_record(self):
        """A renewal whose record write stalls (1.5 s per write) must not
        leave a moment in which B reads "no locks": B tries all the time
        for a dozen renewals and is refused every time."""
        self.lock_a()
        fault(self.a, "add", "op=write", "path=*/.vfsd-locks/*", "delay=1500")
        tries = refused = 0
        end = time.monotonic() + 3 * LEASE
        while time.monotonic() < end:
            tries += 1
            rc = try_lock(self.b.path("s/img"), "ofd")
            self.assertEqual(rc, 3, "B was granted A's lock (try %d)" % tries)
            refused += 1
        print("B refused %d of %d tries over %d s of slow renewals"
              % (refused, tries, 3 * LEASE))
        self.assertGreater(tries, 5)
        assert_records(self, self.shared, "hostA", 1)

    def test_3_acquirer_paused_mid_protocol(self):
        """A is paused inside its acquisition, at the write of its own
        record (the old protocol's critical section, under its mutex), for
        longer than the lease; B takes the lock meanwhile.  When A resumes
        it must be refused."""
        fault(self.a, "add", "op=create", "path=*/.vfsd-locks/img/hostA*", "pause",
              "count=1")
        fd = os.open(self.a.path("s/img"), os.O_RDWR)
        self.addCleanup(os.close, fd)
        t, res = self.acquire_in_thread(fd)
        time.sleep(1)
        self.assertTrue(t.is_alive(), "A's acquisition did not pause")
        fdb = self.take_b()
        time.sleep(LEASE + 2)      # as long as the old mutex's 10 s
        vfsctl(self.a, "fault", "/s", "resume")
        t.join(60)
        self.assertIn(res.get("rc"), (errno.EAGAIN, errno.EACCES),
                      "A was granted the lock B holds")
        os.pwrite(fdb, b"B", 0)
        self.assertEqual(records(self.shared, "hostA"), [])
        assert_records(self, self.shared, "hostB", 1)

    def test_4_broken_record_is_not_recreated(self):
        """A's renewal stalls after it checked its record and before the
        new record is written (at the create, or at the rename) until B
        has broken the record and taken the lock over; when it resumes, A
        must not renew, recreate or reclaim anything."""
        for op in ("create", "rename"):
            with self.subTest(op=op):
                fd = self.lock_a()
                time.sleep(0.5)     # past the post-grant rewrite
                fault(self.a, "add", "op=" + op, "path=*/.vfsd-locks/img/hostA*",
                      "pause", "count=1")
                start = time.monotonic()
                fdb = self.take_b()
                print("%s: B took over at %.1f s (lease %d s)"
                      % (op, time.monotonic() - start, LEASE))
                os.pwrite(fdb, b"B", 0)
                os.fsync(fdb)
                vfsctl(self.a, "fault", "/s", "resume")
                time.sleep(2)       # two of A's renewal periods
                self.assertEqual(records(self.shared, "hostA"), [])
                assert_records(self, self.shared, "hostB", 1)
                with self.assertRaises(OSError) as cm:
                    os.pwrite(fd, b"A", 0)
                self.assertEqual(cm.exception.errno, errno.EIO)
                self.assertEqual(self.read_img(1), b"B")
                os.close(fdb)
                os.close(fd)
                vfsctl(self.a, "fault", "/s", "clear")
                harness.wait_for(lambda: not records(self.shared, "hostB"), 30,
                                 "B's record to go")

    def test_6_lapsed_lease_never_revives(self):
        """A holds byte 0 (and 10) and makes another lock call, paused at
        its record write until B took byte 0 over: neither the acquisition
        of byte 10 nor the unlock of byte 10 may renew A's lapsed lease."""
        for how in ("acquire", "unlock"):
            with self.subTest(how=how):
                fd = os.open(self.a.path("s/img"), os.O_RDWR)
                ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 0, 1)
                if how == "unlock":
                    ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 10, 1)
                os.pwrite(fd, b"A-before", 0)
                time.sleep(0.5)
                fault(self.a, "add", "op=create", "path=*/.vfsd-locks*", "pause",
                      "count=1")
                t, res = self.acquire_in_thread(fd, 10, 1, unlock=how == "unlock")
                time.sleep(0.5)
                self.assertTrue(t.is_alive(), "A's lock call did not pause")
                fdb = self.take_b(0, 1)
                os.pwrite(fdb, b"B-OWNS!!", 0)
                os.fsync(fdb)
                vfsctl(self.a, "fault", "/s", "resume")
                t.join(60)
                if how == "acquire":
                    self.assertNotEqual(res.get("rc"), 0, "A got byte 10 on a lapsed lease")
                with self.assertRaises(OSError) as cm:
                    os.pwrite(fd, b"A-LATE!!", 0)
                self.assertEqual(cm.exception.errno, errno.EIO)
                self.assertEqual(self.read_img(8), b"B-OWNS!!")
                self.next_round(fd, fdb)

    def test_7_late_record_rewrite_does_not_renew(self):
        """A holds byte 0 and cannot renew; before its validity ends it
        asks for byte 100, and that record's rename lands only after the
        validity ended.  The late record must renew nothing: A gets no
        byte 100 and its writes fail once B has byte 0.  (Lease 12 s: the
        rename lands after the old validity but within a new one.)"""
        lease = 12
        a = self.daemon("hostA7", lease)
        b = self.daemon("hostB7", lease)
        fd = os.open(a.path("s/img"), os.O_RDWR)
        self.close_later(fd)
        ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 0, 1)
        # start the clock at one of A's renewals (a new record name)
        first = records(self.shared, "hostA7")
        harness.wait_for(lambda: records(self.shared, "hostA7") not in ([], first), 10,
                         "a renewal")
        renewed = time.monotonic()
        # from now on its renewals fail at their first step
        fault(a, "add", "op=getattr,open", "path=*/.vfsd-locks/img/hostA7*", "error=EIO")
        time.sleep(max(0, renewed + lease * 7 / 12 - time.monotonic()))
        fault(a, "add", "op=rename", "path=*/.vfsd-locks/img/hostA7*",
              "delay=%d" % (lease * 1000 // 2), "count=1")
        t, res = self.acquire_in_thread(fd, 100, 1)
        fdb = os.open(b.path("s/img"), os.O_RDWR)
        self.close_later(fdb)
        deadline = time.monotonic() + 3 * lease
        while True:
            try:
                ofd(fdb, F_OFD_SETLK, fcntl.F_WRLCK, 0, 1)
                break
            except OSError:
                self.assertLess(time.monotonic(), deadline, "B never got byte 0")
                time.sleep(0.2)
        os.pwrite(fdb, b"B", 0)
        t.join(60)
        with self.assertRaises(OSError) as cm:
            os.pwrite(fd, b"A", 0)
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertNotEqual(res.get("rc"), 0, "A got byte 100 on a lapsed lease")
        self.assertEqual(self.read_img(1), b"B")

    def test_own_leftover_record_does_not_block_relock(self):
        """A release whose record removal fails (the server out of reach)
        leaves the record behind.  The same daemon taking the lock again
        (QEMU does this when a failed migration hands the image back)
        must not be refused by its own leftover; another host still is,
        until the leftover expires."""
        fd = self.lock_a()
        time.sleep(0.5)     # past the post-grant rewrite, which also unlinks
        fault(self.a, "add", "op=unlink", "path=*/.vfsd-locks/*", "error=EIO")
        ofd(fd, F_OFD_SETLK, fcntl.F_UNLCK, 0, 0)
        fault(self.a, "clear")
        left = records(self.shared, "hostA")
        self.assertEqual(len(left), 1, "the failed removal left no record: %s" % left)
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3,
                         "B was granted the lock while A's leftover is live")
        ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 0, 0)   # raises EAGAIN if refused
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3)
        # once expired, the next acquisition's scan (A's again) removes
        # it, and A's live record stays
        time.sleep(LEASE + 2)
        ofd(fd, F_OFD_SETLK, fcntl.F_UNLCK, 0, 0)
        ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 0, 0)
        self.assertNotIn(left[0], records(self.shared, "hostA"))
        # the post-grant rewrite writes the next record before it removes
        # the one before: two for a moment (longer on a loaded machine)
        harness.wait_for(lambda: len(records(self.shared, "hostA")) == 1, 5,
                         "one record of A's after the post-grant rewrite")
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3)

    def test_restart_is_no_duplicate(self):
        """A daemon killed while holding locks on two images and restarted
        with the same host id is not taken for a duplicate: once its
        predecessor's records expire it locks both again."""
        write_file(os.path.join(self.shared, "img2"), b"\0" * 4096)
        fds = []
        for name in ("img", "img2"):
            fd = os.open(self.a.path("s", name), os.O_RDWR)
            ofd(fd, F_OFD_SETLK, fcntl.F_WRLCK, 0, 0)
            fds.append(fd)
        time.sleep(1.5)
        self.a.kill(signal.SIGKILL)
        self.a.proc.wait()
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        a2 = self.daemon("hostA")
        # the predecessor's locks hold until they expire...
        self.assertEqual(try_lock(a2.path("s/img"), "ofd"), 3)
        self.assertEqual(try_lock(a2.path("s/img2"), "ofd"), 3)
        time.sleep(LEASE + 2)
        for name in ("img", "img2"):
            self.assertEqual(try_lock(a2.path("s", name), "ofd"), 0, name)
        self.assertNotIn("is used by another running vfsd instance", a2.log())

    def test_record_from_the_future_expires(self):
        """A record dated a day ahead of the server's clock (set by hand,
        or the server's clock stepped back) holds its lock, but cannot hold
        it for ever: unchanged for more than a lease since B first saw it,
        it is expired, and removed."""
        path = self.bogus_record(b"vfsd-lease 2\nhost hostZ\ntoken 0123456789abcdef\n"
                                 b"P W 0 9223372036854775807\n")
        ahead = time.time() + 86400
        os.utime(path, (ahead, ahead))
        first = time.monotonic()
        self.assertEqual(try_lock(self.b.path("s/img"), "ofd"), 3)
        took = None
        while time.monotonic() - first < 3 * LEASE:
            if try_lock(self.b.path("s/img"), "ofd") == 0:
                took = time.monotonic() - first
                break
            time.sleep(0.5)
        self.assertIsNotNone(took, "a record from the future held for ever")
        # not before a whole lease (plus the second SFTP times lack) of
        # B's own clock
        self.assertGreaterEqual(took, LEASE + 1 - 0.5)
        self.assertFalse(os.path.exists(path))


class LeaseConfig(harness.TestCase):
    def test_timeout_too_long_for_lease(self):
        """A remote mount whose timeout could outlast a third of the lease
        is refused, at start and by vfsctl mount add, saying why."""
        cfg = ("[vfsd]\nlock_lease = 30\n[mount /r]\n"
               "url = sftp://nobody@127.0.0.1:1/x?timeout=20\n")
        v = Vfsd(config_text=cfg)
        with self.assertRaises(RuntimeError) as cm:
            v.start()
        self.assertIn("timeout", str(cm.exception))
        self.assertIn("lock_lease", str(cm.exception))
        ok = Vfsd(config_text="[vfsd]\nlock_lease = 30\n[mount /l]\nurl = file://%s\n"
                  % tmpdir()).start()
        self.addCleanup(ok.stop)
        r = vfsctl(ok, "mount", "add", "/n", "nfs://127.0.0.1/x?timeout=11", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("lock_lease", r.stdout + r.stderr)


if __name__ == "__main__":
    harness.main()
