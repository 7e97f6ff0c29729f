# SPDX-License-Identifier: GPL-2.0-or-later
"""Fair sharing and stored limits (issue 17) when things go wrong, through
the real mount: a server paused (SIGSTOP) under a streamer and a reader
that share a mount fairly, or in the middle of a change of stored limits;
two hosts changing one image's stored limits at the same moment; file
names that are not UTF-8 in the JSON reports; the cost of a stat of the
reports; a read or write waiting for its limit whose caller vfsd cannot
see in /proc (no descriptor left, another PID namespace)."""
import codecs
import contextlib
import ctypes
import errno
import json
import mmap
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, tmpdir, vfsctl  # noqa: E402
import ganesha  # noqa: E402
from ganesha import Ganesha  # noqa: E402
from rpcrelay import NFS_PROGRAM, NFSPROC3_CREATE, NFSPROC3_RENAME, RpcRelay  # noqa: E402

MiB = 1 << 20
TIMEOUT = 2             # the remote mounts' timeout, seconds
NFSPROC3_WRITE = 7
SKIP_NFS = ganesha.available()


def vfsctl_bytes(v, *args):
    r = subprocess.run([harness.VFSCTL, "-m", v.mnt] + list(args),
                       capture_output=True, timeout=60)
    if r.returncode:
        raise AssertionError("vfsctl %s: %r" % (args, r.stderr))
    return r.stdout


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def aligned(size, fill=b"s"):
    m = mmap.mmap(-1, size)
    m.write(fill * size)
    return m


class Ops:
    """Requests of one kind in threads, each (start, end, errno or 0) noted
    with times from time.monotonic(), until stop()."""

    def __init__(self, name, fn, threads=1):
        self.name = name
        self.fn = fn
        self.done = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(threads)]
        self.current = {}       # thread -> start of its request now

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self):
        me = threading.get_ident()
        while not self.stopping.is_set():
            t0 = time.monotonic()
            with self.lock:
                self.current[me] = t0
            try:
                self.fn()
                err = 0
            except OSError as e:
                err = e.errno
            t1 = time.monotonic()
            with self.lock:
                del self.current[me]
                self.done.append((t0, t1, err))
            if err:
                time.sleep(0.01)        # a silent server fails at once

    def stop(self, test):
        self.stopping.set()
        for t in self.threads:
            t.join(4 * TIMEOUT + 10)
            test.assertFalse(t.is_alive(), "a %s request hangs" % self.name)

    def since(self, t):
        with self.lock:
            return [d for d in self.done if d[1] >= t]

    def oldest_running(self):
        with self.lock:
            return min(self.current.values(), default=None)


