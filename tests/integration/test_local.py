# SPDX-License-Identifier: GPL-2.0-or-later
"""Local backend, router, command line and daemon life cycle, through the
real FUSE mount."""
import errno
import mmap
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, tmpdir  # noqa: E402
from link_suite import LinkSuite  # noqa: E402
from posix_suite import PosixSuite, read_file, write_file  # noqa: E402


def kernel_passthrough(v, prefix):
    """Whether files under prefix take the kernel's passthrough path: after
    one open, the daemon knows whether the kernel accepts backing files."""
    probe = v.path(prefix, ".vfsd-test-probe")
    write_file(probe, b"")
    os.unlink(probe)
    return v.mount_info(prefix)["passthrough"]


class LocalPosix(PosixSuite, harness.TestCase):
    """The shared operation suite on a file:// mount (default options: the
    kernel's passthrough where it has it)."""
    URL_OPTIONS = ""

    @classmethod
    def setUpClass(cls):
        cls.backing = tmpdir()
        cls.vfsd = Vfsd([("/local", "file://" + cls.backing + cls.URL_OPTIONS)],
                        args=["-o", "allow_other"]).start()
        cls.passthrough = kernel_passthrough(cls.vfsd, "/local")
        cls.CAPS = PosixSuite.CAPS
        if cls.passthrough:
            cls.CAPS = PosixSuite.CAPS | {"o_direct_backing_alignment"}
        elif not cls.URL_OPTIONS:
            print("note: %s: this kernel gives no FUSE passthrough; the suite runs "
                  "on the daemon's path" % cls.__name__, file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        cls.vfsd.stop()

    def setUp(self):
        self.base = self.vfsd.path("local")
        super().setUp()

    def backing_path(self, name):
        return os.path.join(self.backing, "%s-%s" % (name, self._testMethodName))

    def test_data_lands_in_backing_dir(self):
        data = os.urandom(100000)
        write_file(self.p("f"), data)
        rel = os.path.relpath(self.p("f"), self.base)
        self.assertEqual(read_file(os.path.join(self.backing, rel)), data)
        # and a change made behind vfsd is seen at the next open
        write_file(os.path.join(self.backing, rel + ".2"), b"behind")
        self.assertEqual(read_file(self.p("f.2")), b"behind")


class LocalPosixNoPassthrough(LocalPosix):
    """The same suite with passthrough = no: every read and write goes
    through the daemon."""
    URL_OPTIONS = "?passthrough=no"

    def test_io_reaches_the_daemon(self):
        self.assertFalse(self.passthrough)
        before = self.vfsd.stats("/local")
        write_file(self.p("f"), b"x" * 5000)
        self.assertEqual(read_file(self.p("f")), b"x" * 5000)
        after = self.vfsd.stats("/local")
        self.assertEqual(after["bytes_written"] - before["bytes_written"], 5000)
        self.assertGreaterEqual(after["ops"]["write"] - before["ops"]["write"], 1)


class LocalLinks(LinkSuite, harness.TestCase):
    """Hard links on a file:// mount (default options)."""
    URL_OPTIONS = ""

    @classmethod
    def setUpClass(cls):
        cls.backing = tmpdir()
        cls.vfsd = Vfsd([("/local", "file://" + cls.backing + cls.URL_OPTIONS)]).start()

    @classmethod
    def tearDownClass(cls):
        cls.vfsd.stop()

    def setUp(self):
        self.base = self.vfsd.path("local")
        super().setUp()

    def behind(self, path):
        return os.path.join(self.backing, os.path.relpath(path, self.base))


    def test_name_removed_behind_vfsd(self):
        """The name requests of a linked file went through is removed by
        someone else: once the kernel asks for the other name again,
        requests go through that one."""
        self.cached_file("a")
        os.link(self.p("a"), self.p("b"))
        self.assertEqual(os.stat(self.p("b")).st_nlink, 2)
        os.unlink(self.behind(self.p("a")))
        time.sleep(1.5)         # past the entry timeout (cache_ttl 1)
        os.chmod(self.p("b"), 0o600)
        sb = os.stat(self.p("b"))
        self.assertEqual((stat.S_IMODE(sb.st_mode), sb.st_nlink), (0o600, 1))
        self.assertEqual(read_file(self.p("b")), b"linked")
        self.assertFalse(os.path.exists(self.p("a")))


class LocalLinksNoPassthrough(LocalLinks):
    """The same with every read and write through the daemon."""
    URL_OPTIONS = "?passthrough=no"


class LinksAcrossMounts(harness.TestCase):
    def test_two_mounts_of_one_directory(self):
        """The node table keys files by mount as well as inode number: the
        same file through a read-only second mount of the directory is
        another node, so nothing done through it reaches the writable
        mount's paths."""
        d = tmpdir()
        cfg = ("[mount /rw]\nurl = file://%s\n\n"
               "[mount /ro]\nurl = file://%s\nreadonly = yes\n" % (d, d))
        with Vfsd(config_text=cfg) as v:
            write_file(v.path("rw/a"), b"data")
            os.link(v.path("rw/a"), v.path("rw/b"))
            self.assertEqual(os.stat(v.path("rw/a")).st_nlink, 2)
            for name in ("a", "b"):
                self.assertEqual(os.stat(v.path("ro", name)).st_nlink, 2)
                with self.assertRaises(OSError) as cm:
                    os.chmod(v.path("ro", name), 0o600)
                self.assertEqual(cm.exception.errno, errno.EROFS)
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, "a")).st_mode), 0o644)
            os.chmod(v.path("rw/b"), 0o640)
            self.assertEqual(stat.S_IMODE(os.stat(v.path("rw/a")).st_mode), 0o640)
            self.assertNotEqual(os.stat(v.path("rw/a")).st_ino,
                                os.stat(v.path("ro/a")).st_ino)


