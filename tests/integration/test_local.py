# SPDX-License-Identifier: GPL-2.0-or-later
"""Local backend, router, command line and daemon life cycle, through the
real FUSE mount."""
import contextlib
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
        # the kernel checks modes (default_permissions): let others in
        os.chmod(cls.backing, 0o755)
        cls.vfsd = Vfsd([("/local", "file://" + cls.backing + cls.URL_OPTIONS)],
                        args=["-o", "allow_other,default_permissions"]).start()
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
        os.chmod(self.back, 0o755)
        self.v = Vfsd([("/local", "file://" + self.back),
                       ("/shared", "file://%s?shared=yes" % self.shared)],
                      args=["-o", "allow_other,default_permissions"]).start()
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
                   ("/data/archive2/deeper", "file://" + b),
                   ("/x/y/z", "file://" + root)]) as v:
            self.assertEqual(sorted(os.listdir(v.mnt)), ["data", "x"])
            self.assertEqual(sorted(os.listdir(v.path("data"))),
                             ["archive", "archive2", "in-a"])
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
            # a directory that only leads to a prefix has no xattrs, and
            # ls -l (which asks for some) lists it
            self.assertEqual(os.listxattr(v.path("data/archive2")), [])
            with self.assertRaises(OSError) as cm:
                os.getxattr(v.path("data/archive2"), "user.x")
            self.assertEqual(cm.exception.errno, errno.ENODATA)
            subprocess.run(["ls", "-l", v.path("data/archive2")], check=True,
                           stdout=subprocess.DEVNULL)
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