class FairSharingPausedBase:
    """The server stops (SIGSTOP) while a streamer and a small reader
    share a mount fairly, and goes on (SIGCONT): every request ends within
    the mount's timeout, those queued for their turn too, both files go
    on afterwards, and the scheduler has nothing left in flight."""

    def test_fair_sharing_with_a_paused_server(self):
        v = Vfsd([("/s", self.backend_url())], env=self.vfsd_env()).start()
        self.addCleanup(v.stop)
        for name, size in (("stream.img", 16 * MiB), ("small.img", MiB)):
            with open(os.path.join(self.backing, name), "wb") as f:
                f.write(os.urandom(size))
        # one open file streaming 1 MiB requests, four at once (O_DIRECT
        # reads go to vfsd in parallel); another reading 4 KiB at a time
        sfd = os.open(v.path("s", "stream.img"), os.O_RDONLY | os.O_DIRECT)
        rfd = os.open(v.path("s", "small.img"), os.O_RDONLY | os.O_DIRECT)
        self.addCleanup(os.close, sfd)
        self.addCleanup(os.close, rfd)
        local = threading.local()

        def stream():
            if not hasattr(local, "buf"):
                local.buf = aligned(MiB)
            os.preadv(sfd, [local.buf], random.randrange(16) * MiB)

        def read_small():
            if not hasattr(local, "small"):
                local.small = aligned(4096)
            os.preadv(rfd, [local.small], random.randrange(256) * 4096)

        before = v.stats("/s")["fair"]
        streamer = Ops("streamer", stream, threads=4).start()
        reader = Ops("reader", read_small).start()
        self.addCleanup(streamer.stopping.set)
        self.addCleanup(reader.stopping.set)
        harness.wait_for(lambda: v.stats("/s")["fair"]["waited"] > before["waited"]
                         and len(reader.since(0)) > 20, 20,
                         "the streamer to wait its turn beside the reader")
        self.server.pause()
        self.addCleanup(self.server.resume)
        paused = time.monotonic()
        # each request ends, with an errno, within the timeout; one queued
        # for its turn at the pause may then be the one call a second
        # that waits for a fresh connect attempt (backends/sftp/pool.c),
        # within its own timeout: so the first error of each comes within
        # two timeouts
        time.sleep(2 * TIMEOUT + 2)
        print("\nfirst errors after the pause: %s" % ", ".join(
            "%s %.2f s" % (ops.name, min((d[1] for d in ops.since(paused) if d[2]),
                                         default=-1) - paused)
            for ops in (reader, streamer)))
        for ops in (reader, streamer):
            running = ops.oldest_running()
            self.assertTrue(running is None or running > paused + 0.5,
                            "a %s request has waited %.1f s" % (
                                ops.name, time.monotonic() - (running or 0)))
            errs = [d for d in ops.since(paused) if d[2]]
            self.assertTrue(errs, "no %s request failed" % ops.name)
            self.assertLess(errs[0][1] - paused, 2 * TIMEOUT + 1,
                            "%s; vfsd's log:\n%s" % (ops.name, v.log()[-3000:]))
            self.assertEqual({d[2] for d in errs} - {errno.EIO, errno.ETIMEDOUT},
                             set(), ops.name)
        self.server.resume()
        resumed = time.monotonic()
        # both go on, not just once
        harness.wait_for(lambda: any(not d[2] for d in reader.since(resumed)) and
                         any(not d[2] for d in streamer.since(resumed)), 30,
                         "both files to work again")
        again = time.monotonic()
        time.sleep(1)
        streamer.stop(self)
        reader.stop(self)
        for ops in (reader, streamer):
            self.assertTrue([d for d in ops.since(again) if not d[2]], ops.name)
        # nothing is left counted in flight
        st = v.stats("/s")
        self.assertEqual((st["fair"]["requests"], st["fair"]["bytes"]), (0, 0), st["fair"])
        self.assertEqual(st["in_flight"], 0)


