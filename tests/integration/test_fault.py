# SPDX-License-Identifier: GPL-2.0-or-later
"""Fault injection: a fault+file:// mount and `vfsctl fault` through the real
FUSE mount.  Delays, errors, skip/count, path globs, pauses released by
resume, clear, mount remove and daemon exit, and the refusals of bad
requests."""
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, fault, tmpdir  # noqa: E402
from posix_suite import read_file, write_file  # noqa: E402

VFSCTL = harness.VFSCTL


def rules(v, prefix="/f"):
    return json.loads(fault(v, prefix, "list", json_out=True).stdout)["rules"]


def rule(v, rid, prefix="/f"):
    return next(r for r in rules(v, prefix) if r["id"] == rid)


def add(v, *words, prefix="/f"):
    """Add a rule; its id."""
    return int(fault(v, prefix, "add", *words).stdout)


class Call(threading.Thread):
    """fn() on a thread of its own: its result or OSError, and when."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn = fn
        self.result = self.error = self.done_at = None

    def run(self):
        try:
            self.result = self.fn()
        except OSError as e:
            self.error = e
        self.done_at = time.monotonic()


class Fault(harness.TestCase):
    def setUp(self):
        harness.require_root(self)
        self.back = tmpdir()
        self.plain = tmpdir()
        # cache_ttl=0: every stat and open reaches the daemon
        self.v = Vfsd(mounts=[("/f", "fault+file://%s?cache_ttl=0" % self.back),
                              ("/p", "file://%s?cache_ttl=0" % self.plain)]).start()
        self.addCleanup(self.v.stop)
        # a call left paused by a failed test would hold its FUSE request,
        # and the unmount with it: clear first (cleanups run last first)
        self.addCleanup(fault, self.v, "/f", "clear", check=False)

    def wait_paused(self, rid, n=1):
        harness.wait_for(lambda: rule(self.v, rid)["paused"] >= n, 30,
                         "%d caller(s) paused by rule %d" % (n, rid))

    def open_w(self, name):
        fd = os.open(self.v.path("f", name), os.O_WRONLY | os.O_CREAT, 0o644)
        self.addCleanup(os.close, fd)
        return fd

    def test_plain_behaviour_and_display(self):
        """Without rules a fault+ mount is its backend; it says what it is."""
        write_file(self.v.path("f/a"), b"through")
        self.assertEqual(read_file(os.path.join(self.back, "a")), b"through")
        os.mkdir(self.v.path("f/d"))
        os.rename(self.v.path("f/a"), self.v.path("f/d/b"))
        self.assertEqual(sorted(os.listdir(self.v.path("f/d"))), ["b"])
        self.assertEqual(read_file(self.v.path("f/d/b")), b"through")
        m = self.v.mount_info("/f")
        self.assertTrue(m["url"].startswith("fault+file://"), m)
        self.assertEqual(m["backend"], "fault+file")
        # every read and write goes through the rules: no passthrough
        self.assertFalse(m["passthrough"])
        self.assertIn("fault injection is on", self.v.log())
        self.assertEqual(rules(self.v), [])

    def test_delay(self):
        write_file(os.path.join(self.back, "slow"), b"s" * 4096)
        write_file(os.path.join(self.back, "fast"), b"f" * 4096)
        rid = add(self.v, "op=read", "path=/slow", "delay=800", "count=1")
        with open(self.v.path("f/fast"), "rb") as f:
            t0 = time.monotonic()
            self.assertEqual(f.read(), b"f" * 4096)
            self.assertLess(time.monotonic() - t0, 0.5)
        with open(self.v.path("f/slow"), "rb") as f:
            t0 = time.monotonic()
            self.assertEqual(f.read(), b"s" * 4096)
            self.assertGreaterEqual(time.monotonic() - t0, 0.8)
        r = rule(self.v, rid)
        self.assertEqual((r["hits"], r["spent"], r["delay_ms"]), (1, True, 800))

    def test_error_count_then_works(self):
        rid = add(self.v, "op=write", "path=/w", "error=ENOSPC", "count=1")
        fd = self.open_w("w")
        with self.assertRaises(OSError) as cm:
            os.pwrite(fd, b"first", 0)
        self.assertEqual(cm.exception.errno, errno.ENOSPC)
        # spent: the next write reaches the directory
        self.assertEqual(os.pwrite(fd, b"second", 0), 6)
        self.assertEqual(read_file(os.path.join(self.back, "w")), b"second")
        self.assertEqual(rule(self.v, rid)["hits"], 1)
        # by number and in lower case too
        add(self.v, "op=write", "path=/w", "error=5", "count=1")
        add(self.v, "op=fsync", "path=/w", "error=estale", "count=1")
        with self.assertRaises(OSError) as cm:
            os.pwrite(fd, b"x", 0)
        self.assertEqual(cm.exception.errno, errno.EIO)
        with self.assertRaises(OSError) as cm:
            os.fsync(fd)
        self.assertEqual(cm.exception.errno, errno.ESTALE)
        os.fsync(fd)

    def test_skip(self):
        rid = add(self.v, "op=write", "path=/s", "skip=2", "error=EIO", "count=1")
        fd = self.open_w("s")
        self.assertEqual(os.pwrite(fd, b"1", 0), 1)
        self.assertEqual(os.pwrite(fd, b"2", 1), 1)
        with self.assertRaises(OSError) as cm:
            os.pwrite(fd, b"3", 2)
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(os.pwrite(fd, b"4", 2), 1)
        self.assertEqual(read_file(os.path.join(self.back, "s")), b"124")
        r = rule(self.v, rid)
        self.assertEqual((r["seen"], r["hits"]), (3, 1))

    def test_path_glob(self):
        """'*' crosses '/'; files keep the name they were opened with."""
        os.mkdir(self.v.path("f/d"))
        rid = add(self.v, "op=write", "path=*.img", "error=EIO")
        img, deep, txt = self.open_w("a.img"), self.open_w("d/b.img"), self.open_w("a.txt")
        for fd in (img, deep):
            with self.assertRaises(OSError) as cm:
                os.pwrite(fd, b"x", 0)
            self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(os.pwrite(txt, b"x", 0), 1)
        # renamed after open: still the open's name
        os.rename(self.v.path("f/a.txt"), self.v.path("f/c.img"))
        self.assertEqual(os.pwrite(txt, b"y", 1), 1)
        self.assertEqual(rule(self.v, rid)["hits"], 2)
        # two-name operations match on either name
        add(self.v, "op=rename", "path=/dst*", "error=EACCES")
        write_file(self.v.path("f/src"), b"")
        with self.assertRaises(OSError) as cm:
            os.rename(self.v.path("f/src"), self.v.path("f/dst1"))
        self.assertEqual(cm.exception.errno, errno.EACCES)
        os.rename(self.v.path("f/src"), self.v.path("f/other"))

    def test_pause_resume(self):
        rid = add(self.v, "op=write", "path=/p", "pause")
        fd = self.open_w("p")
        call = Call(lambda: os.pwrite(fd, b"held", 0))
        call.start()
        self.wait_paused(rid)
        time.sleep(0.3)
        self.assertTrue(call.is_alive())
        # the write has not reached the directory
        self.assertEqual(read_file(os.path.join(self.back, "p")), b"")
        resumed = time.monotonic()
        self.assertEqual(fault(self.v, "/f", "resume", rid).stdout, "resumed 1 caller\n")
        call.join(10)
        self.assertFalse(call.is_alive())
        self.assertEqual((call.result, call.error), (4, None))
        self.assertGreaterEqual(call.done_at, resumed)
        self.assertEqual(read_file(os.path.join(self.back, "p")), b"held")
        r = rule(self.v, rid)
        self.assertEqual((r["hits"], r["paused"]), (1, 0))

    def test_pause_after(self):
        """when=after: the backend did the work, the reply is held back."""
        rid = add(self.v, "op=write", "path=/late", "pause", "when=after")
        fd = self.open_w("late")
        call = Call(lambda: os.pwrite(fd, b"done", 0))
        call.start()
        self.wait_paused(rid)
        self.assertTrue(call.is_alive())
        self.assertEqual(read_file(os.path.join(self.back, "late")), b"done")
        fault(self.v, "/f", "resume")
        call.join(10)
        self.assertEqual((call.result, call.error), (4, None))

    def test_clear_resumes(self):
        write_file(os.path.join(self.back, "c"), b"data")
        rid = add(self.v, "op=open", "path=/c", "pause")
        call = Call(lambda: read_file(self.v.path("f/c")))
        call.start()
        self.wait_paused(rid)
        self.assertEqual(fault(self.v, "/f", "clear").stdout, "cleared 1 rule\n")
        call.join(10)
        self.assertEqual((call.result, call.error), (b"data", None))
        self.assertEqual(rules(self.v), [])

    def test_remove_releases(self):
        rid = add(self.v, "op=write", "path=/r", "pause")
        fd = os.open(self.v.path("f/r"), os.O_WRONLY | os.O_CREAT, 0o644)
        call = Call(lambda: os.pwrite(fd, b"r", 0))
        call.start()
        self.wait_paused(rid)
        r = subprocess.run([VFSCTL, "-m", self.v.mnt, "mount", "remove", "--force", "/f"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        call.join(10)
        self.assertFalse(call.is_alive())
        # revoked: the close's flush fails with EIO, the file is closed
        with self.assertRaises(OSError) as cm:
            os.close(fd)
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertNotIn("/f", [m["prefix"] for m in json.loads(subprocess.run(
            [VFSCTL, "-m", self.v.mnt, "--json", "mounts"], capture_output=True,
            text=True, timeout=60, check=True).stdout)["mounts"]])

    def test_exit_with_paused_caller(self):
        """A paused call does not keep vfsd from exiting."""
        rid = add(self.v, "op=getattr", "path=/z", "pause")
        call = Call(lambda: os.stat(self.v.path("f/z")))
        call.start()
        self.wait_paused(rid)
        self.v.kill(signal.SIGTERM)
        self.v.proc.wait(timeout=20)
        call.join(10)
        self.assertFalse(call.is_alive())
        self.assertIsNotNone(call.error)

    def test_bad_rules(self):
        for words, says in [
                (["op=wrte", "delay=1"], "'op=wrte': unknown operation 'wrte'"),
                (["op=write,flsh", "delay=1"], "unknown operation 'flsh'"),
                (["op=write", "colour=red"], "'colour=red': not a rule word"),
                (["op=write", "error=EWHAT"], "'error=EWHAT'"),
                (["op=write", "delay=soon"], "'delay=soon'"),
                (["op=write", "pause", "when=later"], "'when=later'"),
                (["op=write", "pause", "count=-1"], "'count=-1'"),
                (["op=write", "pause=yes"], "'pause=yes'"),
                (["op=write", "pause", "pause"], "'pause': pause given twice"),
                (["op=write"], "needs delay=MS"),
                (["path=/x", "pause"], "needs op=OP"),
                ]:
            r = fault(self.v, "/f", "add", *words, check=False)
            self.assertEqual(r.returncode, 1, words)
            self.assertIn(says, r.stderr, words)
        r = fault(self.v, "/f", "clear", "99", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no rule 99", r.stderr)
        r = fault(self.v, "/f", "resume", "one", check=False)
        self.assertIn("'one' is not a rule id", r.stderr)
        r = fault(self.v, "/f", "frobnicate", check=False)
        self.assertIn("usage: fault PREFIX", r.stderr)
        self.assertEqual(rules(self.v), [])

    def test_not_a_fault_mount(self):
        r = fault(self.v, "/p", "list", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("fault /p: not a fault+ mount", r.stderr)
        r = fault(self.v, "/nothing", "add", "op=read", "pause", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nothing is not mounted", r.stderr)

    def test_mount_add(self):
        """fault+ at run time: the inner backend's options and errors."""
        d = tmpdir()

        def mount_add(*args):
            return subprocess.run([VFSCTL, "-m", self.v.mnt, "mount", "add"] + list(args),
                                  capture_output=True, text=True, timeout=60)
        r = mount_add("/g", "fault+file://" + d, "cache_ttl=0")
        self.assertEqual(r.returncode, 0, r.stderr)
        add(self.v, "op=create", "error=EDQUOT", prefix="/g")
        with self.assertRaises(OSError) as cm:
            write_file(self.v.path("g/new"), b"")
        self.assertEqual(cm.exception.errno, errno.EDQUOT)
        r = mount_add("/h", "fault+file://" + d, "colour=red")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown option 'colour'", r.stderr)
        r = mount_add("/h", "fault+gopher://host/x")
        self.assertIn("unknown URL scheme 'fault+gopher'", r.stderr)
        r = mount_add("/h", "fault+fault+file://" + d)
        self.assertIn("unknown URL scheme", r.stderr)


if __name__ == "__main__":
    harness.main()
