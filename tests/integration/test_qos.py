# SPDX-License-Identifier: GPL-2.0-or-later
"""I/O limits (issue 17) through the real mount: each rate is measured
from the bytes or operations that went through in a timed window, never
from the daemon's own counters; the config file, `vfsctl qos`, and the
user.vfsd.qos.* attributes set the same rules and show each other's.

The local backend is used: its files go to the kernel as FUSE passthrough
when nothing limits them, so the limits are proved on the three kinds of
I/O the kernel can send (buffered, O_DIRECT, what would be passthrough).

The tests whose proof is a rate or a time (harness.measures_rates) are a
meson test of their own, integration-qos-rates, which the sanitizer run
leaves out: the code they run, the sanitizers see in the others here
(limits set every way, changed and read again by the watcher while files
are open, requests parked and given up), in test_qos_faults.py and in the
throttle's unit tests (tests/test_lib.c: bursts, iops_size)."""
import contextlib
import ctypes
import errno
import json
import mmap
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ganesha  # noqa: E402
import harness  # noqa: E402
from harness import Vfsd, tmpdir, vfsctl, VFSCTL  # noqa: E402

MiB = 1 << 20
WINDOW = 10.0   # seconds a rate is measured over (the issue's)


def aligned(size):
    """A page-aligned buffer (O_DIRECT) of size bytes."""
    m = mmap.mmap(-1, size)
    m.write(b"q" * size)
    return m


def pump(path, kind, chunk, seconds, marks=None, flags=0):
    """Read or write `path` in `chunk`-byte requests for `seconds`; returns
    the bytes moved and the time taken.  marks: a list that gets
    (time since start, bytes so far) after each request."""
    buf = aligned(chunk)
    fd = os.open(path, (os.O_RDONLY if kind == "read" else os.O_WRONLY) | flags)
    try:
        size = os.fstat(fd).st_size
        done = 0
        t0 = time.monotonic()
        while True:
            now = time.monotonic() - t0
            if now >= seconds:
                break
            if kind == "read":
                off = done % max(size - chunk, 1)
                off -= off % 4096
                n = os.preadv(fd, [buf], off)
            else:
                n = os.pwritev(fd, [buf], done % (64 * MiB))
            done += n
            if marks is not None:
                marks.append((time.monotonic() - t0, done))
        return done, time.monotonic() - t0
    finally:
        os.close(fd)


def in_thread(fn, *args, **kw):
    res = {}

    def run():
        try:
            res["value"] = fn(*args, **kw)
        except BaseException as e:    # reported by the caller
            res["error"] = e
    t = threading.Thread(target=run)
    t.start()
    return t, res


def make_file(path, size):
    with open(path, "wb") as f:
        f.truncate(size)
        f.write(b"d" * MiB)


def read(path):
    with open(path) as f:
        return f.read()


def bytes_between(marks, t0, t1):
    """Bytes moved between times t0 and t1 of a pump's marks."""
    def at(t):
        last = 0
        for when, done in marks:
            if when > t:
                break
            last = done
        return last
    return at(t1) - at(t0)