@unittest.skipIf(SKIP_NFS, SKIP_NFS)
class PausedNfs(FairSharingPausedBase, harness.TestCase):
    def setUp(self):
        self.g = self.server = Ganesha().start()
        self.addCleanup(self.g.stop)
        self.backing = self.g.export

    def backend_url(self):
        return self.g.url(version=3, cache_ttl=0, timeout=TIMEOUT)

    def vfsd_env(self):
        return None

    def test_stored_limits_kept_while_the_server_cannot_tell(self):
        """A host's watcher reads the stored limits of its open files
        again once a second; a read that fails (the server stops
        answering it) tells nothing, and the image open here keeps its
        limit: before, a timeout read as "none stored" and dropped it,
        so a VM's cap went with any network fault."""
        r = RpcRelay(self.g.nfs_port).start()
        self.addCleanup(r.stop)
        a = Vfsd([("/s", self.g.url(version=3, cache_ttl=0))],
                 args=["--host-id", "ka"]).start()
        self.addCleanup(a.stop)
        url = self.g.url(version=3, nfsport=r.port, cache_ttl=0, timeout=TIMEOUT)
        b = Vfsd([("/s", url)], args=["--host-id", "kb"]).start()
        self.addCleanup(b.stop)
        os.mkdir(a.path("s", "vm"))
        img = a.path("s", "vm", "disk.img")
        with open(img, "wb") as f:
            f.write(b"d" * 4096)
        os.setxattr(img, "user.vfsd.qos.bps", b"123456")

        def limited():
            with open(b.path(".vfsd", "files.json")) as f:
                files = json.load(f)
            return [e["limited"] for e in files if e["path"] == "/s/vm/disk.img"]
        fd = os.open(b.path("s", "vm", "disk.img"), os.O_RDONLY)
        try:
            self.assertEqual(limited(), [True])
            # the calls a load makes go unanswered for several rounds
            r.drop.update({(NFS_PROGRAM, 3, p) for p in (1, 3, 4, 6)})
            time.sleep(3 * TIMEOUT + 2)
            self.assertEqual(limited(), [True])
            r.drop.clear()
            # and a removal made meanwhile on the other host applies
            os.removexattr(img, "user.vfsd.qos.bps")
            harness.wait_for(lambda: limited() == [False], 10 + 2 * TIMEOUT,
                             "the removal to apply on the host holding the image")
        finally:
            os.close(fd)

    def test_change_of_stored_limits_with_a_paused_server(self):
        """A setxattr of a limit on an NFS mount whose server stops in the
        middle of the change (at the CREATE of its temporary, its WRITE,
        or its RENAME) fails within the timeout; after SIGCONT the limits read back,
        through this host and another one, are the old set or the new
        one, whole, and the next change works."""
        armed = {}

        def pause_at(prog, vers, proc, payload):
            if (prog, vers, proc) == (NFS_PROGRAM, 3, armed.get("proc")):
                del armed["proc"]
                self.g.pause()
            return False
        r = RpcRelay(self.g.nfs_port, lose=pause_at, lose_count=1 << 30).start()
        self.addCleanup(r.stop)
        url = self.g.url(version=3, nfsport=r.port, cache_ttl=0, timeout=TIMEOUT)
        a = Vfsd([("/s", url)], args=["--host-id", "pa"]).start()
        self.addCleanup(a.stop)
        b = Vfsd([("/s", self.g.url(version=3, cache_ttl=0))],
                 args=["--host-id", "pb"]).start()
        self.addCleanup(b.stop)
        os.mkdir(a.path("s", "vm"))
        img = a.path("s", "vm", "disk.img")
        with open(img, "wb") as f:
            f.write(b"d" * 4096)
        sidecar = os.path.join(self.g.export, "vm", ".vfsd-qos", "disk.img")
        value = 1000
        for proc in (NFSPROC3_CREATE, NFSPROC3_WRITE, NFSPROC3_RENAME):
            with self.subTest(proc=proc):
                os.setxattr(img, "user.vfsd.qos.bps", b"%d" % value)
                old = b"%d" % value
                new = b"%d" % (value + 1)
                armed["proc"] = proc
                t0 = time.monotonic()
                with self.assertRaises(OSError) as cm:
                    os.setxattr(img, "user.vfsd.qos.bps", new)
                took = time.monotonic() - t0
                self.assertIn(cm.exception.errno, (errno.EIO, errno.ETIMEDOUT))
                self.assertLess(took, TIMEOUT + 2)
                self.assertNotIn("proc", armed, "the server was not paused")
                self.g.resume()

                def readable():
                    try:
                        return os.getxattr(img, "user.vfsd.qos.bps")
                    except OSError as e:
                        self.assertIn(e.errno, (errno.EIO, errno.ETIMEDOUT))
                        return None
                harness.wait_for(readable, 30, "host a to read the limits again")
                # the server may still carry out what it received before
                # it stopped: read twice, a while apart
                for _ in range(2):
                    for got in (readable(), os.getxattr(b.path("s", "vm", "disk.img"),
                                                        "user.vfsd.qos.bps")):
                        self.assertIn(got, (old, new))
                    with open(sidecar, "rb") as f:
                        self.assertIn(f.read(), (b"user.vfsd.qos.bps=" + old + b"\n",
                                                 b"user.vfsd.qos.bps=" + new + b"\n"))
                    self.assertEqual([n for n in os.listxattr(img) if "qos" in n],
                                     ["user.vfsd.qos.bps"])
                    time.sleep(1)
                value += 10
                os.setxattr(img, "user.vfsd.qos.bps", b"%d" % value)
                self.assertEqual(os.getxattr(b.path("s", "vm", "disk.img"),
                                             "user.vfsd.qos.bps"), b"%d" % value)
        # what a change cut off left behind goes with the directory
        tdir = os.path.join(self.g.export, "vm", ".vfsd-qos", ".vfsd-qos")
        print("temporaries left: %s" % (os.listdir(tdir) if os.path.isdir(tdir) else None))
        os.unlink(img)
        os.rmdir(a.path("s", "vm"))
        self.assertFalse(os.path.exists(os.path.join(self.g.export, "vm")))