class Passthrough(harness.TestCase):
    """The kernel's FUSE passthrough (Linux 6.9+) on local mounts: reads,
    writes and mmaps go to the backing file without the daemon."""

    def setUp(self):
        self.back, self.shared = tmpdir(), tmpdir()
        self.v = Vfsd([("/local", "file://" + self.back),
                       ("/shared", "file://%s?shared=yes" % self.shared)],
                      args=["-o", "allow_other"]).start()
        self.addCleanup(self.v.stop)
        if not kernel_passthrough(self.v, "/local"):
            raise unittest.SkipTest("this kernel gives no FUSE passthrough "
                                    "(Linux 6.9+, CONFIG_FUSE_PASSTHROUGH, root); log:\n"
                                    + self.v.log())

    def test_io_bypasses_the_daemon(self):
        data = os.urandom(3 << 20)
        before = self.v.stats("/local")
        write_file(self.v.path("local/f"), data)
        self.assertEqual(read_file(self.v.path("local/f")), data)
        with open(self.v.path("local/f"), "r+b") as f:
            m = mmap.mmap(f.fileno(), 0)
            m[100:105] = b"mmap!"
            m.flush()
            m.close()
        after = self.v.stats("/local")
        with open(os.path.join(self.back, "f"), "rb") as f:
            got = f.read()
        self.assertEqual(got, data[:100] + b"mmap!" + data[105:])
        self.assertEqual(os.stat(self.v.path("local/f")).st_size, len(data))
        # the files were created and opened by the daemon ...
        self.assertEqual(after["ops"]["create"] - before["ops"]["create"], 1)
        # ... but their data never passed through it
        for op in ("read", "write"):
            self.assertEqual(after["ops"][op], before["ops"][op], op)
        self.assertEqual(after["bytes_written"], before["bytes_written"])
        self.assertIn("kernel passthrough: on", self.v.log())

    def test_every_kind_of_open_of_one_file_works_together(self):
        path = self.v.path("local/img")
        write_file(path, b"\0" * 65536)
        buffered = os.open(path, os.O_RDWR)
        direct = os.open(path, os.O_RDWR | os.O_DIRECT)
        ro = os.open(path, os.O_RDONLY)
        app = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            block = mmap.mmap(-1, 4096)
            block[:] = b"D" * 4096
            self.assertEqual(os.pwrite(direct, block, 8192), 4096)
            self.assertEqual(os.pread(ro, 4096, 8192), b"D" * 4096)
            os.pwrite(buffered, b"buffered", 0)
            self.assertEqual(os.pread(ro, 8, 0), b"buffered")
            os.write(app, b"tail")
            out = mmap.mmap(-1, 4096)
            self.assertEqual(os.preadv(direct, [out], 0), 4096)
            self.assertEqual(out[:8], b"buffered")
            os.fsync(buffered)
        finally:
            for fd in (buffered, direct, ro, app):
                os.close(fd)
        got = read_file(os.path.join(self.back, "img"))
        self.assertEqual(len(got), 65536 + 4)
        self.assertEqual(got[:8], b"buffered")
        self.assertEqual(got[8192:12288], b"D" * 4096)
        self.assertEqual(got[-4:], b"tail")

    def test_setuid_gained_while_open_is_dropped_when_writer_closes(self):
        """A passthrough writer's writes never reach vfsd: a file made
        setuid while someone without CAP_FSETID has it open for writing
        loses the bit when that writer closes it (it cannot be executed
        before: ETXTBSY)."""
        os.chmod(os.path.dirname(self.v.mnt), 0o755)
        f = self.v.path("local/prog")
        write_file(f, b"#!/bin/sh\n")
        os.chmod(f, 0o777)
        writer = subprocess.Popen(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "python3", "-c",
             "import sys\n"
             "f = open(sys.argv[1], 'r+b')\n"
             "print('open', flush=True)\n"
             "sys.stdin.readline()\n"
             "f.write(b'#!/bin/sh\\necho owned\\n')\n"
             "f.close()\n", f],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(writer.stdout.readline().strip(), "open")
            os.chmod(f, 0o4777)
            writer.stdin.write("go\n")
            writer.stdin.flush()
            self.assertEqual(writer.wait(timeout=30), 0)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
        self.assertEqual(os.stat(os.path.join(self.back, "prog")).st_mode & 0o7777, 0o777)
        # root's own writes keep it (CAP_FSETID), as on any file system
        os.chmod(f, 0o4777)
        with open(f, "r+b") as fh:
            fh.write(b"#")
        self.assertEqual(os.stat(os.path.join(self.back, "prog")).st_mode & 0o7777, 0o4777)

    def test_shared_mounts_keep_the_daemon_path(self):
        """Cross-host lock fencing needs every write of a shared mount."""
        self.assertFalse(self.v.mount_info("/shared")["passthrough"])
        before = self.v.stats("/shared")
        write_file(self.v.path("shared/f"), b"y" * 3000)
        after = self.v.stats("/shared")
        self.assertEqual(after["bytes_written"] - before["bytes_written"], 3000)

    def test_backing_file_system_too_deep_falls_back(self):
        """A directory on a FUSE mount that itself passes through (stack
        depth 1) cannot back another passthrough: the kernel refuses the
        backing file and those files take the daemon's path, correctly."""
        os.mkdir(self.v.path("local/inner"))
        with Vfsd([("/deep", "file://" + self.v.path("local/inner"))]) as inner:
            data = os.urandom(200000)
            write_file(inner.path("deep/f"), data)
            self.assertEqual(read_file(inner.path("deep/f")), data)
            self.assertEqual(read_file(os.path.join(self.back, "inner", "f")), data)
            self.assertEqual(inner.stats("/deep")["bytes_written"], len(data))