class LongPaths(harness.TestCase):
    """Paths inside the mount of PATH_MAX (4096) bytes and more, as the
    kernel sends them (any depth, each name at most NAME_MAX): every
    operation works as on the directory beneath, and the daemon still
    refuses a symlink anywhere in such a path.  The caller's own path
    would be too long, so everything goes through directory fds and
    fchdir, as pjdfstest does."""

    DEPTH = 24          # 24 names of 201 bytes: 4824 bytes below the root

    def names(self):
        return ["%02d" % i + "d" * 199 for i in range(self.DEPTH)]

    def chain(self, top, mkdir):
        """Open (creating with mkdir) the chain of names under top; returns
        the fd of every level, top first (closed at cleanup)."""
        fds = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
        self.addCleanup(os.close, fds[0])
        for name in self.names():
            if mkdir:
                os.mkdir(name, dir_fd=fds[-1])
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1])
            self.addCleanup(os.close, fd)
            fds.append(fd)
        return fds

    def in_dir(self, fd):
        """Work relative to fd from now until the test ends."""
        cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        self.addCleanup(os.close, cwd)
        self.addCleanup(os.fchdir, cwd)
        os.fchdir(fd)

    def check_ops(self, fd, bfd):
        """Every operation in the directory fd (through the mount), checked
        in bfd (the same directory beneath)."""
        def back(name):
            return os.stat(name, dir_fd=bfd, follow_symlinks=False)

        # names of 100 bytes: past PATH_MAX with the path of a directory
        # that is a little short of it
        F, L, P, SUB, H, H2 = (c * 100 for c in "flpshg")
        before = sorted(os.listdir(bfd))

        f = os.open(F, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=fd)
        os.write(f, b"hello world")
        os.close(f)
        self.assertEqual(os.stat(F, dir_fd=fd).st_size, 11)
        self.assertEqual(back(F).st_size, 11)
        os.chmod(F, 0o640, dir_fd=fd)
        self.assertEqual(back(F).st_mode & 0o7777, 0o640)
        os.chown(F, 1234, 5678, dir_fd=fd)
        self.assertEqual((back(F).st_uid, back(F).st_gid), (1234, 5678))
        self.in_dir(fd)
        os.truncate(F, 5)
        self.assertEqual(back(F).st_size, 5)
        os.utime(F, ns=(1000000000, 2000000000), dir_fd=fd)
        self.assertEqual((back(F).st_atime_ns, back(F).st_mtime_ns),
                         (1000000000, 2000000000))
        os.setxattr(F, "user.k", b"v")
        self.assertEqual(os.getxattr(F, "user.k"), b"v")
        self.assertIn("user.k", os.listxattr(F))
        b = os.open(F, os.O_RDONLY, dir_fd=bfd)
        try:
            self.assertEqual(os.getxattr(b, "user.k"), b"v")
        finally:
            os.close(b)
        os.removexattr(F, "user.k")
        self.assertNotIn("user.k", os.listxattr(F))
        f = os.open(F, os.O_RDONLY, dir_fd=fd)
        try:
            self.assertEqual(os.read(f, 100), b"hello")
        finally:
            os.close(f)
        os.symlink("some/target", L, dir_fd=fd)
        self.assertEqual(os.readlink(L, dir_fd=fd), "some/target")
        self.assertEqual(os.readlink(L, dir_fd=bfd), "some/target")
        os.utime(L, ns=(3000000000, 4000000000), dir_fd=fd, follow_symlinks=False)
        self.assertEqual(back(L).st_mtime_ns, 4000000000)
        os.link(F, H, src_dir_fd=fd, dst_dir_fd=fd)
        self.assertEqual(back(F).st_nlink, 2)
        os.rename(H, H2, src_dir_fd=fd, dst_dir_fd=fd)
        self.assertEqual(back(H2).st_ino, back(F).st_ino)
        os.unlink(H2, dir_fd=fd)
        self.assertEqual(back(F).st_nlink, 1)
        os.mkdir(SUB, 0o700, dir_fd=fd)
        self.assertTrue(stat.S_ISDIR(back(SUB).st_mode))
        os.mkfifo(P, dir_fd=fd)
        self.assertTrue(stat.S_ISFIFO(back(P).st_mode))
        self.assertEqual(sorted(os.listdir(fd)), sorted(before + [F, L, P, SUB]))
        self.assertEqual(sorted(os.listdir(fd)), sorted(os.listdir(bfd)))
        os.rmdir(SUB, dir_fd=fd)
        for name in (F, L, P):
            os.unlink(name, dir_fd=fd)
        self.assertEqual(sorted(os.listdir(bfd)), before)

    def test_operations_beyond_path_max(self):
        backing = tmpdir()
        # stopped after the fds and the working directory are let go
        v = Vfsd([("/l", "file://" + backing)]).start()
        self.addCleanup(v.stop)
        if True:
            fds = self.chain(v.path("l"), mkdir=True)
            bfds = self.chain(backing, mkdir=False)
            # the deepest directory: its own path is past PATH_MAX
            with self.subTest(level=self.DEPTH):
                self.check_ops(fds[-1], bfds[-1])
            # a directory whose path fits (4020 bytes), but not with a
            # name appended
            level = 20
            with self.subTest(level=level):
                self.check_ops(fds[level], bfds[level])
            # renamed from beyond PATH_MAX to near the top, and back
            write_file("/proc/self/fd/%d/moved" % fds[-1], b"m")
            os.rename("moved", "moved", src_dir_fd=fds[-1], dst_dir_fd=fds[1])
            self.assertEqual(os.stat("moved", dir_fd=bfds[1]).st_size, 1)
            os.rename("moved", "back", src_dir_fd=fds[1], dst_dir_fd=fds[-1])
            self.assertEqual(os.stat("back", dir_fd=bfds[-1]).st_size, 1)

    def test_symlink_in_a_long_path_is_refused(self):
        """A directory of a long path swapped for a symlink beneath the
        mount (as in Confinement): the daemon neither follows it nor
        touches what it points to, in the first piece of the walk or a
        later one."""
        top = tmpdir()
        root, outside = os.path.join(top, "root"), os.path.join(top, "outside")
        os.mkdir(root)
        os.mkdir(outside)
        names = self.names()
        v = Vfsd([("/c", "file://%s?cache_ttl=30" % root)]).start()
        self.addCleanup(v.stop)
        if True:
            fds = self.chain(v.path("c"), mkdir=True)
            write_file("/proc/self/fd/%d/f" % fds[-1], b"inside")
            for level in (0, self.DEPTH - 2):
                with self.subTest(level=level):
                    # outside holds what the rest of the path names, so a
                    # daemon that followed the link would find a file
                    tail = os.path.join(outside, str(level))
                    os.mkdir(tail)
                    ofd = os.open(tail, os.O_RDONLY | os.O_DIRECTORY)
                    self.addCleanup(os.close, ofd)
                    for name in names[level + 1:]:
                        os.mkdir(name, dir_fd=ofd)
                        ofd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=ofd)
                        self.addCleanup(os.close, ofd)
                    write_file("/proc/self/fd/%d/f" % ofd, b"SECRET")
                    parent = self.chain(root, mkdir=False)[level]
                    os.rename(names[level], "real", src_dir_fd=parent, dst_dir_fd=parent)
                    os.symlink(tail, names[level], dir_fd=parent)
                    try:
                        for what, fn in (
                                ("chmod", lambda: os.chmod("f", 0o600, dir_fd=fds[-1])),
                                ("create", lambda: os.close(os.open(
                                    "new", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fds[-1]))),
                                ("mkdir", lambda: os.mkdir("newdir", dir_fd=fds[-1])),
                                ("setxattr", lambda: os.setxattr(
                                    "/proc/self/fd/%d/f" % fds[-1], "user.x", b"1")),
                                ("listdir", lambda: os.listdir(fds[-1]))):
                            with self.assertRaises(OSError, msg=what) as cm:
                                fn()
                            self.assertEqual(cm.exception.errno, errno.ELOOP, what)
                    finally:
                        os.unlink(names[level], dir_fd=parent)
                        os.rename("real", names[level], src_dir_fd=parent, dst_dir_fd=parent)
                    self.assertEqual(os.listdir(ofd), ["f"])
                    st = os.stat("f", dir_fd=ofd)
                    self.assertEqual(st.st_mode & 0o777, 0o644)
                    self.assertEqual(read_file("/proc/self/fd/%d/f" % ofd), b"SECRET")
                    with self.assertRaises(OSError):
                        os.getxattr("/proc/self/fd/%d/f" % ofd, "user.x")
            # and the mount works again once the tree is whole
            self.assertEqual(sorted(os.listdir(fds[-1])), ["f"])
            os.chmod("f", 0o600, dir_fd=fds[-1])