@unittest.skipIf(SKIP_NFS, SKIP_NFS)
class TwoHostsChange(harness.TestCase):
    """Two hosts (two daemons on one NFS export) change one image's stored
    limits at the same moment, again and again: every set the storage
    holds is one host's whole, never a mix of the two, and no change fails
    for the other's; a temporary a writer left when it died is never read
    as limits, and goes at the next change once old, or with the
    directory."""

    @classmethod
    def setUpClass(cls):
        cls.g = Ganesha().start()

    @classmethod
    def tearDownClass(cls):
        cls.g.stop()

    def host(self, name):
        v = Vfsd([("/s", self.g.url(version=3, cache_ttl=0))],
                 args=["--host-id", name]).start()
        self.addCleanup(v.stop)
        return v

    def test_changes_at_once_from_two_hosts(self):
        a, b = self.host("ha"), self.host("hb")
        d = "two%d" % os.getpid()
        os.mkdir(a.path("s", d))
        with open(a.path("s", d, "disk.img"), "wb") as f:
            f.write(b"d" * 4096)
        sidecar = os.path.join(self.g.export, d, ".vfsd-qos", "disk.img")
        line = re.compile(rb"user\.vfsd\.qos\.(bps|iops)=(\d+)\n")
        stop = threading.Event()
        errors, seen, made = [], [], {}

        def change(v, name, lengths):
            path = v.path("s", d, "disk.img")
            i = 0
            while not stop.is_set():
                made[name] = i
                # values of lengths that differ from one change to the
                # next, so that two texts written over each other show
                value = b"%d" % (10 ** lengths[i % len(lengths)] + i)
                try:
                    os.setxattr(path, "user.vfsd.qos." + name, value)
                except OSError as e:
                    errors.append((name, errno.errorcode.get(e.errno, e.errno)))
                i += 1

        def watch():
            while not stop.is_set():
                try:
                    with open(sidecar, "rb") as f:
                        text = f.read()
                except FileNotFoundError:
                    continue
                if line.sub(b"", text) != b"" or len(text) > 200:
                    seen.append(text)
        threads = [threading.Thread(target=change, args=(a, "bps", (15, 1, 9))),
                   threading.Thread(target=change, args=(b, "iops", (2, 12, 5))),
                   threading.Thread(target=watch)]
        for t in threads:
            t.start()
        time.sleep(4)
        stop.set()
        for t in threads:
            t.join(60)
        self.assertEqual(seen[:3], [], "mixed sets were stored")
        self.assertEqual(errors[:5], [], "changes failed")
        self.assertGreater(min(made.values()), 20, made)
        # each host reads a whole set (one of them may have lost the
        # other's last change, as with two setfattr at once)
        for v in (a, b):
            names = [n for n in os.listxattr(v.path("s", d, "disk.img")) if "qos" in n]
            self.assertIn("user.vfsd.qos.bps", names)
            self.assertLessEqual(set(names), {"user.vfsd.qos.bps", "user.vfsd.qos.iops"})

    def test_a_dead_writers_temporary(self):
        a, b = self.host("ha"), self.host("hb")
        d = "dead%d" % os.getpid()
        os.mkdir(a.path("s", d))
        img = a.path("s", d, "disk.img")
        with open(img, "wb") as f:
            f.write(b"d" * 4096)
        os.setxattr(img, "user.vfsd.qos.bps", b"5000")
        # what writers killed between their write and their rename left,
        # under this version's names and the former one's: an hour ago,
        # and just now (a writer that may still be at work)
        tdir = os.path.join(self.g.export, d, ".vfsd-qos", ".vfsd-qos")
        os.makedirs(tdir, exist_ok=True)
        old = ("hx.0123456789abcdef.77.1.tmp", "disk.img")
        for name in old + ("hy.0123456789abcdef.78.1.tmp",):
            with open(os.path.join(tdir, name), "wb") as f:
                f.write(b"user.vfsd.qos.bps=1\nuser.vfsd.qos.io")
            if name in old:
                hour_ago = time.time() - 3600
                os.utime(os.path.join(tdir, name), (hour_ago, hour_ago))
        for v in (a, b):
            path = v.path("s", d, "disk.img")
            self.assertEqual(os.getxattr(path, "user.vfsd.qos.bps"), b"5000")
            self.assertEqual([n for n in os.listxattr(path) if "qos" in n],
                             ["user.vfsd.qos.bps"])
        # the next change clears the old ones
        os.setxattr(b.path("s", d, "disk.img"), "user.vfsd.qos.iops", b"300")
        self.assertEqual(os.listdir(tdir), ["hy.0123456789abcdef.78.1.tmp"])
        self.assertEqual(os.getxattr(img, "user.vfsd.qos.iops"), b"300")
        with open(img, "rb") as f:
            f.read(1)
            shown = json.loads(vfsctl(a, "--json", "qos", "show", img).stdout)
        self.assertEqual([r["limits"] for r in shown], [{"bps": 5000, "iops": 300}])
        os.unlink(img)
        os.rmdir(a.path("s", d))
        self.assertFalse(os.path.exists(os.path.join(self.g.export, d)))