class Namespace(harness.TestCase):
    def test_nested_prefixes_and_virtual_dirs(self):
        a, b, root = tmpdir(), tmpdir(), tmpdir()
        write_file(os.path.join(a, "in-a"), b"A")
        write_file(os.path.join(b, "in-b"), b"B")
        write_file(os.path.join(root, "in-root"), b"R")
        with Vfsd([("/data", "file://" + a), ("/data/archive", "file://" + b),
                   ("/x/y/z", "file://" + root)]) as v:
            self.assertEqual(sorted(os.listdir(v.mnt)), ["data", "x"])
            self.assertEqual(sorted(os.listdir(v.path("data"))), ["archive", "in-a"])
            self.assertEqual(os.listdir(v.path("data/archive")), ["in-b"])
            self.assertEqual(read_file(v.path("data/archive/in-b")), b"B")
            self.assertEqual(os.listdir(v.path("x")), ["y"])
            self.assertEqual(read_file(v.path("x/y/z/in-root")), b"R")
            # virtual directories are read-only
            self.assertEqual(os.stat(v.path("x")).st_mode & 0o777, 0o555)
            with self.assertRaises(OSError) as cm:
                os.mkdir(v.path("x/new"))
            self.assertEqual(cm.exception.errno, errno.EROFS)
            with self.assertRaises(OSError) as cm:
                os.rmdir(v.path("data/archive"))
            self.assertIn(cm.exception.errno, (errno.EBUSY, errno.ENOTEMPTY))
            # rename and link across mounts: EXDEV, so mv copies
            write_file(v.path("data/moveme"), b"M")
            with self.assertRaises(OSError) as cm:
                os.rename(v.path("data/moveme"), v.path("data/archive/moved"))
            self.assertEqual(cm.exception.errno, errno.EXDEV)
            with self.assertRaises(OSError) as cm:
                os.link(v.path("data/moveme"), v.path("x/y/z/linked"))
            self.assertEqual(cm.exception.errno, errno.EXDEV)
            subprocess.run(["mv", v.path("data/moveme"), v.path("data/archive/moved")],
                           check=True)
            self.assertEqual(read_file(os.path.join(b, "moved")), b"M")
            self.assertFalse(os.path.exists(os.path.join(a, "moveme")))
            # inode numbers differ across mounts even for equal backing inodes
            self.assertNotEqual(os.stat(v.path("data")).st_ino,
                                os.stat(v.path("data/archive")).st_ino)

    def test_root_mapped_and_shadowed(self):
        root, inner = tmpdir(), tmpdir()
        os.mkdir(os.path.join(root, "sub"))
        write_file(os.path.join(root, "sub", "hidden"), b"under the mount")
        write_file(os.path.join(inner, "shown"), b"S")
        with Vfsd([("/", "file://" + root), ("/sub", "file://" + inner)]) as v:
            self.assertEqual(os.listdir(v.path("sub")), ["shown"])
            write_file(v.path("top"), b"T")
            self.assertEqual(read_file(os.path.join(root, "top")), b"T")
            self.assertIn("sub", os.listdir(v.mnt))

    def test_readonly_mount(self):
        d = tmpdir()
        write_file(os.path.join(d, "f"), b"ro")
        cfg = "[mount /ro]\nurl = file://%s\nreadonly = yes\n" % d
        with Vfsd(config_text=cfg) as v:
            self.assertEqual(read_file(v.path("ro/f")), b"ro")
            for fn, args in ((write_file, (v.path("ro/g"), b"x")),
                             (os.unlink, (v.path("ro/f"),)),
                             (os.mkdir, (v.path("ro/d"),)),
                             (os.chmod, (v.path("ro/f"), 0o600)),
                             (os.open, (v.path("ro/f"), os.O_WRONLY))):
                with self.assertRaises(OSError) as cm:
                    fn(*args)
                self.assertEqual(cm.exception.errno, errno.EROFS, fn)

    def test_eacces_for_other_user(self):
        d = tmpdir()
        os.chmod(d, 0o755)
        with Vfsd([("/l", "file://" + d)],
                  args=["-o", "allow_other,default_permissions"]) as v:
            write_file(v.path("l/secret"), b"s", 0o600)
            write_file(v.path("l/public"), b"p", 0o644)
            os.chmod(os.path.dirname(v.mnt), 0o755)

            def as_nobody(cmd):
                return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                                       "--clear-groups", "sh", "-c", cmd],
                                      capture_output=True, text=True)
            r = as_nobody("cat %s" % v.path("l/secret"))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("Permission denied", r.stderr)
            r = as_nobody("cat %s" % v.path("l/public"))
            self.assertEqual((r.returncode, r.stdout), (0, "p"))
            r = as_nobody("touch %s" % v.path("l/new"))
            self.assertIn("Permission denied", r.stderr)
            # a directory the user may write: new files are the user's
            os.mkdir(v.path("l/open"))
            os.chmod(v.path("l/open"), 0o777)
            r = as_nobody("echo hi > %s" % v.path("l/open/mine"))
            self.assertEqual(r.returncode, 0, r.stderr)
            st = os.stat(os.path.join(d, "open", "mine"))
            self.assertEqual((st.st_uid, st.st_gid), (65534, 65534))