class LockRecordsName(harness.TestCase):
    """.vfsd-locks is vfsd's own only where lease records live, on shared
    mounts (test_locks.py); on a plain mount it is a name like any other."""

    def test_plain_mount_lists_copies_and_keeps_it(self):
        backing, outside = tmpdir(), tmpdir()
        os.makedirs(os.path.join(backing, "pre", ".vfsd-locks"))
        write_file(os.path.join(backing, "pre", ".vfsd-locks", "note"), b"mine")
        with Vfsd([("/l", "file://" + backing)]) as v:
            self.assertEqual(os.listdir(v.path("l", "pre")), [".vfsd-locks"])
            self.assertEqual(read_file(v.path("l", "pre", ".vfsd-locks", "note")), b"mine")
            d = v.path("l", "d")
            os.makedirs(os.path.join(d, ".vfsd-locks", "sub"))
            write_file(os.path.join(d, ".vfsd-locks", "sub", "f"), b"data")
            self.assertEqual(os.listdir(d), [".vfsd-locks"])
            self.assertTrue(os.path.isdir(os.path.join(d, ".vfsd-locks")))
            # what looks like a lease record is a user's file, not a lock
            os.makedirs(os.path.join(d, ".vfsd-locks", "img"))
            write_file(os.path.join(d, ".vfsd-locks", "img", "hostZ.0123456789abcdef.1.1.lease"),
                       b"garbage\n")
            write_file(os.path.join(d, "img"), b"\0" * 4096)
            self.assertEqual(os.getxattr(os.path.join(d, "img"), "user.vfsd.image.locked_by"),
                             b"")
            os.unlink(os.path.join(d, "img"))
            for dest in (v.path("l", "copy"), os.path.join(outside, "copy")):
                subprocess.run(["cp", "-r", d, dest], check=True)
                self.assertEqual(read_file(os.path.join(dest, ".vfsd-locks", "sub", "f")),
                                 b"data")
            self.assertEqual(read_file(os.path.join(backing, "copy", ".vfsd-locks", "sub", "f")),
                             b"data")
            # a directory holding only it is not empty (no lease clean-up)
            with self.assertRaises(OSError) as cm:
                os.rmdir(d)
            self.assertEqual(cm.exception.errno, errno.ENOTEMPTY)
            self.assertEqual(read_file(os.path.join(backing, "d", ".vfsd-locks", "sub", "f")),
                             b"data")
            subprocess.run(["rm", "-r", d], check=True)
            self.assertFalse(os.path.exists(os.path.join(backing, "d")))


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

    def test_sigterm_closes_files_still_open(self):
        """vfsd stopped while programs still hold files open gets no
        RELEASE for them from the kernel: it closes their handles itself
        (write-behind queues, server handles) and says so, rather than
        forget them (CI's sanitizer run reported them as leaks); and a
        stop asked for by SIGTERM is a clean exit, status 0 (it was 1,
        which leaves a systemd unit failed)."""
        d = tmpdir()
        v = Vfsd([("/l", "file://" + d)]).start()
        self.addCleanup(v.stop)
        fds = [os.open(v.path("l", "f%d" % i), os.O_RDWR | os.O_CREAT, 0o644)
               for i in range(3)]
        os.write(fds[0], b"open at the end")
        v.proc.send_signal(signal.SIGTERM)
        rc = v.proc.wait(30)
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        v.killed = True         # stopped here: its cleanup only unmounts
        self.assertEqual(rc, 0, v.log())
        self.assertIn("closed 3 files still open at the end", v.log())
        self.assertEqual(read_file(os.path.join(d, "f0")), b"open at the end")

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
        self.assertTrue(harness.wait_reaped(v.proc, 30),
                        "vfsd did not die of SIGKILL: a thread of it is stuck")
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
        with Vfsd([("/l", "file://" + d)],
                  args=["-o", "allow_other,default_permissions"]) as v:
            with open("/proc/self/mountinfo") as f:
                line = [ln for ln in f if v.mnt in ln][0]
            self.assertIn("allow_other", line)
            self.assertIn("fuse.vfsd", line)


if __name__ == "__main__":
    harness.main()