def _bytes_as_latin1(err):
    return "".join(chr(b) for b in err.object[err.start:err.end]), err.end


codecs.register_error("vfsd-test-bytes", _bytes_as_latin1)


class Reports(harness.TestCase):
    """The reports of open files and limits, through vfsctl and /.vfsd,
    with file names that are not UTF-8 (a name is any bytes): the JSON
    forms stay valid UTF-8 and JSON, each such byte as the character of
    its value; and a stat of a report does not make the report."""

    def setUp(self):
        self.dir = tmpdir("vfsd-qosf-")
        self.v = Vfsd(mounts=[("/l", "file://" + self.dir)]).start()
        self.addCleanup(self.v.stop)

    def test_names_that_are_not_utf8(self):
        names = [b"bad\xff\xfe-\xc3(-\xed\xa0\x80-\xc0\xaf-\xf4\x90\x80\x80-" +
                 "\u00e9\u20ac\U0001f600".encode() + b"\xe2\x82",
                 b"latin1-caf\xe9", "utf8-caf\u00e9 \"q\"\n\\".encode()]
        fds = []
        for name in names:
            path = os.path.join(os.fsencode(self.v.path("l")), name)
            with open(path, "wb") as f:
                f.write(b"x")
            os.setxattr(path, "user.vfsd.qos.bps", b"1000000")
            fds.append(os.open(path, os.O_RDONLY))
        self.addCleanup(lambda: [os.close(fd) for fd in fds])
        want = {"/l/" + n.decode("utf-8", "vfsd-test-bytes") for n in names}
        ctl = os.fsencode(self.v.path(".vfsd"))
        for what, text in (
                ("vfsctl files", vfsctl_bytes(self.v, "--json", "files")),
                ("files.json", read_bytes(os.path.join(ctl, b"files.json"))),
                ("vfsctl qos show", vfsctl_bytes(self.v, "--json", "qos", "show")),
                ("qos.json", read_bytes(os.path.join(ctl, b"qos.json")))):
            with self.subTest(what=what):
                path = os.path.join(tmpdir(), "report.json")
                with open(path, "wb") as f:
                    f.write(text)
                r = subprocess.run([sys.executable, "-m", "json.tool", path],
                                   capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
                got = {e["path"] for e in json.loads(text.decode("utf-8"))}
                self.assertEqual(got & want, want)
        # vfsctl top: such a byte shows as \xXX, as the text forms show
        # a control character, and a backslash as \\, so that two such
        # names stay apart
        top = vfsctl_bytes(self.v, "top", "-n", "1", "-d", "0.1")
        for shown in (b"/l/latin1-caf\\xe9", b"/l/bad\\xff\\xfe-\\xc3(-",
                      b"\\x0a\\\\"):
            self.assertIn(shown, top)

    def test_stat_of_a_report_makes_none(self):
        """A stat of /.vfsd/files by name says size 0 (as /proc does) and
        makes no list, however many files are open; an open one reads to
        its end."""
        many = os.path.join(self.dir, "many")
        os.mkdir(many)
        fds = []
        self.addCleanup(lambda: [os.close(fd) for fd in fds])
        for i in range(2000):
            fds.append(os.open(self.v.path("l", "many", "f%d" % i),
                               os.O_RDONLY | os.O_CREAT, 0o644))
        ctl = self.v.path(".vfsd")
        for name in ("files", "files.json", "qos", "qos.json", "status"):
            self.assertEqual(os.stat(os.path.join(ctl, name)).st_size, 0, name)
        t0 = time.monotonic()
        for _ in range(200):
            os.stat(os.path.join(ctl, "files"))
        took = time.monotonic() - t0
        print("200 stats of /.vfsd/files beside 2000 open files: %.3f s" % took)
        with open(os.path.join(ctl, "files.json"), "rb") as f:
            text = f.read()
        self.assertEqual(len(json.loads(text)), 2000)
        self.assertGreater(len(text), 100000)
        r = subprocess.run(["cat", os.path.join(ctl, "files")], capture_output=True)
        self.assertEqual(r.stdout.count(b"/l/many/f"), 2000)


class PausedSftp(FairSharingPausedBase, harness.TestCase):
    def setUp(self):
        from sshd import Sshd
        self.server = Sshd().start()
        self.addCleanup(self.server.stop)
        self.backing = tmpdir()

    def backend_url(self):
        return self.server.url(self.backing, cache_ttl=0, timeout=TIMEOUT)

    def vfsd_env(self):
        env = dict(os.environ, HOME=self.server.dir)
        env.pop("SSH_AUTH_SOCK", None)
        return env


class WaitsOfCallersUnseen(harness.TestCase):
    """A read or write waiting for its limit is given up (EINTR) when its
    caller is killed, and a read when its whole process is gone, both
    told from /proc.  What /proc cannot tell must leave a live caller's
    request waiting, as one with a limit does: EINTR from a regular file
    fails the callers that do not expect it."""

    def setUp(self):
        harness.require_root(self)
        self.dir = tmpdir("vfsd-qosc-")

    def start(self, cls=Vfsd):
        self.v = cls(mounts=[("/l", "file://%s?passthrough=no" % self.dir)]).start()
        self.addCleanup(self.v.stop)

    def waiting_child(self, write, charged, then=None):
        """A child process doing one O_DIRECT pread (or pwrite) of 4 KiB
        of /l/f that waits for the limit of 1000 B/s after `charged`
        bytes; then(pid) is called while it waits.  Its exit status: the
        call's errno, 0 for success (libc's call, which Python would
        repeat on EINTR)."""
        with open(os.path.join(self.dir, "f"), "wb") as f:
            f.write(b"r" * (charged + 4096))
        vfsctl(self.v, "qos", "set", self.v.path("l"),
               ("bps_wr=1000" if write else "bps_rd=1000"))
        fd = os.open(self.v.path("l", "f"), os.O_RDWR | os.O_DIRECT)
        buf = aligned(charged)
        if write:
            os.pwritev(fd, [buf], 0)
        else:
            os.preadv(fd, [buf], 0)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGUSR1, lambda *_: None)
            libc = ctypes.CDLL(None, use_errno=True)
            b = aligned(4096)
            addr = ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(b)))
            call = libc.pwrite if write else libc.pread
            n = call(fd, addr, ctypes.c_size_t(4096), ctypes.c_long(charged))
            os._exit(ctypes.get_errno() if n < 0 else 0 if n == 4096 else 99)
        try:
            time.sleep(0.5)
            self.assertEqual(os.waitpid(pid, os.WNOHANG), (0, 0), "not waiting")
            if then:
                then(pid)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                got, status = os.waitpid(pid, os.WNOHANG)
                if got:
                    return os.waitstatus_to_exitcode(status)
                time.sleep(0.05)
            self.fail("the child still waits")
        finally:
            with contextlib.suppress(ChildProcessError, ProcessLookupError):
                if os.waitpid(pid, os.WNOHANG) == (0, 0):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
            os.close(fd)

    def test_read_waits_when_vfsd_has_no_descriptor_left(self):
        """vfsd at its limit of open files while a live process's read
        waits for its limit: /proc cannot be read, which says nothing of
        the process, and the read is done when the limit lets it (it
        failed EINTR within a second: each thread of the process, not
        readable, was taken as gone)."""
        self.start()
        vp = self.v.proc.pid
        soft = {}

        def no_descriptor_left(pid):
            # one descriptor free below the limit: a directory of /proc
            # opens, a file in it does not
            fds = {int(x) for x in os.listdir("/proc/%d/fd" % vp)}
            free = [i for i in range(max(fds) + 3) if i not in fds]
            with open("/proc/%d/limits" % vp) as f:
                soft["was"] = re.search(r"Max open files\s+(\d+)", f.read()).group(1)
            subprocess.run(["prlimit", "--pid", str(vp), "--nofile=%d:" % free[1]],
                           check=True)
            self.addCleanup(subprocess.run, ["prlimit", "--pid", str(vp),
                                             "--nofile=%s:" % soft["was"]])
        t0 = time.monotonic()
        status = self.waiting_child(False, 6000, no_descriptor_left)
        subprocess.run(["prlimit", "--pid", str(vp), "--nofile=%s:" % soft["was"]],
                       check=True)
        self.assertEqual(status, 0, "the read failed: %s" % errno.errorcode.get(status))
        self.assertGreater(time.monotonic() - t0, 3, "the limit was not kept")

    def test_caller_outside_vfsds_pid_namespace(self):
        """vfsd in a PID namespace of its own (the kernel gives it pid 0
        for the callers outside) with the /proc of another: a signal that
        a caller handles leaves its write waiting (it failed EINTR: pid 0
        was taken for a caller gone), and its read too."""
        class NsVfsd(Vfsd):
            def command(self):
                return ["unshare", "--pid", "--fork", "--kill-child"] + super().command()
        self.start(NsVfsd)

        def usr1(pid):
            os.kill(pid, signal.SIGUSR1)
        for write in (True, False):
            vfsctl(self.v, "qos", "clear", self.v.path("l"), check=False)
            status = self.waiting_child(write, 3000, usr1)
            self.assertEqual(status, 0, "the %s failed: %s" % (
                "write" if write else "read", errno.errorcode.get(status)))


if __name__ == "__main__":
    harness.main()