class Confinement(harness.TestCase):
    def test_swap_dir_for_symlink_race(self):
        """A directory swapped for a symlink to outside while requests are
        in flight: nothing outside the root is ever read or written."""
        # The link is relative: the kernel, which follows symlinks of the
        # mount itself, resolves it inside the mount (where nothing is);
        # only a daemon that followed it below its root would reach outside.
        top = tmpdir()
        root, outside = os.path.join(top, "root"), os.path.join(top, "outside")
        os.mkdir(root)
        os.mkdir(outside)
        write_file(os.path.join(outside, "f"), b"SECRET")
        os.mkdir(os.path.join(root, "d"))
        write_file(os.path.join(root, "d", "f"), b"inside")
        before = sorted(os.listdir(outside))
        stop = threading.Event()
        swaps = [0]

        def swapper():
            d, real = os.path.join(root, "d"), os.path.join(root, "d.real")
            while not stop.is_set():
                os.rename(d, real)
                os.symlink("../outside", d)
                os.unlink(d)
                os.rename(real, d)
                swaps[0] += 1

        with Vfsd([("/c", "file://%s?cache_ttl=0" % root)]) as v:
            t = threading.Thread(target=swapper)
            t.start()
            seen, errors = set(), 0
            # 4 s of races at least; on a loaded machine (ASan, CI) go on,
            # up to 30 s, until one read has landed between two swaps
            start = time.monotonic()
            i = 0
            try:
                while (time.monotonic() < start + 4 or
                       (b"inside" not in seen and time.monotonic() < start + 30)):
                    i += 1
                    try:
                        seen.add(read_file(v.path("c/d/f")))
                    except OSError:
                        errors += 1
                    for fn in (lambda: write_file(v.path("c/d/new%d" % i), b"x"),
                               lambda: os.chmod(v.path("c/d/f"), 0o600),
                               lambda: os.truncate(v.path("c/d/f"), 6),
                               lambda: os.setxattr(v.path("c/d/f"), "user.x", b"1"),
                               lambda: os.unlink(v.path("c/d/new%d" % i))):
                        try:
                            fn()
                        except OSError:
                            errors += 1
            finally:
                stop.set()
                t.join()
        self.assertGreater(swaps[0], 10)
        self.assertIn(b"inside", seen)  # the mount kept working meanwhile
        self.assertNotIn(b"SECRET", seen)
        self.assertEqual(sorted(os.listdir(outside)), before)
        self.assertEqual(read_file(os.path.join(outside, "f")), b"SECRET")
        self.assertEqual(os.stat(os.path.join(outside, "f")).st_mode & 0o777, 0o644)
        with self.assertRaises(OSError):
            os.getxattr(os.path.join(outside, "f"), "user.x")