class Qos(harness.TestCase):
    def setUp(self):
        # other users reach the mount (allow_other), the kernel checks
        # their permissions (default_permissions)
        base = harness.reachable_tmpdir("vfsd-qos-")
        self.dir = os.path.join(base, "backing")
        os.mkdir(self.dir)
        os.mkdir(os.path.join(base, "mnt"))
        for d in (self.dir, os.path.join(base, "mnt")):
            os.chmod(d, 0o755)
        for d in ("cfg", "ctl", "xat", "pt", "iops", "burst", "live"):
            os.mkdir(os.path.join(self.dir, d))
            os.chmod(os.path.join(self.dir, d), 0o755)
        cfg = ("[mount /l]\nurl = file://%s\n"
               "[qos /l/cfg]\nbps_wr = %d\n" % (self.dir, 4 * MiB))
        self.v = Vfsd(config_text=cfg, args=["-o", "allow_other,default_permissions"],
                      mnt=os.path.join(base, "mnt")).start()
        self.addCleanup(self.v.stop)

    def p(self, *parts):
        return self.v.path("l", *parts)

    def assert_rate(self, what, done, took, limit):
        rate = done / took
        print("%s: %.0f per second against a limit of %d (%.3f)"
              % (what, rate, limit, rate / limit))
        self.assertGreater(rate, 0.9 * limit, what + ": far below its limit")
        self.assertLess(rate, 1.1 * limit, what + ": above its limit")

    @harness.measures_rates
    def test_limits_hold(self):
        """Four limits at once, each set another way, each measured over
        10 s: buffered writes (config), O_DIRECT reads (vfsctl),
        writes to a file that would be passthrough (xattr), 4 KiB O_DIRECT
        writes at an IOPS limit with iops_size."""
        make_file(self.p("cfg", "img"), 0)
        make_file(self.p("ctl", "img"), 256 * MiB)
        vfsctl(self.v, "qos", "set", self.p("ctl"), "bps_rd=%d" % (6 * MiB))
        make_file(self.p("pt", "img"), 4 * MiB)
        os.setxattr(self.p("pt", "img"), "user.vfsd.qos.bps", b"%d" % (3 * MiB))
        make_file(self.p("iops", "img"), 4 * MiB)
        vfsctl(self.v, "qos", "set", self.p("iops"), "iops_wr=200",
               "iops_size=4096")
        jobs = [
            ("buffered writes, config", self.p("cfg", "img"), "write", 256 << 10, 0,
             4 * MiB, 1),
            ("O_DIRECT reads, vfsctl", self.p("ctl", "img"), "read", MiB, os.O_DIRECT,
             6 * MiB, 1),
            ("passthrough-capable writes, xattr", self.p("pt", "img"), "write",
             128 << 10, 0, 3 * MiB, 1),
            ("4 KiB O_DIRECT writes, iops", self.p("iops", "img"), "write", 4096,
             os.O_DIRECT, 200, 4096),
        ]
        threads = [(what, unit, limit) + in_thread(pump, path, kind, chunk, WINDOW,
                                                   flags=flags)
                   for what, path, kind, chunk, flags, limit, unit in jobs]
        for what, unit, limit, t, res in threads:
            t.join(WINDOW + 30)
            self.assertNotIn("error", res, "%s: %r" % (what, res.get("error")))
            done, took = res["value"]
            self.assert_rate(what, done / unit, took, limit)
        # the passthrough-capable file was not given to the kernel:
        # its writes were counted by the mount
        rules = json.loads(vfsctl(self.v, "--json", "qos", "show").stdout)
        by_path = {r["path"]: r for r in rules}
        self.assertGreater(by_path["/l/pt/img"]["write_bytes"], 20 * MiB)
        self.assertGreater(by_path["/l/cfg"]["throttled"], 0)

    @harness.measures_rates
    def test_unlimited_file_is_not_slowed(self):
        """A file beside limited ones, under no rule, goes at full speed
        (here: far above the neighbours' limit)."""
        vfsctl(self.v, "qos", "set", self.p("ctl"), "bps=%d" % MiB)
        make_file(self.p("free"), 0)
        done, took = pump(self.p("free"), "write", MiB, 1.0)
        self.assertGreater(done / took, 8 * MiB)

    @harness.measures_rates
    def test_change_takes_effect_within_a_second(self):
        """A writer at 2 MiB/s; the limit raised to 8 MiB/s, then lowered
        to 1 MiB/s, by xattr while it writes: from one second after each
        change the rate is the new one."""
        path = self.p("live", "img")
        make_file(path, 0)
        os.setxattr(path, "user.vfsd.qos.bps_wr", b"%d" % (2 * MiB))
        marks = []
        t, res = in_thread(pump, path, "write", 128 << 10, 9.0, marks)
        time.sleep(3)
        os.setxattr(path, "user.vfsd.qos.bps_wr", b"%d" % (8 * MiB))
        time.sleep(3)
        os.setxattr(path, "user.vfsd.qos.bps_wr", b"%d" % MiB)
        t.join(30)
        self.assertNotIn("error", res)
        # the marks' clock starts with the pump; the changes were made at
        # about 3 s and 6 s of it
        before = bytes_between(marks, 0.5, 2.8) / 2.3
        raised = bytes_between(marks, 4.1, 5.9) / 1.8
        lowered = bytes_between(marks, 7.1, 8.9) / 1.8
        print("rates: %.1f, raised %.1f, lowered %.1f MiB/s"
              % (before / MiB, raised / MiB, lowered / MiB))
        self.assertLess(abs(before / (2 * MiB) - 1), 0.15)
        self.assertLess(abs(raised / (8 * MiB) - 1), 0.15)
        self.assertLess(abs(lowered / MiB - 1), 0.25)

    @harness.measures_rates
    def test_burst(self):
        """bps_wr 2 MiB/s with bps_wr_max 8 MiB/s for 2 s: from idle, the
        first 2 s move at most 16 MiB and at least 12; the next 3 s about
        2 MiB/s."""
        path = self.p("burst", "img")
        make_file(path, 0)
        vfsctl(self.v, "qos", "set", self.p("burst"), "bps_wr=%d" % (2 * MiB),
               "bps_wr_max=%d" % (8 * MiB), "bps_wr_max_length=2")
        marks = []
        pump(path, "write", 128 << 10, 5.0, marks)
        first = bytes_between(marks, 0, 2.0)
        after = bytes_between(marks, 2.5, 5.0) / 2.5
        print("burst: %.1f MiB in 2 s, then %.2f MiB/s" % (first / MiB, after / MiB))
        # 16 MiB, plus the burst bucket's tenth of a second and one request
        self.assertLessEqual(first, 16 * MiB + 0.8 * MiB + (128 << 10))
        self.assertGreater(first, 12 * MiB)
        self.assertLess(abs(after / (2 * MiB) - 1), 0.2)

    def test_ways_agree(self):
        """What the config, vfsctl and the attributes set, each of them
        shows; clearing removes the attribute; the mount's qos.NAME
        option is its prefix's rule."""
        img = self.p("xat", "img")
        make_file(img, 0)
        # vfsctl on a file: stored as its attribute, on disk too
        vfsctl(self.v, "qos", "set", img, "iops=77", "bps_rd=1000000")
        self.assertEqual(os.getxattr(img, "user.vfsd.qos.iops"), b"77")
        self.assertEqual(os.getxattr(os.path.join(self.dir, "xat", "img"),
                                     "user.vfsd.qos.bps_rd"), b"1000000")
        self.assertIn("user.vfsd.qos.iops", os.listxattr(img))
        # an attribute: shown by vfsctl
        os.setxattr(img, "user.vfsd.qos.iops_wr", b"33")
        shown = json.loads(vfsctl(self.v, "--json", "qos", "show", img).stdout)
        self.assertEqual(shown[0]["limits"], {"bps_rd": 1000000, "iops": 77,
                                              "iops_wr": 33})
        # the config's [qos] rule: shown by vfsctl and as an attribute of
        # the directory
        self.assertEqual(os.getxattr(self.p("cfg"), "user.vfsd.qos.bps_wr"),
                         b"%d" % (4 * MiB))
        text = vfsctl(self.v, "qos", "show", self.p("cfg")).stdout
        self.assertIn("bps_wr=%d" % (4 * MiB), text)
        self.assertIn("(config)", text)
        # one setting removed, then all
        os.removexattr(img, "user.vfsd.qos.iops")
        with self.assertRaises(OSError) as cm:
            os.getxattr(img, "user.vfsd.qos.iops")
        self.assertEqual(cm.exception.errno, errno.ENODATA)
        vfsctl(self.v, "qos", "clear", img)
        self.assertEqual([n for n in os.listxattr(img) if "qos" in n], [])
        self.assertEqual([n for n in os.listxattr(os.path.join(self.dir, "xat", "img"))
                          if "qos" in n], [])
        r = vfsctl(self.v, "qos", "clear", img, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("has no limits", r.stderr)
        # an attribute written beneath (another host's vfsd) applies at
        # the next open
        os.setxattr(os.path.join(self.dir, "xat", "img"), "user.vfsd.qos.bps_wr",
                    b"%d" % MiB)
        with open(img, "r+b") as f:
            f.write(b"x")
        shown = json.loads(vfsctl(self.v, "--json", "qos", "show", img).stdout)
        self.assertEqual(shown[0]["limits"], {"bps_wr": MiB})
        self.assertEqual(shown[0]["origin"], "xattr")
        # a mount's own limits
        other = tmpdir()
        vfsctl(self.v, "mount", "add", "/m", "file://" + other,
               "qos.iops_rd=500", "qos.bps=%d" % (50 * MiB))
        shown = json.loads(vfsctl(self.v, "--json", "qos", "show",
                                  self.v.path("m")).stdout)
        self.assertEqual(shown[0]["path"], "/m")
        self.assertEqual(shown[0]["limits"], {"bps": 50 * MiB, "iops_rd": 500})
        vfsctl(self.v, "mount", "remove", "/m")
        self.assertNotIn('"/m"', vfsctl(self.v, "--json", "qos", "show").stdout)
        # fair sharing: a mount's switch, a file's weight
        vfsctl(self.v, "mount", "add", "/m", "file://" + other, "qos.fair=0")
        vfsctl(self.v, "mount", "remove", "/m")
        r = vfsctl(self.v, "mount", "add", "/m", "file://" + other, "qos.fair=2",
                   check=False)
        self.assertIn("qos.fair = '2': expected 1", r.stderr)
        os.setxattr(img, "user.vfsd.qos.weight", b"300")
        shown = json.loads(vfsctl(self.v, "--json", "qos", "show", img).stdout)
        self.assertEqual(shown[0]["limits"], {"bps_wr": MiB, "weight": 300})
        r = vfsctl(self.v, "qos", "set", img, "weight=20000", check=False)
        self.assertIn("weight = 20000: at most 10000", r.stderr)

    def test_visibility(self):
        """files, top and /.vfsd show a limited writer: its rate near the
        limit, time held back, the rule's own counters."""
        path = self.p("cfg", "img")       # bps_wr 4 MiB/s from the config
        make_file(path, 0)
        t, res = in_thread(pump, path, "write", 256 << 10, 4.0)
        time.sleep(1)
        r = vfsctl(self.v, "top", "-n", "2", "-d", "1", self.p("cfg"))
        rows = [line.split() for line in r.stdout.splitlines() if "/l/cfg/img" in line]
        self.assertEqual(len(rows), 2, r.stdout)
        rate = float(rows[-1][2].rstrip("Mi"))
        self.assertGreater(rate, 2.5, r.stdout)
        self.assertLess(rate, 6.0, r.stdout)
        files = json.loads(vfsctl(self.v, "--json", "files", self.p("cfg")).stdout)
        self.assertEqual([f["path"] for f in files], ["/l/cfg/img"])
        self.assertTrue(files[0]["limited"])
        self.assertGreater(files[0]["held_ms"], 100)
        self.assertGreater(files[0]["write_bytes"], 4 * MiB)
        # an unlimited open file is listed too, under another path
        with open(self.p("free"), "wb") as f:
            f.write(b"x")
            f.flush()
            listed = json.loads(read(self.v.path(".vfsd", "files.json")))
            self.assertIn("/l/free", [e["path"] for e in listed])
        rules = json.loads(read(self.v.path(".vfsd", "qos.json")))
        cfg = [r for r in rules if r["path"] == "/l/cfg"][0]
        self.assertEqual(cfg["open_files"], 1)
        self.assertGreater(cfg["throttled_ms"], 100)
        t.join(30)
        self.assertNotIn("error", res)

    def test_hostile_names_in_reports(self):
        """A file's name cannot write a line of its own, or send the
        terminal an escape sequence, through `vfsctl files`, `qos show` or
        `top`; and the open files, and the limited ones, are listed to root
        only: another user cannot learn the names in a directory it may
        not read."""
        os.mkdir(os.path.join(self.dir, "ctl", "private"))
        os.chmod(os.path.join(self.dir, "ctl", "private"), 0o700)
        name = "e\x1b]0;x\x07\u009b2J\x7f\n  read 999 B in 1 ops"
        path = self.p("ctl", "private", name)
        make_file(path, 0)
        os.setxattr(path, "user.vfsd.qos.bps", b"100000000")
        with open(path, "rb"):
            out = vfsctl(self.v, "files").stdout + \
                vfsctl(self.v, "qos", "show").stdout + \
                vfsctl(self.v, "top", "-n", "1", "-d", "0.1").stdout
            self.assertIn("private/e", out)
            for bad in ("\x1b", "\x07", "\x9b", "\x7f", "\n  read 999"):
                self.assertNotIn(bad, out)
            listed = json.loads(read(self.v.path(".vfsd", "files.json")))
            self.assertIn("/l/ctl/private/" + name, [e["path"] for e in listed])
            user = harness.make_user("rep")
            for f in ("files", "files.json", "qos", "qos.json"):
                self.assertEqual(harness.try_as(user, read, self.v.path(".vfsd", f)),
                                 "EACCES", f)
            self.assertIn("version", harness.try_as(user, read,
                                                    self.v.path(".vfsd", "status")))

    def test_top_with_many_files(self):
        """`vfsctl top` over thousands of open files: a row takes what its
        name takes, not a page each (nor a walk over the others)."""
        if not os.path.exists("/usr/bin/time"):
            self.skipTest("no /usr/bin/time to measure with")
        many = os.path.join(self.dir, "ctl", "many")
        os.mkdir(many)
        for i in range(5000):
            open(os.path.join(many, "f%d" % i), "wb").close()
        fds = [os.open(self.p("ctl", "many", "f%d" % i), os.O_RDONLY)
               for i in range(5000)]
        try:
            with open(self.p("ctl", "many", "f7"), "rb") as f:
                f.read(1)
            # its peak memory, as time(1) measures it, beside what the
            # same top over one file takes (a sanitizer's build has a
            # larger base of its own)
            t0 = time.monotonic()
            r = subprocess.run(["/usr/bin/time", "-f", "%M", VFSCTL, "-m", self.v.mnt,
                                "top", "-n", "1", "-d", "0.1"],
                               capture_output=True, text=True, timeout=120)
            took = time.monotonic() - t0
            one = subprocess.run(["/usr/bin/time", "-f", "%M", VFSCTL, "-m",
                                  self.v.mnt, "top", "-n", "1", "-d", "0.1",
                                  self.p("ctl", "many", "f7")],
                                 capture_output=True, text=True, timeout=120)
        finally:
            for fd in fds:
                os.close(fd)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len([line for line in r.stdout.splitlines()
                              if "/l/ctl/many/f" in line]), 30)
        rss = int(r.stderr.split()[-1])
        base = int(one.stderr.split()[-1])
        print("top over 5000 files: %.2f s, %d KiB (one file: %d KiB)"
              % (took, rss, base))
        # 5000 rows: a page each would be 20 MiB more (40 under ASan)
        self.assertLess(rss - base, 16 << 10)

    def test_bad_settings_are_refused(self):
        """Bad values and sets are refused with a message naming them, by
        every way in; only root changes a limit."""
        img = self.p("xat", "img")
        make_file(img, 0)
        for value in (b"-1", b"1.5", b"10M", b"", b"99999999999999999999"):
            with self.assertRaises(OSError) as cm:
                os.setxattr(img, "user.vfsd.qos.bps", value)
            self.assertEqual(cm.exception.errno, errno.EINVAL, value)
        with self.assertRaises(OSError) as cm:
            os.setxattr(img, "user.vfsd.qos.bps_max", b"100")
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        r = vfsctl(self.v, "qos", "set", img, "bps=100", "bps_max=50", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("bps_max = 50 is below bps = 100", r.stderr)
        r = vfsctl(self.v, "qos", "set", img, "speed=100", check=False)
        self.assertIn("unknown setting 'speed'", r.stderr)
        r = vfsctl(self.v, "mount", "add", "/m", "file://" + self.dir,
                   "qos.bogus=1", check=False)
        self.assertIn("unknown QoS option 'qos.bogus'", r.stderr)
        self.assertFalse(os.path.exists(self.v.path("m")))
        # a user who owns the file may not lift its limit
        user = harness.make_user("qos")
        os.chown(os.path.join(self.dir, "xat", "img"), user.uid, user.gid)
        os.setxattr(img, "user.vfsd.qos.bps", b"1000")
        self.assertEqual(harness.try_as(user, os.setxattr, img, "user.vfsd.qos.bps",
                                        b"9999999"), "EPERM")
        self.assertEqual(harness.try_as(user, os.removexattr, img,
                                        "user.vfsd.qos.bps"), "EPERM")
        self.assertEqual(os.getxattr(img, "user.vfsd.qos.bps"), b"1000")
        # but reads it, and sets attributes of its own
        self.assertEqual(harness.try_as(user, os.getxattr, img, "user.vfsd.qos.bps"),
                         b"1000")
        self.assertIsNone(harness.try_as(user, os.setxattr, img, "user.note", b"x"))

    def test_config_errors(self):
        """A bad [qos] section stops the daemon at start with its line."""
        for text, msg in (
                ("[qos /l/a]\nspeed = 1\n", "vfsd.conf:4: unknown key 'speed' in [qos /l/a]"),
                ("[qos /l/a]\nbps = ten\n", "vfsd.conf:4: bps = 'ten'"),
                ("[qos /l/a]\nbps = 10\nbps_max = 5\n", "bps_max = 5 is below bps = 10"),
                ("[qos l/a]\nbps = 1\n", "the path must be absolute"),
        ):
            cfg = "[mount /l]\nurl = file://%s\n%s" % (self.dir, text)
            path = os.path.join(tmpdir(), "vfsd.conf")
            with open(path, "w") as f:
                f.write(cfg)
            os.chmod(path, 0o600)
            r = subprocess.run([harness.VFSD, "-c", path, "-f", tmpdir()],
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, text)
            self.assertIn(msg, r.stderr)


class AcrossHostsBase:
    """Two daemons ("hosts") on one NFS export or SFTP directory, whose
    backend keeps no extended attributes: a limit set on an image through
    one is stored beside it on the storage and applies on the other; the
    store follows renames and removals made through vfsd and hides its
    files."""

    def vfsd_env(self):
        return None

    def start_host(self, name):
        cfg = "[mount /s]\nurl = %s\n" % self.backend_url()
        v = Vfsd(config_text=cfg, args=["--host-id", name], env=self.vfsd_env()).start()
        self.addCleanup(v.stop)
        return v

    def test_limit_follows_the_image(self):
        a, b = self.start_host("qa"), self.start_host("qb")
        d = "vm%d" % os.getpid()
        os.mkdir(a.path("s", d))
        img = a.path("s", d, "disk.img")
        make_file(img, MiB)
        os.setxattr(img, "user.vfsd.qos.bps", b"%d" % (2 * MiB))
        vfsctl(a, "qos", "set", img, "iops_wr=100")
        # the other host reads it, and applies it at its open
        img_b = b.path("s", d, "disk.img")
        self.assertEqual(os.getxattr(img_b, "user.vfsd.qos.bps"), b"%d" % (2 * MiB))
        self.assertEqual(sorted(n for n in os.listxattr(img_b) if "qos" in n),
                         ["user.vfsd.qos.bps", "user.vfsd.qos.iops_wr"])
        with open(img_b, "rb") as f:
            f.read(1)
        shown = json.loads(vfsctl(b, "--json", "qos", "show", img_b).stdout)
        self.assertEqual(shown[0]["limits"], {"bps": 2 * MiB, "iops_wr": 100})
        self.assertEqual(shown[0]["origin"], "xattr")
        # rate on the other host: 2 MiB/s over 3 s
        done, took = pump(img_b, "read", 256 << 10, 3.0, flags=os.O_DIRECT)
        self.assertLess(done / took, 2.4 * MiB)
        # the mount shares its backend fairly, and says so
        st = json.loads(vfsctl(b, "--json", "stats", "/s").stdout)["mounts"][0]
        self.assertTrue(st["fair"]["on"])
        self.assertEqual((st["fair"]["capacity_requests"], st["fair"]["capacity_bytes"]),
                         self.capacity)
        # hidden, and refused
        self.assertNotIn(".vfsd-qos", os.listdir(a.path("s", d)))
        with self.assertRaises(OSError) as cm:
            os.stat(a.path("s", d, ".vfsd-qos"))
        self.assertEqual(cm.exception.errno, errno.EPERM)
        # a rename through vfsd takes the limit along, an unlink removes it
        os.rename(img, a.path("s", d, "moved.img"))
        self.assertEqual(os.getxattr(b.path("s", d, "moved.img"), "user.vfsd.qos.bps"),
                         b"%d" % (2 * MiB))
        make_file(img, 0)
        self.assertEqual([n for n in os.listxattr(img) if "qos" in n], [])
        os.unlink(a.path("s", d, "moved.img"))
        make_file(a.path("s", d, "moved.img"), 0)
        self.assertEqual([n for n in os.listxattr(b.path("s", d, "moved.img"))
                          if "qos" in n], [])
        # removing the last one leaves nothing that keeps rmdir from going
        os.setxattr(img, "user.vfsd.qos.bps", b"1000")
        os.removexattr(img, "user.vfsd.qos.bps")
        os.setxattr(img, "user.vfsd.qos.iops", b"1000")
        os.unlink(img)
        os.unlink(a.path("s", d, "moved.img"))
        os.rmdir(a.path("s", d))
        self.assertFalse(os.path.exists(b.path("s", d)))


    def test_hard_link_keeps_the_limits(self):
        """A hard link made through vfsd is the same file: it has the
        limits stored with the file (a copy: each name keeps its own from
        then on), on both hosts, and a link of a file without any leaves
        none at the new name, even where a stale one was left."""
        a, b = self.start_host("qa"), self.start_host("qb")
        d = "ln%d" % os.getpid()
        os.mkdir(a.path("s", d))
        img = a.path("s", d, "disk.img")
        make_file(img, 0)
        os.setxattr(img, "user.vfsd.qos.bps_wr", b"123456")
        os.link(img, a.path("s", d, "other.img"))
        self.assertEqual(os.getxattr(b.path("s", d, "other.img"), "user.vfsd.qos.bps_wr"),
                         b"123456")
        with open(b.path("s", d, "other.img"), "rb") as f:
            f.read(1)
        shown = json.loads(vfsctl(b, "--json", "qos", "show",
                                  b.path("s", d, "other.img")).stdout)
        self.assertEqual(shown[0]["limits"], {"bps_wr": 123456})
        # a name whose stored limits stayed behind (its file removed
        # beside vfsd) gets none from a link of an unlimited file
        os.unlink(a.path("s", d, "other.img"))
        make_file(a.path("s", d, "free.img"), 0)
        os.setxattr(img, "user.vfsd.qos.bps_wr", b"654321")
        os.link(img, a.path("s", d, "third.img"))
        os.rename(a.path("s", d, "free.img"), a.path("s", d, "fourth.img"))
        self.storage_unlink(d, "third.img")
        os.link(a.path("s", d, "fourth.img"), a.path("s", d, "third.img"))
        self.assertEqual([n for n in os.listxattr(b.path("s", d, "third.img"))
                          if "qos" in n], [])

    @harness.measures_rates
    def test_change_on_other_host_applies_to_open_file(self):
        """A limit set on an image through one host applies, within a
        couple of seconds, to the image held open and in use on the other
        (a VM running on and on), and its removal too: the other host's
        watcher reads the stored limits of its open files again once a
        second."""
        a, b = self.start_host("qa"), self.start_host("qb")
        d = "open%d" % os.getpid()
        os.mkdir(a.path("s", d))
        img = a.path("s", d, "disk.img")
        make_file(img, 4 * MiB)
        marks = []
        t, res = in_thread(pump, b.path("s", d, "disk.img"), "read", 256 << 10, 9.0,
                           marks=marks, flags=os.O_DIRECT)
        time.sleep(1.5)
        os.setxattr(img, "user.vfsd.qos.bps", b"%d" % MiB)
        time.sleep(4.5)
        os.removexattr(img, "user.vfsd.qos.bps")
        t.join(30)
        self.assertNotIn("error", res, res)
        before = bytes_between(marks, 0.2, 1.5) / 1.3
        held = bytes_between(marks, 4.0, 6.0) / 2.0
        after = bytes_between(marks, 8.5, 9.0) / 0.5
        print("\nopen on B: %.1f MiB/s, limited on A to 1 MiB/s: %.2f, removed: %.1f"
              % (before / MiB, held / MiB, after / MiB))
        self.assertGreater(before, 4 * MiB)
        self.assertLess(held, 1.2 * MiB)
        self.assertGreater(after, 4 * MiB)

    def test_bad_stored_limits_warned_about_not_every_second(self):
        """Stored limits this host cannot take (a value no plain decimal,
        a burst without its average: written beside vfsd, by another
        version, or left half-changed by a store that failed midway) are
        warned about, but the watcher reads them again every second of the
        weeks the image stays open: a warning a second, for each such file,
        for ever.  Now at most one every ten seconds."""
        b = self.start_host("qb")
        d = "bad%d" % os.getpid()
        os.mkdir(b.path("s", d))
        for name, line in (("digits.img", "user.vfsd.qos.bps=12abc"),
                           ("burst.img", "user.vfsd.qos.bps_max=1000")):
            with open(b.path("s", d, name), "wb") as f:
                f.write(b"x")
            side = self.storage_path(d, ".vfsd-qos")
            os.makedirs(side, exist_ok=True)
            with open(os.path.join(side, name), "w") as f:
                f.write(line + "\n")
        fds = [os.open(b.path("s", d, n), os.O_RDONLY)
               for n in ("digits.img", "burst.img")]
        try:
            time.sleep(6)
        finally:
            for fd in fds:
                os.close(fd)
        for name in ("digits.img", "burst.img"):
            said = [ln for ln in b.log().splitlines()
                    if "warning" in ln and name in ln]
            self.assertGreaterEqual(len(said), 1, b.log())
            self.assertLessEqual(len(said), 2, "\n".join(said))

    def test_stored_limits_keep_to_their_file(self):
        """A file's stored limits are its own: a name holding a line or a
        value sets no other attribute; a file named like another's
        temporary sidecar keeps its limits when the other's change; a name
        as long as allowed takes limits; a rename into a directory just
        seen without any brings them to the next open at once."""
        a, b = self.start_host("qa"), self.start_host("qb")
        d = "own%d" % os.getpid()
        os.mkdir(a.path("s", d))
        os.mkdir(a.path("s", d, "sub"))
        img = a.path("s", d, "disk.img")
        make_file(img, 0)
        for name in ("user.vfsd.qos.x\nuser.vfsd.qos.weight", "user.vfsd.qos.weight=1"):
            with self.assertRaises(OSError) as cm:
                os.setxattr(img, name, b"10000")
            self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertEqual([n for n in os.listxattr(img) if "qos" in n], [])
        # the other host reads what is stored (it has no rule of its own)
        make_file(img + ".tmp~~", 0)
        os.setxattr(img + ".tmp~~", "user.vfsd.qos.bps", b"1000000")
        os.setxattr(img, "user.vfsd.qos.bps", b"2000000")
        self.assertEqual(os.getxattr(b.path("s", d, "disk.img.tmp~~"), "user.vfsd.qos.bps"),
                         b"1000000")
        self.assertEqual(os.getxattr(b.path("s", d, "disk.img"), "user.vfsd.qos.bps"),
                         b"2000000")
        long = a.path("s", d, "L" * 250)
        make_file(long, 0)
        os.setxattr(long, "user.vfsd.qos.bps", b"3000000")
        self.assertEqual(os.getxattr(b.path("s", d, "L" * 250), "user.vfsd.qos.bps"),
                         b"3000000")
        # sub is seen without stored limits, then the image moves in
        make_file(a.path("s", d, "sub", "other"), 0)
        self.assertEqual([n for n in os.listxattr(a.path("s", d, "sub", "other"))
                          if "qos" in n], [])
        moved = a.path("s", d, "sub", "disk.img")
        os.rename(img, moved)
        with open(moved, "rb") as f:
            f.read(1)
            shown = json.loads(vfsctl(a, "--json", "qos", "show", moved).stdout)
        self.assertEqual([r["limits"] for r in shown], [{"bps": 2000000}])
        # a directory's own attributes go with it
        os.mkdir(a.path("s", d, "x"))
        os.setxattr(a.path("s", d, "x"), "user.vfsd.qos.note", b"1")
        os.rmdir(a.path("s", d, "x"))
        make_file(a.path("s", d, "x"), 0)
        self.assertEqual([n for n in os.listxattr(a.path("s", d, "x")) if "qos" in n], [])
        for name in (moved, img + ".tmp~~", long, a.path("s", d, "sub", "other"),
                     a.path("s", d, "x")):
            os.unlink(name)
        os.rmdir(a.path("s", d, "sub"))
        os.rmdir(a.path("s", d))


    def test_other_hosts_change_is_read(self):
        """A host that opened a limited image (as a migration's source
        did) reads what another host changed since: the attributes say
        what is stored with the image, not what this host read at its
        open, closed or still open; a removal elsewhere is read as one."""
        a, b = self.start_host("qa"), self.start_host("qb")
        d = "chg%d" % os.getpid()
        os.mkdir(a.path("s", d))
        img, img_b = a.path("s", d, "disk.img"), b.path("s", d, "disk.img")
        make_file(img, 0)
        os.setxattr(img, "user.vfsd.qos.bps_wr", b"1000000")
        fd = os.open(img, os.O_RDWR)
        try:
            os.setxattr(img_b, "user.vfsd.qos.bps_wr", b"2000000")
            self.assertEqual(os.getxattr(img, "user.vfsd.qos.bps_wr"), b"2000000")
        finally:
            os.close(fd)
        os.setxattr(img_b, "user.vfsd.qos.bps_wr", b"3000000")
        os.setxattr(img_b, "user.vfsd.qos.iops", b"500")
        self.assertEqual(os.getxattr(img, "user.vfsd.qos.bps_wr"), b"3000000")
        self.assertEqual(sorted(n for n in os.listxattr(img) if "qos" in n),
                         ["user.vfsd.qos.bps_wr", "user.vfsd.qos.iops"])
        os.setxattr(img_b, "user.vfsd.qos.iops", b"600")
        shown = json.loads(vfsctl(a, "--json", "qos", "show", img).stdout)
        self.assertEqual(shown[0]["limits"], {"bps_wr": 3000000, "iops": 600})
        vfsctl(b, "qos", "clear", img_b)
        self.assertEqual([n for n in os.listxattr(img) if "qos" in n], [])
        with self.assertRaises(OSError) as cm:
            os.getxattr(img, "user.vfsd.qos.bps_wr")
        self.assertEqual(cm.exception.errno, errno.ENODATA)
        os.unlink(img)
        os.rmdir(a.path("s", d))

    def test_changes_at_once_are_all_stored(self):
        """`vfsctl qos set` and a setxattr on one file at the same time on
        one host (the kernel's lock of the file orders only the latter):
        what is stored holds every change of both."""
        a, b = self.start_host("qa"), self.start_host("qb")
        d = "race%d" % os.getpid()
        os.mkdir(a.path("s", d))
        img = a.path("s", d, "disk.img")
        make_file(img, 0)
        stop, noted = threading.Event(), []

        def notes():
            # at most 100 (a sidecar holds 4 KiB: a slow build's vfsctl
            # would let an unbounded loop fill it)
            while not stop.is_set() and len(noted) < 100:
                os.setxattr(img, "user.vfsd.qos.n%d" % len(noted), b"1")
                noted.append("user.vfsd.qos.n%d" % len(noted))
                time.sleep(0.002)
        t, res = in_thread(notes)
        try:
            for i in range(1, 31):
                vfsctl(a, "qos", "set", img, "iops=%d" % (1000 + i))
        finally:
            stop.set()
            t.join(60)
        self.assertNotIn("error", res)
        img_b = b.path("s", d, "disk.img")
        self.assertEqual(sorted(n for n in os.listxattr(img_b) if "qos" in n),
                         sorted(noted + ["user.vfsd.qos.iops"]))
        self.assertEqual(os.getxattr(img_b, "user.vfsd.qos.iops"), b"1030")

    def test_names_gone_in_a_directory_seen_without_limits(self):
        """An unlink or rename in a directory just seen without stored
        limits asks the server nothing more of them for a second; limits
        stored there since still go with their file: this host's at once,
        another host's once that second has passed, and those of a
        directory renamed onto the path seen."""
        a, b = self.start_host("qa"), self.start_host("qb")
        qos_names = lambda p: sorted(n for n in os.listxattr(p) if "qos" in n)
        base = "seen%d" % os.getpid()
        os.mkdir(a.path("s", base))
        for d in ("own", "other"):
            os.mkdir(a.path("s", base, d))
            for n in ("x", "y", "z"):
                make_file(a.path("s", base, d, n), 0)
            # seen without any
            os.unlink(a.path("s", base, d, "x"))
        # this host's own limits, stored right after the unlink saw none
        own = lambda *n: a.path("s", base, "own", *n)
        os.setxattr(own("y"), "user.vfsd.qos.bps", b"1000000")
        os.setxattr(own("z"), "user.vfsd.qos.iops", b"100")
        os.unlink(own("y"))
        os.rename(own("z"), own("w"))
        make_file(own("y"), 0)
        make_file(own("z"), 0)
        self.assertEqual(qos_names(b.path("s", base, "own", "y")), [])
        self.assertEqual(qos_names(b.path("s", base, "own", "z")), [])
        self.assertEqual(os.getxattr(b.path("s", base, "own", "w"), "user.vfsd.qos.iops"),
                         b"100")
        # another host's, stored after the note; used here after it aged
        other_b = lambda *n: b.path("s", base, "other", *n)
        other_a = lambda *n: a.path("s", base, "other", *n)
        os.setxattr(other_b("y"), "user.vfsd.qos.bps", b"2000000")
        os.setxattr(other_b("z"), "user.vfsd.qos.iops", b"200")
        time.sleep(1.3)
        os.unlink(other_a("y"))
        os.rename(other_a("z"), other_a("w"))
        make_file(other_a("y"), 0)
        make_file(other_a("z"), 0)
        self.assertEqual(qos_names(other_b("y")), [])
        self.assertEqual(qos_names(other_b("z")), [])
        self.assertEqual(os.getxattr(other_b("w"), "user.vfsd.qos.iops"), b"200")
        self.assertEqual(os.getxattr(other_a("w"), "user.vfsd.qos.iops"), b"200")
        # a directory renamed onto a path just seen without any
        new = lambda *n: a.path("s", base, "new", *n)
        os.mkdir(new())
        make_file(new("img"), 0)
        make_file(new("img2"), 0)
        os.setxattr(new("img"), "user.vfsd.qos.bps", b"3000000")
        os.setxattr(new("img2"), "user.vfsd.qos.bps", b"4000000")
        os.mkdir(a.path("s", base, "old"))
        make_file(a.path("s", base, "old", "x"), 0)
        os.unlink(a.path("s", base, "old", "x"))
        os.rmdir(a.path("s", base, "old"))
        os.rename(new(), a.path("s", base, "old"))
        old = lambda *n: a.path("s", base, "old", *n)
        os.unlink(old("img"))
        os.rename(old("img2"), old("img3"))
        make_file(old("img"), 0)
        make_file(old("img2"), 0)
        self.assertEqual(qos_names(b.path("s", base, "old", "img")), [])
        self.assertEqual(qos_names(b.path("s", base, "old", "img2")), [])
        self.assertEqual(os.getxattr(b.path("s", base, "old", "img3"), "user.vfsd.qos.bps"),
                         b"4000000")
        for d, names in (("own", "yzw"), ("other", "yzw"), ("old", ("img", "img2", "img3"))):
            for n in names:
                os.unlink(a.path("s", base, d, n))
            os.rmdir(a.path("s", base, d))
        os.rmdir(a.path("s", base))

class Nfs3AcrossHosts(AcrossHostsBase, ganesha.PerClass, harness.TestCase):
    capacity = (4, 1 << 20)    # 4 connections (one kept free), 1 MiB of data

    def backend_url(self):
        return self.ganesha.url(version=3, cache_ttl=0)

    def storage_unlink(self, *names):
        os.unlink(os.path.join(self.ganesha.export, *names))

    def storage_path(self, *names):
        return os.path.join(self.ganesha.export, *names)


class NfsWriteBehindShare(ganesha.PerClass, harness.TestCase):
    """An NFS mount's write-behind sender pipelines its window while it is
    alone, and keeps to one share (1 MiB of WRITEs, one at least) while
    other callers use the mount: a page-cache writer's 16 MiB of queued
    WRITEs would otherwise sit in the server's queue ahead of a reader's
    READ (backends/nfs/wb.c).  Seen through `vfsctl stats`, with the data
    read back."""

    def write_buffered(self, path, mib, seed):
        data = [bytes([(seed + i) % 251]) * MiB for i in range(mib)]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for chunk in data:
                os.write(fd, chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        with open(path, "rb") as f:
            for i, chunk in enumerate(data):
                self.assertEqual(f.read(MiB), chunk, "MiB %d of %s" % (i, path))

    def stats(self, v):
        return json.loads(vfsctl(v, "--json", "stats", "/s").stdout)["mounts"][0]["fair"]

    def beside_reader(self, v, d, name, mib, seed):
        """write_buffered() of `name` while a 4 KiB O_DIRECT reader keeps a
        call in progress nearly all the time; the reader's count of reads."""
        make_file(v.path("s", d, "reader.img"), 4 * MiB)
        stop = threading.Event()

        def reader():
            buf = aligned(4096)
            fd = os.open(v.path("s", d, "reader.img"), os.O_RDONLY | os.O_DIRECT)
            n = 0
            try:
                while not stop.is_set():
                    os.preadv(fd, [buf], (n * 4096) % (4 * MiB))
                    n += 1
            finally:
                os.close(fd)
            return n
        t, res = in_thread(reader)
        try:
            time.sleep(0.2)
            self.write_buffered(v.path("s", d, name), mib, seed)
        finally:
            stop.set()
            t.join()
        self.assertNotIn("error", res)
        self.assertGreater(res["value"], 0)
        return res["value"]

    def mount(self, ganesha, version, **params):
        """vfsd on ganesha's export (URL parameters `params`), a fresh
        directory in it, and the mount's wsize."""
        v = Vfsd(config_text="[mount /s]\nurl = %s\n" % ganesha.url(version=version, **params)).start()
        self.addCleanup(v.stop)
        m = re.search(r"wsize (\d+)", v.log())
        self.assertTrue(m, v.log())
        d = "wbs%d-%s" % (os.getpid(), self._testMethodName)
        os.mkdir(v.path("s", d))
        return v, d, int(m.group(1))

    def test_write_behind_keeps_to_a_share_beside_a_reader(self):
        v, d, wsize = self.mount(self.ganesha, 3)
        share = max(1, MiB // wsize)
        # alone: the page cache's writeback fills the window
        self.write_buffered(v.path("s", d, "alone.img"), 48, 1)
        st = self.stats(v)
        self.assertGreater(st["behind_max"], share, st)
        # beside a reader that keeps a call in progress nearly all the time
        reads = self.beside_reader(v, d, "beside.img", 48, 2)
        st = self.stats(v)
        self.assertGreaterEqual(st["behind_shared_max"], 1,
                                "the write-behind never ran beside the reader: %s" % st)
        self.assertLessEqual(st["behind_shared_max_bytes"], MiB, st)
        print("\nwrite-behind WRITEs in flight: at most %d alone, %d beside a reader "
              "(%d reads)" % (st["behind_max"], st["behind_shared_max"], reads))
        shown = vfsctl(v, "stats", "/s").stdout
        self.assertIn("beside active callers", shown)

    def test_small_writes_keep_to_the_bound_beside_a_reader(self):
        """Over NFSv4 with 1 KiB WRITEs a 1 MiB share is 1024 of them,
        more than the sender keeps in flight even alone (256: libnfs's
        cost per outstanding request): beside a reader it keeps to that
        bound too, and counts what it sends as shared.  Before, it kept
        1024 in flight beside the reader and counted them as alone (and a
        share of exactly 256, 4 KiB WRITEs, as alone too)."""
        from ganesha import Ganesha
        g = Ganesha(max_write=1024).start()
        self.addCleanup(g.stop)
        v, d, wsize = self.mount(g, 4)
        self.assertEqual(wsize, 1024, v.log())
        self.beside_reader(v, d, "beside.img", 16, 3)
        st = self.stats(v)
        self.assertGreaterEqual(st["behind_shared_max"], 1,
                                "the write-behind never ran beside the reader: %s" % st)
        self.assertLessEqual(st["behind_shared_max"], 256, st)
        self.assertLessEqual(st["behind_shared_max_bytes"], MiB, st)
        self.assertLessEqual(st["behind_max"], 256, st)


    def test_small_writes_share_bytes_beside_a_reader(self):
        """The share beside active callers is 1 MiB of WRITEs, not one
        WRITE of whatever size the program wrote: a program that writes
        4 KiB at a time (each write(2) its own job and WRITE) keeps many
        of them in flight beside a reader.  Before, the share was counted
        in WRITEs of the mount's wsize (1 MiB: one WRITE), and such a
        writer had one 4 KiB WRITE in flight, its rate beside a reader a
        twentieth of what it had been (2 against 37 MiB/s here)."""
        v, d, wsize = self.mount(self.ganesha, 3)
        self.assertEqual(wsize, MiB, v.log())
        make_file(v.path("s", d, "reader.img"), 4 * MiB)
        stop = threading.Event()

        def reader():
            buf = aligned(4096)
            fd = os.open(v.path("s", d, "reader.img"), os.O_RDONLY | os.O_DIRECT)
            try:
                while not stop.is_set():
                    os.preadv(fd, [buf], 0)
            finally:
                os.close(fd)
        t, res = in_thread(reader)
        data = os.urandom(8 * MiB)
        try:
            time.sleep(0.2)
            # a child of its own, so that the reader's calls go on while
            # it writes (no interpreter lock between them)
            subprocess.run(["dd", "of=" + v.path("s", d, "small.img"), "bs=4096",
                            "conv=fsync", "status=none"], input=data, check=True, timeout=300)
        finally:
            stop.set()
            t.join()
        self.assertNotIn("error", res)
        st = self.stats(v)
        self.assertGreater(st["behind_shared_max"], 1, st)
        self.assertLessEqual(st["behind_shared_max"], 256, st)
        self.assertLessEqual(st["behind_shared_max_bytes"], MiB, st)
        with open(v.path("s", d, "small.img"), "rb") as f:
            self.assertEqual(f.read(), data)


    def test_own_commits_leave_the_writer_its_window(self):
        """A writer alone that fsyncs now and then is not held to a
        share by its own COMMITs: nobody else waits at the server.
        Before, every COMMIT left 20 ms of sharing behind it, in which
        the writer's next WRITEs went out 1 MiB at a time (behind 20 ms
        round trips: 78 MiB/s against 115 with its window)."""
        v, d, wsize = self.mount(self.ganesha, 3)
        path = v.path("s", d, "synced.img")
        data = [os.urandom(MiB) for _ in range(32)]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            time.sleep(0.1)     # the create's calls are long over
            for i, chunk in enumerate(data):
                os.write(fd, chunk)
                if i % 4 == 3:
                    os.fsync(fd)
        finally:
            os.close(fd)
        st = self.stats(v)
        self.assertGreater(st["behind_max"], 1, st)
        self.assertEqual(st["behind_shared_max"], 0, st)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"".join(data))


    def test_writer_that_never_pauses_holds_no_read(self):
        """A read of a file waits for the writes queued before it, not for
        those its writer queues meanwhile: before, a read (or fsync) of a
        file another process kept writing waited until that writer paused,
        which a streamer never does (the kernel's fsync marks the pages it
        waits for, against the same livelock)."""
        from delayrelay import DelayRelay
        # 5 ms each way: a server the writer outpaces
        relay = DelayRelay(self.ganesha.nfs_port, 0.005)
        v, d, wsize = self.mount(self.ganesha, 3, nfsport=relay.port)
        path = v.path("s", d, "streamed.img")
        make_file(path, 16 * MiB)     # fio lays out a file any shorter anew
        # overwrites the same 16 MiB over and over, for 60 s at most,
        # through the page cache, faster than the server takes it (a
        # thread: one process to kill)
        writer = subprocess.Popen(["fio", "--name=w", "--thread", "--filename=" + path, "--rw=write",
                                   "--bs=1M", "--size=16M", "--ioengine=psync", "--direct=0",
                                   "--time_based", "--runtime=60", "--allow_file_create=0"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(writer.wait)
        self.addCleanup(writer.kill)

        def reads():
            buf = aligned(4096)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
            try:
                for i in range(5):
                    os.preadv(fd, [buf], i * 4096)
            finally:
                os.close(fd)
        time.sleep(0.5)     # the writer streams
        t, res = in_thread(reads)
        t.join(15)
        done = not t.is_alive() and writer.poll() is None
        writer.kill()
        t.join()
        self.assertNotIn("error", res)
        self.assertTrue(done, "the reads waited for the writer to end")


class SftpAcrossHosts(AcrossHostsBase, harness.TestCase):
    capacity = (0, 4 << 18)    # 256 KiB in flight per connection, 4

    @classmethod
    def setUpClass(cls):
        from sshd import Sshd
        cls.sshd = Sshd().start()
        cls.remote = tmpdir()

    @classmethod
    def tearDownClass(cls):
        cls.sshd.stop()

    def vfsd_env(self):
        env = dict(os.environ, HOME=self.sshd.dir)
        env.pop("SSH_AUTH_SOCK", None)
        return env

    def backend_url(self):
        return self.sshd.url(self.remote, cache_ttl=0)

    def storage_unlink(self, *names):
        os.unlink(os.path.join(self.remote, *names))

    def storage_path(self, *names):
        return os.path.join(self.remote, *names)


class Watcher(harness.TestCase):
    """The watcher that reads the stored limits of files open on shared
    mounts again: what it costs the storage."""

    @harness.measures_rates
    def test_watcher_is_bounded_and_only_for_shared_mounts(self):
        """600 files held open on a shared mount cost at most 256 reads
        of stored limits a second (the rest take turns), none once they
        are closed; files open on a mount no other host shares cost
        none."""
        shared, private = tmpdir(), tmpdir()
        v = Vfsd([("/s", "file://%s?shared=yes" % shared),
                  ("/p", "file://" + private)]).start()
        self.addCleanup(v.stop)

        def listxattrs():
            st = json.loads(vfsctl(v, "--json", "stats").stdout)["mounts"]
            return {m["prefix"]: m["ops"]["listxattr"] for m in st}

        def rate(seconds=4.0):
            a = listxattrs()
            time.sleep(seconds)
            b = listxattrs()
            return {k: (b[k] - a[k]) / seconds for k in b}
        fds = []
        try:
            for i in range(600):
                for prefix in ("s", "p"):
                    fds.append(os.open(v.path(prefix, "f%03d" % i),
                                       os.O_RDWR | os.O_CREAT, 0o644))
            got = rate()
            print("\nreads of stored limits a second, 600 open files: %s" % got)
            self.assertGreater(got["/s"], 128)
            self.assertLessEqual(got["/s"], 256 * 1.3)
            self.assertEqual(got["/p"], 0)
        finally:
            for fd in fds:
                os.close(fd)
        time.sleep(1.5)
        self.assertEqual(rate(2.0)["/s"], 0)

    def test_limited_image_not_starved_by_many_open_files(self):
        """A user holding 2000 files open on a shared mount (any user may)
        made the watcher's rounds take turns over 2001 files: a change
        another host made to a running VM's stored limit waited up to
        eight seconds, and longer the more files were held open.  The
        files whose limits came from their stored attributes are read
        every round, first; the others take turns in what is left."""
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 4096:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        shared = tmpdir()
        v = Vfsd([("/s", "file://%s?shared=yes" % shared)]).start()
        self.addCleanup(v.stop)
        img = os.path.join(shared, "vm.img")
        with open(img, "wb") as f:
            f.write(b"x")
        os.setxattr(img, "user.vfsd.qos.bps", b"1000000")

        def bps():
            rules = json.loads(vfsctl(v, "--json", "qos", "show").stdout)
            return [r["limits"].get("bps") for r in rules
                    if r["path"] == "/s/vm.img"]
        fds = [os.open(v.path("s", "vm.img"), os.O_RDONLY)]
        try:
            self.assertEqual(bps(), [1000000])
            for i in range(2000):
                fds.append(os.open(v.path("s", "a%04d" % i),
                                   os.O_RDWR | os.O_CREAT, 0o644))
            took = []
            # as another host changes it: on the storage, beside this one
            for value in (2000000, 3000000, 4000000, None):
                if value:
                    os.setxattr(img, "user.vfsd.qos.bps", b"%d" % value)
                else:
                    os.removexattr(img, "user.vfsd.qos.bps")
                want = [value] if value else []
                t0 = time.monotonic()
                harness.wait_for(lambda: bps() == want, 30,
                                 "the change to apply")
                took.append(time.monotonic() - t0)
            print("\nchanges applied in %s s" % ["%.1f" % t for t in took])
            self.assertLess(max(took), 2.5, took)
        finally:
            for fd in fds:
                os.close(fd)

    def test_open_while_another_files_limit_is_stored(self):
        """The stored limits of a file opened while a change of another
        file's limits is being stored (here held by a paused backend; a
        slow NFS server does it too) apply to it: the load at its open
        applied nothing while any change anywhere was under way, and on a
        mount no other host shares nothing reads them again, so a VM's
        image opened then ran without its cap for as long as it ran."""
        private, other = tmpdir(), tmpdir()
        img = os.path.join(private, "vm.img")
        with open(img, "wb") as f:
            f.write(b"x")
        # stored before this vfsd started
        os.setxattr(img, "user.vfsd.qos.bps", b"1000000")
        with open(os.path.join(other, "x.img"), "wb") as f:
            f.write(b"x")
        v = Vfsd([("/p", "file://" + private),
                  ("/f", "fault+file://" + other)]).start()
        self.addCleanup(v.stop)
        self.addCleanup(harness.fault, v, "/f", "clear", check=False)
        harness.fault(v, "/f", "add", "op=setxattr", "pause")
        t, res = in_thread(os.setxattr, v.path("f", "x.img"),
                           "user.vfsd.qos.bps", b"2000000")
        self.addCleanup(t.join, 10)

        def paused():
            rules = json.loads(harness.fault(v, "/f", "list",
                                             json_out=True).stdout)["rules"]
            return rules[0]["paused"]
        harness.wait_for(lambda: paused() >= 1, 10, "the store to pause")

        def limited():
            with open(v.path(".vfsd", "files.json")) as f:
                files = json.load(f)
            return [e["limited"] for e in files if e["path"] == "/p/vm.img"]
        fd = os.open(v.path("p", "vm.img"), os.O_RDONLY)
        try:
            harness.fault(v, "/f", "clear")
            t.join(10)
            self.assertNotIn("error", res, res)
            time.sleep(2)
            self.assertEqual(limited(), [True])
        finally:
            os.close(fd)

    def test_watcher_leaves_no_rule_on_a_name_gone(self):
        """A file removed while the watcher reads its stored limits:
        the rule the removal took away came back from what was read
        before, on a name no file has, and a directory made under that
        name later had every file in it limited (nothing reads a rule
        of a name nothing holds open again)."""
        d = tmpdir()
        x = os.path.join(d, "x")
        with open(x, "wb") as f:
            f.write(b"x")
        os.setxattr(x, "user.vfsd.qos.bps", b"1000000")
        v = Vfsd([("/s", "fault+file://%s?shared=yes" % d)]).start()
        self.addCleanup(v.stop)
        self.addCleanup(harness.fault, v, "/s", "clear", check=False)
        fd = os.open(v.path("s", "x"), os.O_RDONLY)
        try:
            # answered, the answer held back: read before the removal
            harness.fault(v, "/s", "add", "op=getxattr", "path=/x", "pause",
                          "when=after")

            def paused():
                rules = json.loads(harness.fault(v, "/s", "list",
                                                 json_out=True).stdout)["rules"]
                return rules[0]["paused"]
            harness.wait_for(lambda: paused() >= 1, 10,
                             "the watcher's read to pause")
            os.unlink(v.path("s", "x"))
            harness.fault(v, "/s", "clear")
            time.sleep(0.5)
        finally:
            os.close(fd)
        time.sleep(1.5)
        os.mkdir(v.path("s", "x"))
        with open(v.path("s", "x", "y"), "wb") as f:
            f.write(b"y")
        fd = os.open(v.path("s", "x", "y"), os.O_RDONLY)
        try:
            with open(v.path(".vfsd", "files.json")) as f:
                files = json.load(f)
            self.assertEqual([e["limited"] for e in files
                              if e["path"] == "/s/x/y"], [False],
                             vfsctl(v, "qos", "show").stdout)
        finally:
            os.close(fd)

    def test_config_limit_back_when_stored_limit_removed(self):
        """An image the config limits, given a stored limit by another
        host while it is open here, then that stored limit removed: the
        config's limit applies again.  The watcher's load took the stored
        limit's removal for the removal of every rule on the image, and
        the config's cap was gone until the next reload; a reload made
        while the stored limit held changes what comes back."""
        d = tmpdir()
        img = os.path.join(d, "vm.img")
        with open(img, "wb") as f:
            f.write(b"x")
        cfg = os.path.join(tmpdir(), "vfsd.conf")

        def write_cfg(bps):
            with open(cfg, "w") as f:
                f.write("[mount /s]\nurl = file://%s?shared=yes\n\n"
                        "[qos /s/vm.img]\nbps = %d\n" % (d, bps))
            os.chmod(cfg, 0o600)
        write_cfg(5000000)
        v = Vfsd(args=["-c", cfg]).start()
        self.addCleanup(v.stop)

        def rule():
            rules = json.loads(vfsctl(v, "--json", "qos", "show").stdout)
            return [(r["origin"], r["limits"]) for r in rules
                    if r["path"] == "/s/vm.img"]
        fd = os.open(v.path("s", "vm.img"), os.O_RDONLY)
        try:
            self.assertEqual(rule(), [("config", {"bps": 5000000})])
            # as another host sets and removes it: on the storage
            os.setxattr(img, "user.vfsd.qos.bps", b"1000000")
            harness.wait_for(lambda: rule() == [("xattr", {"bps": 1000000})],
                             5, "the stored limit to apply")
            write_cfg(6000000)
            vfsctl(v, "reload")
            self.assertEqual(rule(), [("xattr", {"bps": 1000000})])
            os.removexattr(img, "user.vfsd.qos.bps")
            time.sleep(2.5)
            self.assertEqual(rule(), [("config", {"bps": 6000000})])
        finally:
            os.close(fd)


class QosWaits(harness.TestCase):
    """What a request waiting for its limit does when the world changes
    around it: its mount removed by force, its caller killed, vfsd
    stopped; and that no single request can be charged for days."""

    def setUp(self):
        self.dir = tmpdir("vfsd-qosw-")
        self.v = Vfsd(mounts=[("/l", "file://" + self.dir)]).start()
        self.addCleanup(self.v.stop)

    def waiting_writer(self, path, data, charged=100000):
        """A child process writing `data` to `path` after a write that
        charged the limit (1000 B/s) with `charged` bytes: it waits in
        vfsd.  Its exit status is the write's errno, 0 for success (the
        write is libc's own, which Python would repeat on EINTR)."""
        vfsctl(self.v, "qos", "set", self.v.path("l"), "bps_wr=1000")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.pwrite(fd, b"a" * charged, 0)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGUSR1, lambda *_: None)
            libc = ctypes.CDLL(None, use_errno=True)
            n = libc.pwrite(fd, data, ctypes.c_size_t(len(data)), ctypes.c_long(0))
            os._exit(ctypes.get_errno() if n < 0 else 0 if n == len(data) else 99)
        os.close(fd)
        time.sleep(0.5)
        self.assertEqual(os.waitpid(pid, os.WNOHANG), (0, 0), "not waiting")
        return pid

    def end_child(self, pid):
        """Kill a child still waiting (a failed test's); a daemon that
        does not let it go is killed too."""
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                os.kill(pid, signal.SIGKILL)
                self.reaped(pid, 5)

    def wait_released(self, path, t0, since):
        """Wait up to 10 s for vfsd to hold no open of `path` (a vfsd
        path) left by a killed reader; print how long after t0 (`since`
        says what that was)."""
        def released():
            files = json.loads(vfsctl(self.v, "--json", "files").stdout)
            return not any(f["path"] == path for f in files)
        harness.wait_for(released, 10, "the killed reader's open to be released")
        print("\nreleased %.1f s after %s" % (time.monotonic() - t0, since))

    def reaped(self, pid, seconds):
        """The child's exit status once it ended within `seconds`, else
        None (vfsd is then killed, which ends the child's request)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            got, status = os.waitpid(pid, os.WNOHANG)
            if got:
                return status
            time.sleep(0.05)
        self.v.kill()
        os.waitpid(pid, 0)
        return None

    def threads_in_child(self, fn, args):
        """A child process calling fn(*a) for each a of args, each in a
        thread of its own, then exiting; its pid (killed at cleanup)."""
        pid = os.fork()
        if pid == 0:
            ts = [threading.Thread(target=fn, args=a) for a in args]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            os._exit(0)
        self.addCleanup(self.end_child, pid)
        return pid

    def assert_others_go(self, what, direct):
        """Another file is created, written, read back (with O_DIRECT
        when `direct`) and listed within 2 s, while `what` waits."""
        def others():
            t0 = time.monotonic()
            other = self.v.path("l", "other")
            data = b"free" * (1024 if direct else 1000)
            with open(other, "wb") as f:
                f.write(data)
            if direct:
                fd = os.open(other, os.O_RDONLY | os.O_DIRECT)
                try:
                    self.assertEqual(os.preadv(fd, [aligned(4096)], 0), 4096)
                finally:
                    os.close(fd)
            else:
                with open(other, "rb") as f:
                    self.assertEqual(f.read(), data)
            self.assertIn("other", os.listdir(self.v.path("l")))
            return time.monotonic() - t0
        t, res = in_thread(others)
        t.join(10)
        if t.is_alive():
            self.v.kill()    # ends the blocked calls
            self.fail("the daemon stopped while %s wait for a limit" % what)
        self.assertNotIn("error", res, res)
        self.assertLess(res["value"], 2.0)

    def test_forced_remove_fails_a_waiting_write(self):
        """A write waiting for its limit when its mount is removed by
        force fails EIO, and its data never reaches the backend (the
        removal took the mount's limit with it and woke the write)."""
        pid = self.waiting_writer(self.v.path("l", "f"), b"LATE" * 10)
        self.addCleanup(self.end_child, pid)
        vfsctl(self.v, "mount", "remove", "--force", "/l")
        status = self.reaped(pid, 10)
        self.assertIsNotNone(status, "the write still waits")
        self.assertEqual(os.waitstatus_to_exitcode(status), errno.EIO)
        with open(os.path.join(self.dir, "f"), "rb") as f:
            self.assertEqual(f.read(4), b"aaaa")

    def test_killed_caller_and_sigterm_end_waits(self):
        """A process killed while its write waits for a limit of 1000 B/s
        with 100 s to go ends at once (the kernel keeps it until vfsd
        answers), and SIGTERM stops vfsd at once while another waits."""
        pid = self.waiting_writer(self.v.path("l", "f"), b"b" * 1000)
        os.kill(pid, signal.SIGKILL)
        self.assertIsNotNone(self.reaped(pid, 5), "the killed writer stays")
        # a new rule, with empty buckets: the first one's charge would
        # hold the next writer's own first write for 100 s
        vfsctl(self.v, "qos", "clear", self.v.path("l"))
        pid = self.waiting_writer(self.v.path("l", "g"), b"c" * 1000)
        t0 = time.monotonic()
        self.v.kill(signal.SIGTERM)
        try:
            self.v.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - t0
        self.assertIsNotNone(self.reaped(pid, 5), "the writer stays")
        self.assertLess(took, 5, "vfsd did not stop on SIGTERM")

    def test_other_signals_leave_the_wait(self):
        """A signal that does not kill the writer (one it handles) leaves
        its write waiting and then done, not failed with EINTR."""
        pid = self.waiting_writer(self.v.path("l", "f"), b"b" * 10, charged=3000)
        self.addCleanup(self.end_child, pid)
        os.kill(pid, signal.SIGUSR1)
        time.sleep(0.5)
        self.assertEqual(os.waitpid(pid, os.WNOHANG), (0, 0), "no longer waiting")
        status = self.reaped(pid, 10)
        self.assertIsNotNone(status, "still waiting")
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)

    def test_reload_keeps_waits_and_buckets(self):
        """A reload that leaves a [qos] rule as it was keeps its
        requests waiting and what its bucket holds: it is no way around
        the limit (a write charged 100 s must not go through at the next
        reload), and a changed value applies to the bucket as it is."""
        cfg = os.path.join(tmpdir(), "vfsd.conf")

        def write_cfg(bps):
            with open(cfg, "w") as f:
                f.write("[mount /l]\nurl = file://%s\n[qos /l]\nbps_wr = %d\n"
                        % (self.dir, bps))
            os.chmod(cfg, 0o600)
        write_cfg(1000)
        self.v.stop()
        self.v = Vfsd(args=["-c", cfg]).start()
        self.addCleanup(self.v.stop)
        fd = os.open(self.v.path("l", "f"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.pwrite(fd, b"a" * 100000, 0)
        pid = os.fork()
        if pid == 0:
            os.pwrite(fd, b"b", 0)
            os._exit(0)
        self.addCleanup(self.end_child, pid)
        os.close(fd)
        time.sleep(0.5)
        vfsctl(self.v, "reload")
        write_cfg(2000)
        vfsctl(self.v, "reload")
        time.sleep(0.5)
        self.assertEqual(os.waitpid(pid, os.WNOHANG), (0, 0),
                         "the waiting write went through at a reload")
        shown = json.loads(vfsctl(self.v, "--json", "qos", "show").stdout)
        self.assertEqual(shown[0]["limits"], {"bps_wr": 2000})
        self.assertEqual(shown[0]["waiting"], 1)
        # the waiting request is no second open file
        self.assertEqual(shown[0]["open_files"], 1)

    def test_waits_hold_no_worker_threads(self):
        """300 writes waiting on a file limited to 1000 B/s (more than
        vfsd's 256 FUSE worker threads) leave the daemon free: another
        file is created, written, read and listed at once, and the 300
        end with their caller.  A wait that held its worker stopped
        every file of every user."""
        # a write holds its file's inode lock: one file each, so that all
        # 300 reach vfsd at once
        os.mkdir(self.v.path("l", "slow"))
        names = [self.v.path("l", "slow", "f%d" % i) for i in range(300)]
        for n in names:
            open(n, "wb").close()
        vfsctl(self.v, "qos", "set", self.v.path("l", "slow"), "bps_wr=1000")
        with open(names[0], "wb") as f:
            f.write(b"a" * 100000)   # 100 s of the limit
        def one(name):
            with open(name, "r+b", buffering=0) as f:
                f.write(b"w" * 100)
        pid = self.threads_in_child(one, [(n,) for n in names])
        deadline = time.monotonic() + 20
        waiting = 0
        while time.monotonic() < deadline and waiting < 300:
            time.sleep(0.2)
            files = json.loads(vfsctl(self.v, "--json", "files").stdout)
            waiting = sum(f["waiting"] for f in files
                          if f["path"].startswith("/l/slow/"))
        self.assertEqual(waiting, 300)
        self.assert_others_go("writes", direct=False)

        os.kill(pid, signal.SIGKILL)
        self.assertIsNotNone(self.reaped(pid, 10), "the killed writers stay")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            files = json.loads(vfsctl(self.v, "--json", "files").stdout)
            if not any(f["waiting"] for f in files):
                break
            time.sleep(0.2)
        self.assertEqual([f["waiting"] for f in files if f["waiting"]], [])
        # what never got through was never written
        sizes = {n: os.path.getsize(n) for n in names}
        self.assertEqual(sum(sizes.values()), 100000)

    def test_killed_readers_readahead_is_given_up(self):
        """A process reading a limited file through the page cache is
        killed while the kernel's readahead for it waits for the limit:
        those reads have no caller to interrupt them, and are given up
        once the process is gone, so its open is released within seconds
        with the limit still in place (they held it until the limit let
        them through, 512 s here).  Another reader then reads the file
        whole."""
        d = self.v.path("l", "ra")
        os.mkdir(d)
        path = os.path.join(d, "f")
        data = bytes(range(256)) * (8 * 4096)     # 8 MiB
        with open(path, "wb") as f:
            f.write(data)
        vfsctl(self.v, "qos", "set", d, "bps_rd=4096")
        child = subprocess.Popen([sys.executable, "-c",
                                  "import sys\nwith open(sys.argv[1], 'rb') as f:\n"
                                  "    while f.read(1 << 20): pass\n", path])
        self.addCleanup(lambda: child.poll() is None and child.kill())

        def waiting():
            files = json.loads(vfsctl(self.v, "--json", "files").stdout)
            return sum(f["waiting"] for f in files if f["path"] == "/l/ra/f")
        harness.wait_for(lambda: waiting() >= 2, 20, "readahead to wait for the limit")
        child.kill()
        child.wait(10)
        t0 = time.monotonic()

        self.wait_released("/l/ra/f", t0, "the kill")
        rules = json.loads(vfsctl(self.v, "--json", "qos", "show").stdout)
        self.assertEqual([r["limits"] for r in rules if r["path"] == "/l/ra"],
                         [{"bps_rd": 4096}])
        vfsctl(self.v, "qos", "clear", d)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_readahead_of_a_reader_gone_before_vfsd_saw_it(self):
        """A reader of a mapped file is killed and reaped while vfsd is
        stopped, before vfsd read the kernel's readahead for it: vfsd cannot learn
        whose process that was, yet the read is nobody's (a later reader
        reads the pages again itself), and is given up once vfsd runs
        again instead of waiting 100 s for its limit: the open is
        released within seconds, the limit still in place."""
        d = self.v.path("l", "rg")
        os.mkdir(d)
        path = os.path.join(d, "f")
        with open(path, "wb") as f:
            f.write(b"r" * (1 << 20))
        vfsctl(self.v, "qos", "set", d, "bps=1000")
        with open(os.path.join(d, "charge"), "wb") as f:
            f.write(b"a" * 100000)   # 100 s of the limit
        go_r, go_w = os.pipe()
        up_r, up_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                # a mapping, no descriptor: its exit sends no FLUSH, which
                # would wait for vfsd, and with it the reaping
                # (libc's: Python's mmap keeps a descriptor of its own)
                libc = ctypes.CDLL(None)
                libc.mmap.restype = ctypes.c_void_p
                libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                      ctypes.c_int, ctypes.c_int, ctypes.c_long]
                fd = os.open(path, os.O_RDONLY)
                at = libc.mmap(None, 1 << 20, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
                os.close(fd)
                os.write(up_w, b"o")
                os.read(go_r, 1)
                ctypes.string_at(at, 1)
            finally:
                os._exit(0)
        os.close(go_r)
        os.close(up_w)
        self.addCleanup(os.close, go_w)
        self.addCleanup(os.close, up_r)
        self.addCleanup(self.end_child, pid)
        self.assertEqual(os.read(up_r, 1), b"o")

        def throttled():
            rules = json.loads(vfsctl(self.v, "--json", "qos", "show").stdout)
            return sum(r["throttled"] for r in rules if r["path"] == "/l/rg")
        before = throttled()
        vpid = self.v.proc.pid
        os.kill(vpid, signal.SIGSTOP)
        self.addCleanup(os.kill, vpid, signal.SIGCONT)
        os.write(go_w, b"g")
        time.sleep(0.5)         # the kernel queues the child's readahead
        os.kill(pid, signal.SIGKILL)
        self.assertIsNotNone(self.reaped(pid, 10), "the killed reader stays")
        os.kill(vpid, signal.SIGCONT)
        t0 = time.monotonic()

        self.wait_released("/l/rg/f", t0, "vfsd went on")
        # the readahead did come, and waited for the limit
        self.assertGreater(throttled(), before, "no read of the killed reader was held back")
        rules = json.loads(vfsctl(self.v, "--json", "qos", "show").stdout)
        self.assertEqual([r["limits"] for r in rules if r["path"] == "/l/rg"],
                         [{"bps": 1000}])

    def test_copies_hold_few_worker_threads(self):
        """300 copy_file_range calls under a limit of 1000 B/s (more than
        vfsd's 256 FUSE worker threads; a copy waits in its worker) leave
        the daemon free: at most 32 wait there, the others are answered
        EOPNOTSUPP and the kernel copies through reads, which are parked;
        another file is created, written, read and listed at once, and
        the 300 end with their caller."""
        os.mkdir(self.v.path("l", "c"))
        pairs = []
        for i in range(300):
            src, dst = self.v.path("l", "c", "s%d" % i), self.v.path("l", "c", "d%d" % i)
            with open(src, "wb") as f:
                f.write(b"s" * 4096)
            open(dst, "wb").close()
            pairs.append((src, dst))
        vfsctl(self.v, "qos", "set", self.v.path("l", "c"), "bps=1000")
        with open(self.v.path("l", "c", "charge"), "wb") as f:
            f.write(b"a" * 100000)   # 100 s of the limit
        def one(src, dst):
            fi, fo = os.open(src, os.O_RDONLY), os.open(dst, os.O_WRONLY)
            os.copy_file_range(fi, fo, 4096)
        pid = self.threads_in_child(one, pairs)
        deadline = time.monotonic() + 20
        waiting = 0
        while time.monotonic() < deadline and waiting < 64:
            time.sleep(0.2)
            rules = json.loads(vfsctl(self.v, "--json", "qos", "show").stdout)
            waiting = sum(r["waiting"] for r in rules)
        self.assertGreaterEqual(waiting, 64, rules)
        self.assert_others_go("copies", direct=True)
        os.kill(pid, signal.SIGKILL)
        self.assertIsNotNone(self.reaped(pid, 10), "the killed copies stay")
        # the kernel's own reads for the copies it took over (readahead)
        # have no caller to interrupt them: given up once their process
        # is gone, every open of the killed process is released, with
        # the limit still there
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            files = json.loads(vfsctl(self.v, "--json", "files").stdout)
            if not any(f["path"].startswith("/l/c/") for f in files):
                break
            time.sleep(0.2)
        self.assertEqual([f["path"] for f in files if f["path"].startswith("/l/c/")], [])

    def test_parked_writes_keep_their_data(self):
        """Writes of many threads held back by a limit (and so answered
        from vfsd's own threads, with copies of their data) write what
        each was given, where it was given."""
        open(self.v.path("l", "img"), "wb").close()
        vfsctl(self.v, "qos", "set", self.v.path("l", "img"), "iops_wr=200")
        fd = os.open(self.v.path("l", "img"), os.O_RDWR)
        self.addCleanup(os.close, fd)
        blocks = [bytes([i]) * 4096 for i in range(200)]
        ts = [threading.Thread(target=os.pwrite, args=(fd, b, 4096 * i))
              for i, b in enumerate(blocks)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        took = time.monotonic() - t0
        with open(os.path.join(self.dir, "img"), "rb") as f:
            self.assertEqual(f.read(), b"".join(blocks))
        # 200 writes at 200/s, after a first tenth of a second's worth
        self.assertGreater(took, 0.8)
        rules = json.loads(vfsctl(self.v, "--json", "qos", "show").stdout)
        self.assertGreater(rules[0]["throttled"], 100, rules)
        self.assertEqual(rules[0]["waiting"], 0, rules)

    def parked_reader(self, fd, off):
        """A thread of this process reading 4096 bytes of the O_DIRECT
        `fd` at `off`: it waits in vfsd for the limit.  Ended by the
        test's cleanup lifting the limit."""
        def one():
            with contextlib.suppress(OSError):
                os.preadv(fd, [aligned(4096)], off)
        t = threading.Thread(target=one)
        t.start()

        def lift():
            vfsctl(self.v, "qos", "clear", self.v.path("l"), check=False)
            t.join(10)
        self.addCleanup(lift)
        return t

    def file_waiting(self, name):
        files = json.loads(vfsctl(self.v, "--json", "files").stdout)
        return sum(f["waiting"] for f in files if f["path"] == name)

    def test_killed_caller_behind_another_wait_ends(self):
        """Two processes sharing one open (a fork): the first read waits
        65 s for the limit, the second queues behind it in the open's
        FIFO.  The second one killed ends at once, not when the first
        one's wait is over (only the head of a FIFO was looked at)."""
        with open(self.v.path("l", "f"), "wb") as f:
            f.write(b"r" * 200000)
        vfsctl(self.v, "qos", "set", self.v.path("l"), "bps_rd=1000")
        fd = os.open(self.v.path("l", "f"), os.O_RDONLY | os.O_DIRECT)
        self.addCleanup(os.close, fd)
        os.preadv(fd, [aligned(65536)], 0)    # 65 s of the limit
        self.parked_reader(fd, 65536)
        harness.wait_for(lambda: self.file_waiting("/l/f") >= 1, 10,
                         "the first read waiting")
        pid = os.fork()
        if pid == 0:
            os.preadv(fd, [aligned(4096)], 8192)
            os._exit(0)
        self.addCleanup(self.end_child, pid)
        time.sleep(0.5)
        self.assertEqual(os.waitpid(pid, os.WNOHANG), (0, 0), "not waiting")
        os.kill(pid, signal.SIGKILL)
        self.assertIsNotNone(self.reaped(pid, 5),
                             "the killed reader waits for the one before it")

    def test_rule_changes_count_a_wait_once(self):
        """A write waiting 3 s while other rules change twice is one
        throttled request of its rule, for those 3 s (each change of any
        rule counted it again, and its time so far again)."""
        os.mkdir(self.v.path("l", "other"))
        pid = self.waiting_writer(self.v.path("l", "f"), b"b" * 1000)
        self.addCleanup(self.end_child, pid)
        t0 = time.monotonic()
        for bps in (5000, 6000):
            time.sleep(1)
            vfsctl(self.v, "qos", "set", self.v.path("l", "other"),
                   "bps_rd=%d" % bps)
        time.sleep(1)
        vfsctl(self.v, "qos", "set", self.v.path("l"), "bps_wr=100000000")
        status = self.reaped(pid, 5)
        took = time.monotonic() - t0
        self.assertIsNotNone(status, "the write still waits")
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        shown = json.loads(vfsctl(self.v, "--json", "qos", "show",
                                  self.v.path("l")).stdout)
        rule = [r for r in shown if r["path"] == "/l"][0]
        self.assertEqual(rule["throttled"], 1, rule)
        self.assertEqual(rule["waiting"], 0, rule)
        # the wait began half a second before t0 (waiting_writer)
        self.assertLess(rule["throttled_ms"], (took + 0.6) * 1000, rule)
        self.assertGreater(rule["throttled_ms"], 3000, rule)

    def test_writes_past_the_parking_bound_count_right(self):
        """270 writes of 1 MiB waiting for a limit: past the 256 MiB vfsd
        copies for parked writes, the rest wait in their worker thread.
        Each is one waiting request of its file while it waits, and
        none is left waiting in `qos show` once their caller is killed
        (those past the bound were counted twice, and once forever)."""
        os.mkdir(self.v.path("l", "big"))
        names = [self.v.path("l", "big", "f%d" % i) for i in range(270)]
        for n in names:
            open(n, "wb").close()
        vfsctl(self.v, "qos", "set", self.v.path("l", "big"), "bps_wr=1000")
        with open(names[0], "wb") as f:
            f.write(b"a" * 100000)   # 100 s of the limit
        data = b"w" * MiB

        def one(name):
            with open(name, "r+b", buffering=0) as f:
                f.write(data)
        pid = self.threads_in_child(one, [(n,) for n in names])

        def counts():
            files = json.loads(vfsctl(self.v, "--json", "files").stdout)
            return [f["waiting"] for f in files
                    if f["path"].startswith("/l/big/")]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            waiting = counts()
            if len(waiting) == 270 and 0 not in waiting:
                break
            time.sleep(0.2)
        self.assertEqual(len(waiting), 270)
        self.assertEqual(set(waiting), {1})
        os.kill(pid, signal.SIGKILL)
        self.assertIsNotNone(self.reaped(pid, 10), "the killed writers stay")
        harness.wait_for(lambda: not counts(), 10, "the files closed")
        rules = json.loads(vfsctl(self.v, "--json", "qos", "show").stdout)
        self.assertEqual([r["waiting"] for r in rules], [0], rules)
        # each one request that waited, once
        self.assertEqual([r["throttled"] for r in rules], [270], rules)

    def test_write_limit_holds_no_reads(self):
        """An image open for reading and writing, limited in its writes
        only: while a write waits 100 s for the limit, reads through the
        same open go at once (they queued behind the write)."""
        with open(self.v.path("l", "img"), "wb") as f:
            f.write(b"r" * 200000)
        vfsctl(self.v, "qos", "set", self.v.path("l"), "bps_wr=1000")
        fd = os.open(self.v.path("l", "img"), os.O_RDWR | os.O_DIRECT)
        self.addCleanup(os.close, fd)
        os.pwritev(fd, [aligned(102400)], 0)    # 100 s of the limit

        def write():
            with contextlib.suppress(OSError):
                os.pwritev(fd, [aligned(4096)], 0)
        t = threading.Thread(target=write)
        t.start()

        def lift():
            vfsctl(self.v, "qos", "clear", self.v.path("l"), check=False)
            t.join(10)
        self.addCleanup(lift)
        harness.wait_for(lambda: self.file_waiting("/l/img") >= 1, 10,
                         "the write waiting")
        t, res = in_thread(os.preadv, fd, [aligned(4096)], 8192)
        t.join(5)
        if t.is_alive():
            vfsctl(self.v, "qos", "clear", self.v.path("l"))
            t.join(10)
            self.fail("a read waits behind a write held by a write limit")
        self.assertEqual(res.get("value"), 4096, res)

    def test_reads_queued_behind_another_are_waiting(self):
        """Two reads of one open waiting for the limit, the second queued
        behind the first: both are waiting requests of the file and of
        its rule (the second was counted nowhere)."""
        with open(self.v.path("l", "f"), "wb") as f:
            f.write(b"r" * 200000)
        vfsctl(self.v, "qos", "set", self.v.path("l"), "bps_rd=1000")
        fd = os.open(self.v.path("l", "f"), os.O_RDONLY | os.O_DIRECT)
        self.addCleanup(os.close, fd)
        os.preadv(fd, [aligned(65536)], 0)    # 65 s of the limit
        self.parked_reader(fd, 65536)
        harness.wait_for(lambda: self.file_waiting("/l/f") >= 1, 10,
                         "the first read waiting")
        self.parked_reader(fd, 8192)
        time.sleep(0.5)
        self.assertEqual(self.file_waiting("/l/f"), 2)
        rules = json.loads(vfsctl(self.v, "--json", "qos", "show").stdout)
        self.assertEqual([r["waiting"] for r in rules], [2], rules)
        vfsctl(self.v, "qos", "clear", self.v.path("l"))
        harness.wait_for(lambda: not self.file_waiting("/l/f"), 5,
                         "the reads done")

    def test_forced_remove_fails_a_write_a_kept_rule_holds(self):
        """A write held by a rule the removal leaves (one on a directory
        of the mount, not on the mount) fails EIO as soon as its mount
        is removed by force, not when that rule lets it go 100 s later."""
        os.mkdir(self.v.path("l", "d"))
        path = self.v.path("l", "d", "f")
        vfsctl(self.v, "qos", "set", self.v.path("l", "d"), "bps_wr=1000")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.pwrite(fd, b"a" * 100000, 0)
        pid = os.fork()
        if pid == 0:
            libc = ctypes.CDLL(None, use_errno=True)
            n = libc.pwrite(fd, b"LATE", ctypes.c_size_t(4), ctypes.c_long(0))
            os._exit(ctypes.get_errno() if n < 0 else 0)
        os.close(fd)
        self.addCleanup(self.end_child, pid)
        time.sleep(0.5)
        self.assertEqual(os.waitpid(pid, os.WNOHANG), (0, 0), "not waiting")
        vfsctl(self.v, "mount", "remove", "--force", "/l")
        status = self.reaped(pid, 5)
        self.assertIsNotNone(status, "the write still waits")
        self.assertEqual(os.waitstatus_to_exitcode(status), errno.EIO)
        with open(os.path.join(self.dir, "d", "f"), "rb") as f:
            self.assertEqual(f.read(4), b"aaaa")

    def test_a_stuck_mount_holds_no_other_mounts_waits(self):
        """48 limited reads of a mount whose backend hangs (a fault rule
        pauses its reads) hold vfsd's threads that do the I/O of parked
        requests: a limited read of another mount still goes once its
        limit lets it (it waited for one of 32 threads, all stuck)."""
        self.v.stop()
        stuck = tmpdir("vfsd-qosw-stuck-")
        with open(os.path.join(stuck, "f"), "wb") as f:
            f.write(b"s" * 65536)
        self.v = Vfsd(mounts=[("/l", "file://" + self.dir),
                              ("/s", "fault+file://" + stuck)]).start()
        self.addCleanup(self.v.stop)
        self.addCleanup(harness.fault, self.v, "/s", "clear", check=False)
        rid = int(harness.fault(self.v, "/s", "add", "op=read",
                                "pause").stdout)
        vfsctl(self.v, "qos", "set", self.v.path("s"), "iops_rd=100")
        fd = os.open(self.v.path("s", "f"), os.O_RDONLY | os.O_DIRECT)
        self.addCleanup(os.close, fd)

        def one(i):
            with contextlib.suppress(OSError):
                os.preadv(fd, [aligned(4096)], 4096 * (i % 16))
        ts = [threading.Thread(target=one, args=(i,)) for i in range(48)]
        for t in ts:
            t.start()

        def paused():
            rules = json.loads(harness.fault(self.v, "/s", "list",
                                             json_out=True).stdout)["rules"]
            return [r for r in rules if r["id"] == rid][0]["paused"]
        # 32 or more (workers, then threads of parked requests), and by
        # then all 48 admitted (at 100/s)
        harness.wait_for(lambda: paused() >= 32, 20, "the reads paused")
        time.sleep(1)

        def join():
            harness.fault(self.v, "/s", "clear", check=False)
            for t in ts:
                t.join(10)
        self.addCleanup(join)

        with open(self.v.path("l", "g"), "wb") as f:
            f.write(b"g" * 8192)
        vfsctl(self.v, "qos", "set", self.v.path("l"), "iops_rd=2")
        gfd = os.open(self.v.path("l", "g"), os.O_RDONLY | os.O_DIRECT)
        self.addCleanup(os.close, gfd)

        def reads():
            # the burst spent, then at most 2 a second
            return [os.preadv(gfd, [aligned(4096)], 4096 * (i % 2))
                    for i in range(6)]
        t, res = in_thread(reads)
        t.join(10)
        if t.is_alive():
            harness.fault(self.v, "/s", "clear")
            t.join(10)
            self.fail("reads of /l wait for the reads of the stuck /s")
        self.assertEqual(res.get("value"), [4096] * 6, res)

    def test_sigterm_ends_parked_reads_in_a_paused_call(self):
        """SIGTERM stops vfsd while reads that waited for their limit are
        held in their backend call by a fault rule's pause: the pause
        ends when vfsd does (vfsctl(8)), for the threads that do parked
        requests as for the workers (vfsd waited for them for ever)."""
        self.v.stop()
        stuck = tmpdir("vfsd-qosw-stuck-")
        with open(os.path.join(stuck, "f"), "wb") as f:
            f.write(b"s" * 65536)
        self.v = Vfsd(mounts=[("/s", "fault+file://" + stuck)]).start()
        self.addCleanup(self.v.stop)
        vfsctl(self.v, "qos", "set", self.v.path("s"), "iops_rd=20")
        fd = os.open(self.v.path("s", "f"), os.O_RDONLY | os.O_DIRECT)

        def close():
            with contextlib.suppress(OSError):    # vfsd is gone
                os.close(fd)
        self.addCleanup(close)
        for i in range(30):
            os.preadv(fd, [aligned(4096)], 0)    # the burst spent
        rid = int(harness.fault(self.v, "/s", "add", "op=read",
                                "pause").stdout)

        def one(i):
            with contextlib.suppress(OSError):
                os.preadv(fd, [aligned(4096)], 4096 * i)
        ts = [threading.Thread(target=one, args=(i,), daemon=True)
              for i in range(8)]
        for t in ts:
            t.start()

        def paused():
            rules = json.loads(harness.fault(self.v, "/s", "list",
                                             json_out=True).stdout)["rules"]
            return [r for r in rules if r["id"] == rid][0]["paused"]
        harness.wait_for(lambda: paused() >= 8, 20, "the reads paused")
        # no process is started from here on: its child would close this
        # process's descriptors of the mount, and wait for vfsd to answer
        self.v.kill(signal.SIGTERM)
        try:
            self.v.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.v.kill()
            self.v.proc.wait()
            self.fail("vfsd did not stop on SIGTERM")
        for t in ts:
            t.join(5)

    def test_names_of_a_limited_file_do_not_pile_up(self):
        """A file limited by its attribute, linked under 1100 names (as
        its owner may) and opened under each: the rules its names made
        go once idle, rather than grow the daemon's table (and the time
        of every open) without end; the limit still holds at each
        name's next open."""
        base = os.path.join(self.dir, "img")
        with open(base, "wb") as f:
            f.write(b"i" * 4096)
        os.setxattr(base, "user.vfsd.qos.bps", b"1000000")
        for i in range(1100):
            os.link(base, os.path.join(self.dir, "n%d" % i))
        for i in range(1100):
            os.close(os.open(self.v.path("l", "n%d" % i), os.O_RDONLY))
        self.assertEqual(len(json.loads(vfsctl(self.v, "--json", "qos", "show").stdout)),
                         1100)
        time.sleep(10.5)
        os.close(os.open(self.v.path("l", "img"), os.O_RDONLY))
        shown = json.loads(vfsctl(self.v, "--json", "qos", "show").stdout)
        self.assertEqual([r["path"] for r in shown], ["/l/img"])
        fd = os.open(self.v.path("l", "n7"), os.O_RDONLY)
        try:
            shown = json.loads(vfsctl(self.v, "--json", "qos", "show",
                                      self.v.path("l", "n7")).stdout)
            self.assertEqual(shown[0]["limits"], {"bps": 1000000})
            self.assertEqual(shown[0]["open_files"], 1)
        finally:
            os.close(fd)

    def test_copy_range_is_charged_in_pieces(self):
        """copy_file_range of a 1 GiB (sparse) file under a 4 MiB/s limit
        returns a short count soon, and the file next to it is not held
        back for the 256 s that the whole copy would have been charged."""
        os.mkdir(os.path.join(self.dir, "t"))
        vfsctl(self.v, "qos", "set", self.v.path("l", "t"), "bps=%d" % (4 * MiB))
        src = self.v.path("l", "t", "src")
        with open(src, "wb") as f:
            f.truncate(1 << 30)
        fin = os.open(src, os.O_RDONLY)
        fout = os.open(self.v.path("l", "t", "dst"), os.O_WRONLY | os.O_CREAT, 0o644)
        other = os.open(self.v.path("l", "t", "other"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            def copy_then_write():
                n = os.copy_file_range(fin, fout, 1 << 30, 0, 0)
                os.pwrite(other, b"x" * 4096, 0)
                return n
            t, res = in_thread(copy_then_write)
            t.join(5)
            if t.is_alive():
                self.v.kill()
                t.join(30)
                self.fail("the copy and the write after it still wait after 5 s")
            self.assertNotIn("error", res, res.get("error"))
            self.assertGreater(res["value"], 0)
            self.assertLessEqual(res["value"], 4 * MiB)
        finally:
            for fd in (fin, fout, other):
                with contextlib.suppress(OSError):
                    os.close(fd)


@harness.measures_rates
class QosBackground(harness.TestCase):
    """The kernel sends readahead, page-cache writeback and asynchronous
    O_DIRECT I/O (libaio, io_uring) as background requests, at most 64 at
    once for the whole FUSE mount, every vfsd mount together; one more
    waits in the kernel.  Requests parked for a very low limit keep their
    places until answered: they must not leave the files of others (of
    the same mount and of another) waiting for one."""

    LIMIT = 4096        # bytes a second: one 4 KiB read a second
    SIZE = 16 * MiB     # of each neighbour's file

    def setUp(self):
        if not shutil.which("fio"):
            self.skipTest("no fio")
        self.dirs = {"l": tmpdir("vfsd-qosbg-l-"), "m": tmpdir("vfsd-qosbg-m-")}
        # no passthrough: the others' reads and writes are FUSE requests
        # (with it the kernel does them itself, and nothing could wait)
        self.v = Vfsd(mounts=[("/" + k, "file://%s?passthrough=no" % d)
                              for k, d in sorted(self.dirs.items())]).start()
        self.addCleanup(self.v.stop)
        os.mkdir(os.path.join(self.dirs["l"], "slow"))
        # the neighbours' files, written beneath the mount: none of their
        # pages is in the mount's page cache
        data = os.urandom(MiB)
        for d in self.dirs.values():
            for name in ("r0", "r1", "w0", "w1", "a0", "a1"):
                with open(os.path.join(d, name), "wb") as f:
                    for _ in range(self.SIZE // MiB):
                        f.write(data)
        self.noisy = None

    def neighbours(self, n):
        """Seconds each kind of I/O takes on a file of /l and of /m no
        rule covers (the files numbered n): a buffered read (readahead),
        a shared mapping written and synced (writeback), buffered writes
        and fsync, and 2048 O_DIRECT reads by libaio at queue depth 16."""
        def timed(fn, *args):
            t0 = time.monotonic()
            fn(*args)
            return time.monotonic() - t0

        def read_all(path):
            with open(path, "rb") as f:
                while f.read(MiB):
                    pass

        def map_write(path):
            with open(path, "r+b") as f:
                m = mmap.mmap(f.fileno(), 4 * MiB)
                m[:] = b"m" * (4 * MiB)
                m.flush()
                m.close()

        def write_sync(path):
            with open(path, "r+b") as f:
                for i in range(8):
                    f.write(b"w" * MiB)
                os.fsync(f.fileno())

        def libaio(path):
            subprocess.run(["fio", "--name=n", "--filename=" + path, "--thread",
                            "--rw=randread", "--bs=4k", "--direct=1",
                            "--ioengine=libaio", "--iodepth=16", "--io_size=8M"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=True, timeout=120)
        took = {}
        for m in ("l", "m"):
            took[m + " buffered read"] = timed(read_all, self.v.path(m, "r%d" % n))
            took[m + " mmap writeback"] = timed(map_write, self.v.path(m, "w%d" % n))
            took[m + " write+fsync"] = timed(write_sync, self.v.path(m, "w%d" % n))
            took[m + " libaio"] = timed(libaio, self.v.path(m, "a%d" % n))
        return took

    def start_noisy(self, argv, parked):
        """Run argv (in a session of its own) and wait until `parked` of
        its requests wait for the limit in vfsd (64: every place the
        kernel had, without the fix)."""
        self.noisy = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        self.addCleanup(self.stop_noisy)
        deadline = time.monotonic() + 30
        waiting = 0
        while time.monotonic() < deadline and waiting < parked:
            time.sleep(0.2)
            files = json.loads(vfsctl(self.v, "--json", "files").stdout)
            waiting = sum(f["waiting"] for f in files
                          if f["path"].startswith("/l/slow/"))
        self.assertGreaterEqual(waiting, parked)
        if "FUSE connection is not known" in self.v.log():
            self.fail("vfsd found no FUSE connection to change the "
                      "background budget of:\n" + self.v.log())

    def stop_noisy(self):
        """Kill the noisy process and lift the limit: what it left
        waiting ends (its readahead is given up once it is gone, its
        libaio writes wait for the limit), and every open of the limited
        files is released."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.noisy.pid, signal.SIGKILL)
        vfsctl(self.v, "qos", "clear", self.v.path("l", "slow"), check=False)
        self.noisy.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            files = json.loads(vfsctl(self.v, "--json", "files").stdout)
            if not any(f["path"].startswith("/l/slow/") for f in files):
                break
            time.sleep(0.2)

    def assert_neighbours_go(self, alone):
        """The neighbours take about the time they took `alone`."""
        t, res = in_thread(self.neighbours, 1)
        t.join(60)
        if t.is_alive():
            self.stop_noisy()     # lets them end
            t.join(60)
            self.fail("the neighbours' I/O stalled (%r) beside requests "
                      "waiting for a limit; alone: %r" % (res, alone))
        self.assertNotIn("error", res, res.get("error"))
        for what, secs in sorted(res["value"].items()):
            print("%s: %.2f s alone, %.2f s beside the waits"
                  % (what, alone[what], secs))
            self.assertLess(secs, 4 * alone[what] + 2.0, what)

    def limited(self):
        vfsctl(self.v, "qos", "set", self.v.path("l", "slow"),
               "bps_rd=%d" % self.LIMIT)

    def test_libaio_on_a_limited_file(self):
        """Two libaio jobs at queue depth 64 on a file limited to 4 KiB/s
        (their reads parked, one a second goes): the others' readahead,
        writeback and libaio go on at their speed alone."""
        img = os.path.join(self.dirs["l"], "slow", "img")
        with open(img, "wb") as f:
            f.truncate(64 * MiB)
        self.limited()     # before the open: no passthrough for it
        alone = self.neighbours(0)
        self.start_noisy(["fio", "--name=noisy", "--filename=" + self.v.path("l", "slow", "img"),
                          "--thread", "--numjobs=2", "--rw=randread", "--bs=4k",
                          "--direct=1", "--ioengine=libaio", "--iodepth=64",
                          "--runtime=600", "--time_based"], 64)
        self.assert_neighbours_go(alone)

    def test_readahead_of_limited_files(self):
        """96 buffered readers of 96 files limited together to 4 KiB/s
        (their readahead parked, a read a second goes): the others'
        readahead, writeback and libaio go on at their speed alone."""
        names = []
        for i in range(96):
            names.append(self.v.path("l", "slow", "f%d" % i))
            with open(os.path.join(self.dirs["l"], "slow", "f%d" % i), "wb") as f:
                f.write(b"f" * MiB)
        self.limited()
        alone = self.neighbours(0)
        code = ("import os, sys, threading\n"
                "def one(p):\n"
                "    fd = os.open(p, os.O_RDONLY)\n"
                "    while os.read(fd, 1 << 20):\n"
                "        pass\n"
                "ts = [threading.Thread(target=one, args=(p,)) for p in sys.argv[1:]]\n"
                "for t in ts:\n"
                "    t.start()\n"
                "for t in ts:\n"
                "    t.join()\n")
        self.start_noisy([sys.executable, "-c", code] + names, 64)
        self.assert_neighbours_go(alone)


if __name__ == "__main__":
    harness.main()
