# SPDX-License-Identifier: GPL-2.0-or-later
"""Hard links through the real FUSE mount, for backends with stable inode
numbers (local, NFS): every name of one file is one kernel inode, so what
is done through one name is seen through the others at once, with the
mount's default attribute cache and no waiting.

A test class mixes LinkSuite into harness.TestCase and provides
`self.base` (a directory inside a vfsd mount) and `self.behind(path)`, the
same file seen behind vfsd's back (the backing directory, the export), in
setUp; each test works in a fresh subdirectory of the base.
"""
import errno
import fcntl
import mmap
import os
import shutil
import stat
import subprocess
import sys
import time

from posix_suite import read_file, write_file


class LinkSuite:

    def setUp(self):
        super().setUp()
        self.d = os.path.join(self.base, "l-%s-%d-%d" % (
            self._testMethodName, os.getpid(), time.monotonic_ns()))
        os.mkdir(self.d)
        self.addCleanup(shutil.rmtree, self.d, True)

    def p(self, *parts):
        return os.path.join(self.d, *parts)

    def cached_file(self, name, data=b"linked"):
        """A file whose attributes the kernel has cached (nlink 1): what
        link(2) must not leave stale."""
        write_file(self.p(name), data)
        st = os.stat(self.p(name))
        self.assertEqual(st.st_nlink, 1)
        return st

    def test_link_same_inode_at_once(self):
        before = self.cached_file("a")
        time.sleep(0.05)        # so that the link's ctime is a later one
        os.link(self.p("a"), self.p("b"))
        sa, sb = os.stat(self.p("a")), os.stat(self.p("b"))
        self.assertEqual(sa.st_ino, sb.st_ino)
        self.assertEqual((sa.st_nlink, sb.st_nlink), (2, 2))
        self.assertGreater(sa.st_ctime_ns, before.st_ctime_ns)
        self.assertEqual(sa.st_ctime_ns, sb.st_ctime_ns)
        # and what the backend has, too
        self.assertEqual(os.stat(self.behind(self.p("a"))).st_nlink, 2)

    def test_open_file_sees_link(self):
        self.cached_file("a")
        fd = os.open(self.p("a"), os.O_RDWR)
        try:
            os.link(self.p("a"), self.p("b"))
            self.assertEqual(os.fstat(fd).st_nlink, 2)
            os.write(fd, b"through a, longer")
            self.assertEqual(os.stat(self.p("b")).st_size, 17)
            self.assertEqual(read_file(self.p("b")), b"through a, longer")
        finally:
            os.close(fd)

    def test_chmod_through_other_name(self):
        self.cached_file("a")
        os.link(self.p("a"), self.p("b"))
        os.chmod(self.p("b"), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("a")).st_mode), 0o600)
        os.chmod(self.p("a"), 0o640)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("b")).st_mode), 0o640)
        os.utime(self.p("b"), ns=(1_500_000_000_000_000_000, 1_600_000_000_000_000_000))
        self.assertEqual(os.stat(self.p("a")).st_mtime_ns, 1_600_000_000_000_000_000)

    def test_write_through_one_name_seen_in_other(self):
        self.cached_file("a")
        os.link(self.p("a"), self.p("b"))
        self.assertEqual(os.stat(self.p("b")).st_size, 6)
        with open(self.p("a"), "ab") as f:
            f.write(b" and more")
        self.assertEqual(os.stat(self.p("b")).st_size, 15)
        self.assertEqual(read_file(self.p("b")), b"linked and more")
        os.truncate(self.p("b"), 3)
        self.assertEqual(os.stat(self.p("a")).st_size, 3)
        self.assertEqual(read_file(self.p("a")), b"lin")

    def test_shared_mapping_through_both_names(self):
        """One kernel inode, one page cache: a store through a mapping of
        one name is what a read of the other gives, before any msync."""
        self.cached_file("a", b"\0" * 8192)
        os.link(self.p("a"), self.p("b"))
        fd = os.open(self.p("a"), os.O_RDWR)
        try:
            m = mmap.mmap(fd, 8192)
            try:
                m[100:105] = b"hello"
                with open(self.p("b"), "rb") as f:
                    self.assertEqual(f.read()[100:105], b"hello")
            finally:
                m.close()
        finally:
            os.close(fd)

    def test_unlink_first_name_keeps_second(self):
        self.cached_file("a")
        os.link(self.p("a"), self.p("b"))
        os.stat(self.p("b"))
        os.unlink(self.p("a"))
        self.assertFalse(os.path.exists(self.p("a")))
        self.assertEqual(os.stat(self.p("b")).st_nlink, 1)
        self.assertEqual(read_file(self.p("b")), b"linked")
        with open(self.p("b"), "ab") as f:
            f.write(b"!")
        os.chmod(self.p("b"), 0o604)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("b")).st_mode), 0o604)
        os.rename(self.p("b"), self.p("c"))
        st = os.stat(self.p("c"))
        self.assertEqual((st.st_nlink, st.st_size, stat.S_IMODE(st.st_mode)), (1, 7, 0o604))
        self.assertEqual(read_file(self.p("c")), b"linked!")
        self.assertErrno(errno.ENOENT, os.stat, self.p("b"))
        # and once more the other way round: the name linked last goes
        os.link(self.p("c"), self.p("d"))
        os.unlink(self.p("d"))
        os.chmod(self.p("c"), 0o600)
        self.assertEqual(os.stat(self.p("c")).st_nlink, 1)
        self.assertEqual(read_file(self.p("c")), b"linked!")

    def test_unlink_while_open_through_other_name(self):
        self.cached_file("a")
        os.link(self.p("a"), self.p("b"))
        fd = os.open(self.p("b"), os.O_RDWR)
        try:
            os.unlink(self.p("b"))
            self.assertEqual(os.fstat(fd).st_nlink, 1)
            self.assertEqual(os.stat(self.p("a")).st_nlink, 1)
            os.pwrite(fd, b"L", 0)
            os.fchmod(fd, 0o600)
            self.assertEqual(read_file(self.p("a")), b"Linked")
            self.assertEqual(stat.S_IMODE(os.stat(self.p("a")).st_mode), 0o600)
        finally:
            os.close(fd)

    def test_rename_over_one_name(self):
        self.cached_file("a")
        os.link(self.p("a"), self.p("b"))
        write_file(self.p("c"), b"another")
        os.rename(self.p("c"), self.p("a"))
        sa, sb = os.stat(self.p("a")), os.stat(self.p("b"))
        self.assertNotEqual(sa.st_ino, sb.st_ino)
        self.assertEqual((sa.st_nlink, sb.st_nlink), (1, 1))
        self.assertEqual(read_file(self.p("a")), b"another")
        self.assertEqual(read_file(self.p("b")), b"linked")
        os.chmod(self.p("b"), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("a")).st_mode), 0o644)
        # one name of a linked file renamed over another file
        os.link(self.p("b"), self.p("e"))
        os.rename(self.p("e"), self.p("a"))
        sa, sb = os.stat(self.p("a")), os.stat(self.p("b"))
        self.assertEqual(sa.st_ino, sb.st_ino)
        self.assertEqual((sa.st_nlink, sb.st_nlink), (2, 2))
        self.assertEqual(read_file(self.p("a")), b"linked")
        self.assertFalse(os.path.exists(self.p("e")))
        os.chmod(self.p("a"), 0o640)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("b")).st_mode), 0o640)
        # renaming one name onto another of the same file does nothing
        os.rename(self.p("a"), self.p("b"))
        self.assertEqual(os.stat(self.p("a")).st_nlink, 2)
        self.assertEqual(read_file(self.p("a")), b"linked")

    def test_link_unlink_loop(self):
        self.cached_file("a")
        for i in range(100):
            os.link(self.p("a"), self.p("b"))
            self.assertEqual(os.stat(self.p("a")).st_nlink, 2, i)
            self.assertEqual(os.stat(self.p("b")).st_nlink, 2, i)
            os.unlink(self.p("b") if i % 2 else self.p("a"))
            left = self.p("a") if i % 2 else self.p("b")
            self.assertEqual(os.stat(left).st_nlink, 1, i)
            if left != self.p("a"):
                os.rename(left, self.p("a"))
        self.assertEqual(sorted(os.listdir(self.d)), ["a"])
        self.assertEqual(read_file(self.p("a")), b"linked")

    def test_many_links(self):
        self.cached_file("a")
        n = 60
        os.mkdir(self.p("sub"))
        names = [self.p("l%d" % i) if i % 2 else self.p("sub", "l%d" % i)
                 for i in range(n)]
        for name in names:
            os.link(self.p("a"), name)
        ino = os.stat(self.p("a")).st_ino
        for name in [self.p("a")] + names:
            st = os.stat(name)
            self.assertEqual((st.st_ino, st.st_nlink), (ino, n + 1), name)
        os.chmod(names[-1], 0o600)
        for name in [self.p("a")] + names:
            self.assertEqual(stat.S_IMODE(os.stat(name).st_mode), 0o600, name)
        for i, name in enumerate(names):
            os.unlink(name)
            self.assertEqual(os.stat(self.p("a")).st_nlink, n - i)
        self.assertEqual(read_file(self.p("a")), b"linked")

    def test_link_made_behind_vfsd(self):
        """A second name made by someone else: its lookup finds the node
        of the first (same backend inode), so a change through it is seen
        through the first name at once."""
        self.cached_file("a")
        os.link(self.behind(self.p("a")), self.behind(self.p("b")))
        os.chmod(self.p("b"), 0o600)
        sa = os.stat(self.p("a"))
        self.assertEqual(stat.S_IMODE(sa.st_mode), 0o600)
        self.assertEqual(sa.st_nlink, 2)
        with open(self.p("b"), "ab") as f:
            f.write(b"+")
        self.assertEqual(os.stat(self.p("a")).st_size, 7)

    def test_listing_finds_one_node(self):
        """Names a listing brings (READDIRPLUS, as ls -l) are keyed like
        those a lookup brings: two names of one file, one inode."""
        self.cached_file("a")
        os.link(self.behind(self.p("a")), self.behind(self.p("b")))
        with os.scandir(self.d) as it:
            seen = {e.name: e.stat(follow_symlinks=False) for e in it}
        self.assertEqual(sorted(seen), ["a", "b"])
        self.assertEqual(seen["a"].st_ino, seen["b"].st_ino)
        os.chmod(self.p("b"), 0o600)
        sa = os.stat(self.p("a"))
        self.assertEqual((stat.S_IMODE(sa.st_mode), sa.st_nlink), (0o600, 2))
        self.check_one_lock(self.p("a"), self.p("b"))

    def check_one_lock(self, one, other):
        """A lock taken through one name holds against the other: it is
        one file (the kernel's one inode, the daemon's one node)."""
        for kind in ("flock", "posix"):
            fd1 = os.open(one, os.O_RDWR)
            fd2 = os.open(other, os.O_RDWR)
            try:
                lock = fcntl.flock if kind == "flock" else fcntl.lockf
                lock(fd1, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if kind == "posix":
                    # POSIX locks of one process never conflict: ask as
                    # another one
                    r = subprocess.run(
                        [sys.executable, "-c",
                         "import fcntl, os, sys\n"
                         "fd = os.open(sys.argv[1], os.O_RDWR)\n"
                         "try:\n"
                         "    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
                         "except OSError:\n"
                         "    sys.exit(3)\n", other], timeout=60)
                    self.assertEqual(r.returncode, 3, "posix lock through both names")
                else:
                    with self.assertRaises(OSError, msg="flock through both names"):
                        lock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(fd2)
                os.close(fd1)

    def test_locks_shared_by_names(self):
        self.cached_file("a")
        os.link(self.p("a"), self.p("b"))
        self.check_one_lock(self.p("a"), self.p("b"))
        self.check_one_lock(self.p("b"), self.p("a"))

    def assertErrno(self, code, fn, *args):
        with self.assertRaises(OSError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.errno, code)