class CommandLine(harness.TestCase):
    def assertStartupError(self, args, needle):
        mnt = tmpdir()
        r = harness.run_vfsd(list(args) + [mnt])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(needle, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertFalse(harness.is_mounted(mnt))

    def test_startup_errors(self):
        d = tmpdir()
        self.assertStartupError(["-m", "/a=gopher://x/y"], "unknown URL scheme 'gopher'")
        self.assertStartupError(["-m", "/a=relative/path"], "relative/path")
        self.assertStartupError(["-m", "a=file:///tmp"], "absolute")
        self.assertStartupError(["-m", "/a=file://%s" % d, "-m", "/a/=file://%s" % d],
                                "already mapped")
        self.assertStartupError(["-m", "/a=file:///nonexistent/dir"], "/nonexistent/dir")
        self.assertStartupError(["-m", "/a=file://%s?bogus=1" % d], "unknown option 'bogus'")
        self.assertStartupError(["-c", "/nonexistent.conf"], "/nonexistent.conf")
        cfg = os.path.join(d, "bad.conf")
        with open(cfg, "w") as f:
            f.write("[mount /a]\nurl = file://%s\nfrobnicate = 1\n" % d)
        self.assertStartupError(["-c", cfg], "bad.conf:3")
        with open(cfg, "w") as f:
            f.write("[mount /a]\nreadonly = maybe\n")
        self.assertStartupError(["-c", cfg], "bad.conf:2")
        os.chmod(cfg, 0)
        # root reads anything: unreadable means "not a file" here
        self.assertStartupError(["-c", d], "not a regular file")

    def test_help_version(self):
        r = harness.run_vfsd(["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("-m PREFIX=URL", r.stdout)
        r = harness.run_vfsd(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("vfsd "))

    def test_daemon_mode_and_signals(self):
        d, mnt = tmpdir(), tmpdir()
        r = harness.run_vfsd(["-m", "/l=file://" + d, mnt])
        self.assertEqual(r.returncode, 0, r.stderr)
        # usable on the next line, as with sshfs
        write_file(os.path.join(mnt, "l", "f"), b"daemon")
        self.assertEqual(read_file(os.path.join(d, "f")), b"daemon")
        pid = int(subprocess.run(["pgrep", "-f", "vfsd -m /l=file://" + d],
                                 capture_output=True, text=True).stdout.split()[0])
        os.kill(pid, signal.SIGTERM)
        harness.wait_for(lambda: not harness.is_mounted(mnt), 10, "unmount on SIGTERM")
        harness.wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10, "daemon exit")

        r = harness.run_vfsd(["-m", "/l=file://" + d, mnt])
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = int(subprocess.run(["pgrep", "-f", "vfsd -m /l=file://" + d],
                                 capture_output=True, text=True).stdout.split()[0])
        subprocess.run(["fusermount3", "-u", mnt], check=True)
        harness.wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10,
                         "daemon exit after fusermount3 -u")

    def test_stale_mount_point(self):
        d = tmpdir()
        v = Vfsd([("/l", "file://" + d)]).start()
        v.kill(signal.SIGKILL)
        v.proc.wait()
        r = harness.run_vfsd(["-m", "/l=file://" + d, v.mnt])
        self.assertEqual(r.returncode, 2)
        self.assertIn("stale FUSE mount", r.stderr)
        self.assertIn("fusermount3 -u", r.stderr)
        v.stop()

    def test_default_namespace(self):
        if os.path.exists("/etc/vfsd/vfsd.conf"):
            self.skipTest("/etc/vfsd/vfsd.conf exists on this machine; the default "
                          "namespace is only served without it")
        with Vfsd() as v:
            self.assertEqual(os.listdir(v.mnt), ["local"])
            self.assertTrue(os.path.isdir("/var/lib/vfsd/local"))
            self.assertIn("default namespace", v.log())

    def test_fuse_options(self):
        d = tmpdir()
        r = harness.run_vfsd(["-f", "-o", "no_such_option", "-m", "/l=file://" + d, tmpdir()])
        self.assertEqual(r.returncode, 2)
        with Vfsd([("/l", "file://" + d)], args=["-o", "allow_other"]) as v:
            with open("/proc/self/mountinfo") as f:
                line = [ln for ln in f if v.mnt in ln][0]
            self.assertIn("allow_other", line)
            self.assertIn("fuse.vfsd", line)


if __name__ == "__main__":
    harness.main()
