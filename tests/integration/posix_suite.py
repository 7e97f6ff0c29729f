# SPDX-License-Identifier: GPL-2.0-or-later
"""The operation suite every backend runs through the real FUSE mount.

A test class mixes PosixSuite into harness.TestCase and provides
`self.base` (a directory inside a vfsd mount) in setUp; each test works in
a fresh subdirectory of it.  CAPS names what the backend supports; for
anything missing the test asserts the documented errno instead of skipping.
"""
import ctypes
import errno
import fcntl
import hashlib
import mmap
import random
import os
import shlex
import shutil
import stat
import subprocess
import time

ALL_CAPS = frozenset({
    "xattr", "hardlink", "hardlink_ino", "symlink", "mknod", "fallocate", "punch_hole",
    "seek_data", "rename_noreplace", "rename_exchange", "chown", "o_direct",
    "copy_file_range", "locks", "chmod", "utimens_nsec", "symlink_times",
})

_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
SEEK_DATA = getattr(os, "SEEK_DATA", 3)
SEEK_HOLE = getattr(os, "SEEK_HOLE", 4)
# The one errno each unsupported operation fails with, by capability: the
# router's answer for a member a backend's table lacks (rops[] in
# vfsd/router_ops.c, docs/architecture.md "Backend contract"), or the backend's
# own for a kind of object it cannot make (a FIFO on SFTP).  Pinned here so
# that a change of contract shows as a failure, not as another accepted
# errno.
UNSUPPORTED = {
    "hardlink": errno.EPERM,            # link(2): cannot create hard links
    "symlink": errno.EPERM,             # symlink(2): cannot create symlinks
    "chown": errno.EPERM,
    "mknod": errno.EOPNOTSUPP,          # the backend's: not this kind of node
    "xattr": errno.EOPNOTSUPP,          # as the kernel's for a FUSE fs without
    "fallocate": errno.EOPNOTSUPP,      # fallocate(2)
    "punch_hole": errno.EOPNOTSUPP,
    "rename_noreplace": errno.EINVAL,   # renameat2(2): flag not supported
    "rename_exchange": errno.EINVAL,
    "o_direct": errno.EINVAL,           # open(2): O_DIRECT not supported
}


def renameat2(old, new, flags):
    r = _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new),
                        ctypes.c_uint(flags))
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


def fallocate(fd, mode, off, length):
    _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong,
                                ctypes.c_longlong]
    r = _libc.fallocate(fd, mode, off, length)
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def check_locked_writes_through(test, mine, behind):
    """Under a cross-host lock no write waits in a write-behind queue:
    each is in the server's file (`behind`, looked at behind vfsd's back)
    when write(2) on `mine` returns, without fsync or close."""
    import fcntl
    fd = os.open(mine, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        data = os.urandom(8 << 20)
        for i in range(0, len(data), 1 << 20):
            os.pwrite(fd, data[i:i + (1 << 20)], i)
            test.assertEqual(os.stat(behind).st_size, i + (1 << 20))
        test.assertEqual(read_file(behind), data)
    finally:
        os.close(fd)


class PosixSuite:
    CAPS = ALL_CAPS

    def setUp(self):
        super().setUp()
        self.d = os.path.join(self.base, "t-%s-%d" % (self._testMethodName, os.getpid()))
        os.mkdir(self.d)
        self.addCleanup(shutil.rmtree, self.d, True)

    def p(self, *parts):
        return os.path.join(self.d, *parts)

    def has(self, cap):
        return cap in self.CAPS

    def assertErrno(self, errnos, fn, *args, **kw):
        if isinstance(errnos, int):
            errnos = (errnos,)
        with self.assertRaises(OSError) as cm:
            fn(*args, **kw)
        self.assertIn(cm.exception.errno, errnos,
                      "expected %s, got %s" % ([errno.errorcode[e] for e in errnos],
                                               errno.errorcode.get(cm.exception.errno)))

    # ---- files ----------------------------------------------------------

    def test_create_write_read(self):
        data = os.urandom(3 * 1024 * 1024 + 123)
        write_file(self.p("f"), data)
        self.assertEqual(os.stat(self.p("f")).st_size, len(data))
        self.assertEqual(read_file(self.p("f")), data)
        fd = os.open(self.p("f"), os.O_RDONLY)
        try:
            self.assertEqual(os.pread(fd, 10, 1000), data[1000:1010])
            self.assertEqual(os.pread(fd, 100, len(data) - 10), data[-10:])
            self.assertEqual(os.pread(fd, 100, len(data) + 10), b"")
        finally:
            os.close(fd)

    def test_writes_seen_at_once(self):
        """Whatever a backend does with writes (write-behind on sftp and
        nfs), the file's size and data are right at once: through the
        handle, by name, after overwrites and truncation; many small
        writes arrive whole and in order."""
        pieces = [os.urandom(1 << 20) for _ in range(6)]
        fd = os.open(self.p("f"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            for i, piece in enumerate(pieces):
                self.assertEqual(os.pwrite(fd, piece, i << 20), len(piece))
                self.assertEqual(os.fstat(fd).st_size, (i + 1) << 20)
                self.assertEqual(os.stat(self.p("f")).st_size, (i + 1) << 20)
                self.assertEqual(os.pread(fd, 64, i << 20), piece[:64])
            os.pwrite(fd, b"A" * 4096, 2 << 20)
            os.pwrite(fd, b"B" * 4096, 2 << 20)
            os.ftruncate(fd, 5 << 20)
            os.lseek(fd, 0, os.SEEK_END)
            for i in range(1000):
                os.write(fd, b"%07d\n" % i)
        finally:
            os.close(fd)
        want = b"".join(pieces)[:5 << 20]
        want = want[:2 << 20] + b"B" * 4096 + want[(2 << 20) + 4096:]
        want += b"".join(b"%07d\n" % i for i in range(1000))
        self.assertEqual(read_file(self.p("f")), want)

    def test_open_flags(self):
        write_file(self.p("f"), b"hello")
        self.assertErrno(errno.EEXIST, os.open, self.p("f"),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        fd = os.open(self.p("f"), os.O_WRONLY | os.O_APPEND)
        os.write(fd, b" world")
        os.close(fd)
        self.assertEqual(read_file(self.p("f")), b"hello world")
        fd = os.open(self.p("f"), os.O_WRONLY | os.O_TRUNC)
        os.close(fd)
        self.assertEqual(os.stat(self.p("f")).st_size, 0)
        self.assertErrno(errno.ENOENT, os.open, self.p("missing"), os.O_RDONLY)
        self.assertErrno(errno.EISDIR, os.open, self.d, os.O_WRONLY)
        fd = os.open(self.p("new"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"abc")
        os.lseek(fd, 0, os.SEEK_SET)
        self.assertEqual(os.read(fd, 10), b"abc")
        os.close(fd)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("new")).st_mode), 0o600)

    def test_overwrite_middle_and_sparse_extend(self):
        write_file(self.p("f"), b"a" * 10000)
        fd = os.open(self.p("f"), os.O_RDWR)
        os.pwrite(fd, b"XYZ", 5000)
        os.pwrite(fd, b"end", 20000)
        os.close(fd)
        data = read_file(self.p("f"))
        self.assertEqual(len(data), 20003)
        self.assertEqual(data[4999:5004], b"aXYZa")
        self.assertEqual(data[10000:20000], b"\0" * 10000)

    def test_stat_through_a_reader_sees_anothers_writes(self):
        """The size seen through one descriptor (and by name, which on
        shared backends goes through an open descriptor) includes what
        another descriptor of the file wrote a moment ago, however the
        backend queues writes; and truncate(2) of the name works while
        the file is open read-only."""
        wfd = os.open(self.p("f"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            rfd = os.open(self.p("f"), os.O_RDONLY)
            try:
                for i in range(1, 6):
                    os.write(wfd, os.urandom(1 << 20))
                    self.assertEqual(os.fstat(rfd).st_size, i << 20)
                    self.assertEqual(os.stat(self.p("f")).st_size, i << 20)
                os.truncate(self.p("f"), 12345)
                self.assertEqual(os.fstat(rfd).st_size, 12345)
                self.assertEqual(os.stat(self.p("f")).st_size, 12345)
                self.assertEqual(len(os.pread(rfd, 1 << 20, 0)), 12345)
            finally:
                os.close(rfd)
        finally:
            os.close(wfd)
        self.assertEqual(os.stat(self.p("f")).st_size, 12345)

    def test_write_only_descriptor_and_readers(self):
        """What a write-only descriptor writes (which on shared mounts
        bypasses the page cache) is what a reader that has the file open
        and cached reads next, at once, and what the next open reads;
        appends and O_TRUNC rewrites alike."""
        def write_with(flags, data):
            fd = os.open(self.p("f"), flags)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

        old = os.urandom(64 << 10)
        write_file(self.p("f"), old)
        rfd = os.open(self.p("f"), os.O_RDONLY)
        try:
            self.assertEqual(os.pread(rfd, len(old), 0), old)   # cached now
            new = os.urandom(4096)
            wfd = os.open(self.p("f"), os.O_WRONLY)
            try:
                self.assertEqual(os.pwrite(wfd, new, 8192), len(new))
                want = old[:8192] + new + old[8192 + 4096:]
                self.assertEqual(os.pread(rfd, len(old), 0), want)
            finally:
                os.close(wfd)
            self.assertEqual(read_file(self.p("f")), want)
            write_with(os.O_WRONLY | os.O_APPEND, b"tail")
            want += b"tail"
            self.assertEqual(os.pread(rfd, len(want) + 10, 0), want)
            self.assertEqual(read_file(self.p("f")), want)
            write_with(os.O_WRONLY | os.O_TRUNC, b"short")
            self.assertEqual(os.pread(rfd, len(want), 0), b"short")
            self.assertEqual(os.fstat(rfd).st_size, 5)
        finally:
            os.close(rfd)
        self.assertEqual(read_file(self.p("f")), b"short")

    def test_truncate(self):
        write_file(self.p("f"), b"x" * 5000)
        os.truncate(self.p("f"), 100)
        self.assertEqual(os.stat(self.p("f")).st_size, 100)
        os.truncate(self.p("f"), 1 << 20)
        data = read_file(self.p("f"))
        self.assertEqual(data[:100], b"x" * 100)
        self.assertEqual(data[100:], b"\0" * ((1 << 20) - 100))
        fd = os.open(self.p("f"), os.O_RDWR)
        os.ftruncate(fd, 7)
        self.assertEqual(os.fstat(fd).st_size, 7)
        os.close(fd)
        self.assertEqual(read_file(self.p("f")), b"x" * 7)

    def test_unlink_while_open(self):
        write_file(self.p("f"), b"still here")
        fd = os.open(self.p("f"), os.O_RDWR)
        try:
            os.unlink(self.p("f"))
            self.assertFalse(os.path.exists(self.p("f")))
            self.assertEqual(os.pread(fd, 100, 0), b"still here")
            os.pwrite(fd, b"S", 0)
            self.assertEqual(os.pread(fd, 100, 0), b"Still here")
            self.assertEqual(os.fstat(fd).st_size, 10)
            # changes through the handle reach the open file, nothing else
            around = [os.stat(p).st_mode for p in (self.d, self.base)]
            os.ftruncate(fd, 5)
            self.assertEqual(os.fstat(fd).st_size, 5)
            # by path, without the handle: /proc's link to the open file
            os.truncate("/proc/self/fd/%d" % fd, 4)
            self.assertEqual(os.fstat(fd).st_size, 4)
            if self.has("chmod"):
                os.fchmod(fd, 0o600)
                self.assertEqual(os.fstat(fd).st_mode & 0o777, 0o600)
            self.assertEqual([os.stat(p).st_mode for p in (self.d, self.base)], around)
        finally:
            os.close(fd)
        write_file(self.p("f"), b"new")
        self.assertEqual(read_file(self.p("f")), b"new")

    def test_fsync(self):
        fd = os.open(self.p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"durable" * 1000)
        os.fsync(fd)
        os.fdatasync(fd)
        os.close(fd)
        self.assertEqual(read_file(self.p("f")), b"durable" * 1000)

    def test_statfs(self):
        st = os.statvfs(self.d)
        self.assertGreater(st.f_bsize, 0)
        self.assertGreater(st.f_blocks, 0)
        self.assertGreaterEqual(st.f_namemax, 255)

    # ---- namespace --------------------------------------------------------

    def test_mkdir_rmdir_errors(self):
        os.mkdir(self.p("a"))
        self.assertTrue(stat.S_ISDIR(os.stat(self.p("a")).st_mode))
        self.assertErrno(errno.EEXIST, os.mkdir, self.p("a"))
        write_file(self.p("a", "f"), b"1")
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("a"))
        self.assertErrno(errno.ENOTDIR, os.rmdir, self.p("a", "f"))
        self.assertErrno(errno.EISDIR, os.unlink, self.p("a"))
        self.assertErrno(errno.ENOENT, os.unlink, self.p("nope"))
        self.assertErrno(errno.ENOENT, os.stat, self.p("nope", "deeper"))
        os.unlink(self.p("a", "f"))
        os.rmdir(self.p("a"))
        self.assertFalse(os.path.exists(self.p("a")))

    def test_readdir_many(self):
        names = {"file-%04d" % i for i in range(600)}
        for n in names:
            write_file(self.p(n), n.encode())
        os.mkdir(self.p("sub"))
        listed = set(os.listdir(self.d))
        self.assertEqual(listed, names | {"sub"})
        sizes = {}
        with os.scandir(self.d) as it:
            for e in it:
                sizes[e.name] = e.stat(follow_symlinks=False).st_size
                if e.name == "sub":
                    self.assertTrue(e.is_dir(follow_symlinks=False))
        self.assertEqual(sizes["file-0042"], len("file-0042"))

    def test_rewinddir_shows_the_directory_as_it_is(self):
        """rewinddir(3) makes a stream show the directory as a new opendir
        would (POSIX), also where a backend reads listings whole."""
        libc = _libc
        libc.opendir.restype = ctypes.c_void_p
        libc.readdir.restype = ctypes.c_void_p
        libc.readdir.argtypes = libc.rewinddir.argtypes = \
            libc.closedir.argtypes = [ctypes.c_void_p]
        name_at = 8 + 8 + 2 + 1     # glibc's struct dirent on Linux

        def names(dirp):
            out = set()
            while True:
                ent = libc.readdir(dirp)
                if not ent:
                    return out - {".", ".."}
                out.add(ctypes.string_at(ent + name_at).decode())

        write_file(self.p("a"), b"a")
        dirp = libc.opendir(os.fsencode(self.d))
        self.assertTrue(dirp)
        try:
            self.assertEqual(names(dirp), {"a"})
            write_file(self.p("b"), b"b")
            os.unlink(self.p("a"))
            libc.rewinddir(dirp)
            self.assertEqual(names(dirp), {"b"})
        finally:
            libc.closedir(dirp)

    def test_rename(self):
        write_file(self.p("a"), b"A")
        write_file(self.p("b"), b"B")
        os.rename(self.p("a"), self.p("c"))
        self.assertFalse(os.path.exists(self.p("a")))
        self.assertEqual(read_file(self.p("c")), b"A")
        os.rename(self.p("c"), self.p("b"))  # replaces b
        self.assertEqual(read_file(self.p("b")), b"A")
        self.assertFalse(os.path.exists(self.p("c")))
        os.mkdir(self.p("d1"))
        write_file(self.p("d1", "x"), b"x")
        os.rename(self.p("d1"), self.p("d2"))
        self.assertEqual(read_file(self.p("d2", "x")), b"x")
        os.mkdir(self.p("d3"))
        write_file(self.p("d3", "y"), b"y")
        self.assertErrno((errno.ENOTEMPTY, errno.EEXIST), os.rename,
                         self.p("d2"), self.p("d3"))
        self.assertErrno(errno.ENOENT, os.rename, self.p("nope"), self.p("z"))

    def test_rename_open_file_keeps_handle(self):
        write_file(self.p("a"), b"content")
        fd = os.open(self.p("a"), os.O_RDONLY)
        try:
            os.rename(self.p("a"), self.p("b"))
            self.assertEqual(os.pread(fd, 100, 0), b"content")
        finally:
            os.close(fd)

    def test_rename_noreplace(self):
        write_file(self.p("a"), b"A")
        write_file(self.p("b"), b"B")
        if not self.has("rename_noreplace"):
            self.assertErrno(UNSUPPORTED["rename_noreplace"], renameat2, self.p("a"),
                             self.p("b"), RENAME_NOREPLACE)
            return
        self.assertErrno(errno.EEXIST, renameat2, self.p("a"), self.p("b"),
                         RENAME_NOREPLACE)
        self.assertEqual(read_file(self.p("b")), b"B")
        renameat2(self.p("a"), self.p("c"), RENAME_NOREPLACE)
        self.assertEqual(read_file(self.p("c")), b"A")

    def test_rename_exchange(self):
        write_file(self.p("a"), b"A")
        os.mkdir(self.p("b"))
        if not self.has("rename_exchange"):
            self.assertErrno(UNSUPPORTED["rename_exchange"], renameat2, self.p("a"),
                             self.p("b"), RENAME_EXCHANGE)
            return
        renameat2(self.p("a"), self.p("b"), RENAME_EXCHANGE)
        self.assertTrue(os.path.isdir(self.p("a")))
        self.assertEqual(read_file(self.p("b")), b"A")

    def test_hardlink(self):
        write_file(self.p("a"), b"linked")
        if not self.has("hardlink"):
            self.assertErrno(UNSUPPORTED["hardlink"], os.link, self.p("a"), self.p("b"))
            return
        os.link(self.p("a"), self.p("b"))
        sa, sb = os.stat(self.p("a")), os.stat(self.p("b"))
        if self.has("hardlink_ino"):
            self.assertEqual(sa.st_ino, sb.st_ino)
            self.assertEqual(sa.st_nlink, 2)
        write_file(self.p("b"), b"changed")
        if self.has("hardlink_ino"):
            # (without inode numbers the kernel holds two inodes, whose
            # cached sizes may differ until they expire: the backend's
            # own test checks the data on the server instead)
            self.assertEqual(read_file(self.p("a")), b"changed")
        os.unlink(self.p("a"))
        if self.has("hardlink_ino"):
            self.assertEqual(os.stat(self.p("b")).st_nlink, 1)
        self.assertErrno(errno.EEXIST, os.link, self.p("b"), self.p("b"))
        os.mkdir(self.p("d"))
        self.assertErrno(errno.EPERM, os.link, self.p("d"), self.p("d2"))

    def test_symlink(self):
        write_file(self.p("target"), b"T")
        if not self.has("symlink"):
            self.assertErrno(UNSUPPORTED["symlink"], os.symlink, "target", self.p("l"))
            return
        os.symlink("target", self.p("l"))
        self.assertEqual(os.readlink(self.p("l")), "target")
        self.assertTrue(stat.S_ISLNK(os.lstat(self.p("l")).st_mode))
        self.assertEqual(read_file(self.p("l")), b"T")
        os.symlink("dangling/../x" * 3, self.p("d"))
        self.assertEqual(os.readlink(self.p("d")), "dangling/../x" * 3)
        self.assertErrno(errno.EEXIST, os.symlink, "x", self.p("l"))
        os.unlink(self.p("l"))
        self.assertTrue(os.path.exists(self.p("target")))

    def test_unprivileged_writes_drop_setuid(self):
        """Whoever lacks CAP_FSETID and writes, truncates or O_TRUNC-opens
        a setuid file drops its setuid bit (and setgid, if group-executable),
        as on a local file system; root keeps them.  The mount has
        allow_other, so uid 65534 can use it."""
        if not self.has("chmod"):
            return
        os.chmod(os.path.dirname(self.mountpoint()), 0o755)
        os.chmod(self.d, 0o777)
        f = self.p("suid")
        write_file(f, b"x")

        def as_nobody(script):
            r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                                "--clear-groups", "sh", "-c", script % shlex.quote(f)],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)

        for what, script in (("write", "echo more >> %s"),
                             ("truncate", "truncate -s 1 %s"),
                             ("O_TRUNC open", ": > %s")):
            os.chmod(f, 0o6777)
            with open(f, "ab") as fh:
                fh.write(b"by root")
            self.assertEqual(os.stat(f).st_mode & 0o7777, 0o6777, "root's " + what)
            as_nobody(script)
            self.assertEqual(os.stat(f).st_mode & 0o7777, 0o777, "nobody's " + what)
        # setgid on a file that is not group-executable stays
        os.chmod(f, 0o2767)
        as_nobody("echo more >> %s")
        self.assertEqual(os.stat(f).st_mode & 0o7777, 0o2767)

    def mountpoint(self):
        path = self.base
        while not os.path.ismount(path):
            path = os.path.dirname(path)
        return path

    def test_chmod(self):
        write_file(self.p("f"), b"x")
        os.chmod(self.p("f"), 0o640)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("f")).st_mode), 0o640)
        os.mkdir(self.p("d"))
        os.chmod(self.p("d"), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("d")).st_mode), 0o700)
        fd = os.open(self.p("f"), os.O_RDONLY)
        os.fchmod(fd, 0o604)
        os.close(fd)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("f")).st_mode), 0o604)

    def test_chown(self):
        write_file(self.p("f"), b"x")
        if not self.has("chown"):
            self.assertErrno(UNSUPPORTED["chown"], os.chown, self.p("f"), 12345, 12345)
            return
        os.chown(self.p("f"), 12345, 23456)
        st = os.stat(self.p("f"))
        self.assertEqual((st.st_uid, st.st_gid), (12345, 23456))
        os.chown(self.p("f"), -1, 0)
        st = os.stat(self.p("f"))
        self.assertEqual((st.st_uid, st.st_gid), (12345, 0))

    def test_utimens(self):
        write_file(self.p("f"), b"x")
        os.utime(self.p("f"), ns=(1_000_000_123_000_000_000, 1_500_000_456_123_456_789))
        st = os.stat(self.p("f"))
        self.assertEqual(st.st_mtime_ns // 10**9, 1_500_000_456)
        self.assertEqual(st.st_atime_ns // 10**9, 1_000_000_123)
        if self.has("utimens_nsec"):
            self.assertEqual(st.st_mtime_ns, 1_500_000_456_123_456_789)
        # UTIME_OMIT for atime, UTIME_NOW for mtime, through utimensat
        before = time.time() - 5
        times = (ctypes.c_long * 4)(0, (1 << 30) - 2, 0, (1 << 30) - 1)
        r = _libc.utimensat(AT_FDCWD, os.fsencode(self.p("f")), times, 0)
        self.assertEqual(r, 0, os.strerror(ctypes.get_errno()))
        st = os.stat(self.p("f"))
        self.assertEqual(st.st_atime_ns // 10**9, 1_000_000_123)
        self.assertGreater(st.st_mtime, before)

    def test_mknod_fifo(self):
        if not self.has("mknod"):
            self.assertErrno(UNSUPPORTED["mknod"], os.mkfifo, self.p("fifo"))
            return
        os.mkfifo(self.p("fifo"), 0o644)
        self.assertTrue(stat.S_ISFIFO(os.lstat(self.p("fifo")).st_mode))

    # ---- extended ---------------------------------------------------------

    def test_xattr(self):
        write_file(self.p("f"), b"x")
        if not self.has("xattr"):
            # all four calls answer alike, except that a listing is
            # empty, as the kernel's NFS client has it
            self.assertErrno(UNSUPPORTED["xattr"], os.setxattr, self.p("f"), "user.k", b"v")
            self.assertErrno(UNSUPPORTED["xattr"], os.getxattr, self.p("f"), "user.k")
            self.assertErrno(UNSUPPORTED["xattr"], os.removexattr, self.p("f"), "user.k")
            self.assertEqual(os.listxattr(self.p("f")), [])
            return
        os.setxattr(self.p("f"), "user.k", b"value")
        self.assertEqual(os.getxattr(self.p("f"), "user.k"), b"value")
        self.assertIn("user.k", os.listxattr(self.p("f")))
        self.assertErrno(errno.EEXIST, os.setxattr, self.p("f"), "user.k", b"v2",
                         os.XATTR_CREATE)
        self.assertErrno(errno.ENODATA, os.getxattr, self.p("f"), "user.none")
        os.setxattr(self.p("f"), "user.big", b"B" * 3000)
        self.assertEqual(os.getxattr(self.p("f"), "user.big"), b"B" * 3000)
        os.removexattr(self.p("f"), "user.k")
        self.assertNotIn("user.k", os.listxattr(self.p("f")))
        self.assertErrno(errno.ENODATA, os.removexattr, self.p("f"), "user.k")

    def test_fallocate_punch_hole(self):
        write_file(self.p("f"), b"D" * (1 << 20))
        fd = os.open(self.p("f"), os.O_RDWR)
        try:
            if not self.has("fallocate"):
                self.assertErrno(UNSUPPORTED["fallocate"], fallocate, fd, 0, 0, 2 << 20)
                return
            fallocate(fd, 0, 0, 2 << 20)
            self.assertEqual(os.fstat(fd).st_size, 2 << 20)
            if not self.has("punch_hole"):
                self.assertErrno(UNSUPPORTED["punch_hole"], fallocate, fd,
                                 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                 0, 1 << 19)
                return
            blocks = os.fstat(fd).st_blocks
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1 << 19)
            self.assertEqual(os.fstat(fd).st_size, 2 << 20)
            self.assertLess(os.fstat(fd).st_blocks, blocks)
            self.assertEqual(os.pread(fd, 1 << 19, 0), b"\0" * (1 << 19))
            self.assertEqual(os.pread(fd, 10, 1 << 19), b"D" * 10)
        finally:
            os.close(fd)

    def test_seek_data_hole(self):
        fd = os.open(self.p("sparse"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"x" * 4096, 8 << 20)
            os.fsync(fd)
            data = os.lseek(fd, 0, SEEK_DATA)
            if self.has("seek_data"):
                self.assertEqual(data, 8 << 20)
                self.assertEqual(os.lseek(fd, 0, SEEK_HOLE), 0)
            else:
                self.assertEqual(data, 0)  # the whole file counts as data
            self.assertErrno(errno.ENXIO, os.lseek, fd, (8 << 20) + 4096, SEEK_DATA)
        finally:
            os.close(fd)

    def test_copy_file_range(self):
        data = os.urandom(5 << 20)
        write_file(self.p("src"), data)
        fi = os.open(self.p("src"), os.O_RDONLY)
        fo = os.open(self.p("dst"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            done = 0
            while done < len(data):
                n = os.copy_file_range(fi, fo, len(data) - done, done, done)
                self.assertGreater(n, 0)
                done += n
        finally:
            os.close(fi)
            os.close(fo)
        self.assertEqual(read_file(self.p("dst")), data)

    def test_o_direct(self):
        size = 1 << 20
        buf = mmap.mmap(-1, size)     # page-aligned, as O_DIRECT wants
        pattern = os.urandom(size)
        buf[:] = pattern
        try:
            fd = os.open(self.p("direct"), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
        except OSError as e:
            if self.has("o_direct"):
                raise
            self.assertEqual(e.errno, UNSUPPORTED["o_direct"])
            return
        try:
            self.assertEqual(os.pwrite(fd, buf, 0), size)
            tail = mmap.mmap(-1, 4096)
            tail[:] = pattern[:4096]
            self.assertEqual(os.pwrite(fd, tail, size), 4096)
            out = mmap.mmap(-1, size)
            self.assertEqual(os.preadv(fd, [out], 0), size)
            self.assertEqual(out[:], pattern)
            if self.has("o_direct_backing_alignment"):
                # the kernel does the I/O on the backing file itself
                # (passthrough): its alignment rules hold, as on the
                # directory beneath
                outcome = self._unaligned_direct_write(self.p("direct"))
                self.assertEqual(outcome,
                                 self._unaligned_direct_write(self.backing_path("probe")))
            else:
                # unaligned sizes and offsets are served (QEMU probes them)
                self.assertEqual(os.pwrite(fd, b"odd", 7), 3)
                self.assertEqual(os.pread(fd, 5, 5), pattern[5:7] + b"odd")
                outcome = "ok"
            os.fsync(fd)
        finally:
            os.close(fd)
        got = read_file(self.p("direct"))
        if outcome == "ok":
            self.assertEqual(got[:7], pattern[:7])
            self.assertEqual(got[7:10], b"odd")
            self.assertEqual(got[10:size], pattern[10:])
        else:
            self.assertEqual(got[:size], pattern)
        self.assertEqual(len(got), size + 4096)

    def test_o_direct_random_reads(self):
        """O_DIRECT reads at random offsets and of random sizes (QEMU's
        cache=none pattern) return exactly the file's bytes, also where
        they run past its end; each goes out on its own (sftp: on any
        connection, with nothing read ahead)."""
        data = os.urandom((3 << 20) + 1234)
        write_file(self.p("rr"), data)
        try:
            fd = os.open(self.p("rr"), os.O_RDONLY | os.O_DIRECT)
        except OSError as e:
            if self.has("o_direct"):
                raise
            self.assertEqual(e.errno, UNSUPPORTED["o_direct"])
            return
        rnd = random.Random(7)
        buf = mmap.mmap(-1, 1 << 20)
        try:
            for i in range(300):
                n = rnd.choice((1, 1, 2, 3, 16, 17, 64, 256)) * 4096
                off = rnd.randrange(0, len(data) + 4096, 4096)
                view = memoryview(buf)[:n]
                got = os.preadv(fd, [view], off)
                self.assertEqual(bytes(view[:got]), data[off:off + n],
                                 "read %d at %d" % (n, off))
                view.release()
            if not self.has("o_direct_backing_alignment"):
                # served unaligned too (QEMU probes with such reads)
                for i in range(200):
                    n = rnd.choice((1, 3, 63, 64, 65, 511, 4097, 70001))
                    off = rnd.randrange(0, len(data) + 100)
                    self.assertEqual(os.pread(fd, n, off), data[off:off + n],
                                     "read %d at %d" % (n, off))
        finally:
            os.close(fd)
            buf.close()

    @staticmethod
    def _unaligned_direct_write(path):
        """What an unaligned O_DIRECT write does to path: "ok" or an errno name."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
        try:
            os.pwrite(fd, b"odd", 7)
            return "ok"
        except OSError as e:
            return errno.errorcode[e.errno]
        finally:
            os.close(fd)

    def backing_path(self, name):
        """A scratch path on the storage beneath the mount (local only)."""
        raise NotImplementedError

    def _lock_child(self, path, kind):
        code = (
            "import fcntl,sys\n"
            "f=open(sys.argv[1],'r+')\n"
            "try:\n"
            "  if sys.argv[2]=='flock': fcntl.flock(f, fcntl.LOCK_EX|fcntl.LOCK_NB)\n"
            "  else: fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB, 10, 0)\n"
            "except OSError: sys.exit(3)\n"
            "sys.exit(0)\n")
        return subprocess.run(["python3", "-c", code, path, kind]).returncode

    def test_locks(self):
        write_file(self.p("lk"), b"0123456789" * 10)
        with open(self.p("lk"), "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            self.assertEqual(self._lock_child(self.p("lk"), "flock"), 3)
            fcntl.flock(f, fcntl.LOCK_UN)
            self.assertEqual(self._lock_child(self.p("lk"), "flock"), 0)
            fcntl.lockf(f, fcntl.LOCK_EX, 10, 0)
            self.assertEqual(self._lock_child(self.p("lk"), "posix"), 3)
            fcntl.lockf(f, fcntl.LOCK_UN, 10, 0)
            self.assertEqual(self._lock_child(self.p("lk"), "posix"), 0)

    # ---- real tools ---------------------------------------------------------

    def _tree(self, root):
        os.makedirs(os.path.join(root, "a", "b", "c"))
        for i in range(40):
            write_file(os.path.join(root, "a", "f%d" % i), os.urandom(i * 997))
        write_file(os.path.join(root, "a", "b", "big"), os.urandom(2 << 20))
        os.chmod(os.path.join(root, "a", "f3"), 0o600)
        if self.has("symlink"):
            os.symlink("../f1", os.path.join(root, "a", "b", "rel"))

    def test_cp_diff_tar(self):
        src = os.path.join(self.workdir_local(), "src")
        self._tree(src)
        r = subprocess.run(["cp", "-a", src, self.p("copy")], capture_output=True,
                           text=True)
        if r.returncode and not self.has("symlink_times") and self.has("symlink"):
            # the documented limit: a symlink's own times cannot be set
            for line in r.stderr.splitlines():
                self.assertRegex(line, r"^cp: preserving times for .*: "
                                 r"Operation not supported$")
        else:
            self.assertEqual(r.returncode, 0, r.stderr)
        subprocess.run(["diff", "-r", "--no-dereference", src, self.p("copy")], check=True)
        tarball = os.path.join(self.workdir_local(), "t.tar")
        subprocess.run(["tar", "-C", self.p("copy"), "-cf", tarball, "."], check=True)
        os.mkdir(self.p("untar"))
        subprocess.run(["tar", "-C", self.p("untar"), "-xf", tarball], check=True)
        subprocess.run(["diff", "-r", "--no-dereference", src, self.p("untar")], check=True)

    def test_git(self):
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid",
                   HOME=self.workdir_local())
        repo = self.p("repo")
        os.mkdir(repo)

        def git(*args):
            return subprocess.run(["git", "-C", repo] + list(args), check=True, env=env,
                                  capture_output=True, text=True).stdout
        git("init", "-q")
        for i in range(20):
            write_file(os.path.join(repo, "file%d.txt" % i), ("line %d\n" % i).encode() * 50)
        git("add", ".")
        git("commit", "-q", "-m", "first")
        write_file(os.path.join(repo, "file1.txt"), b"changed\n")
        git("commit", "-q", "-am", "second")
        git("gc", "-q")
        git("fsck", "--full", "--strict")
        self.assertEqual(len(git("log", "--oneline").splitlines()), 2)

    def test_sqlite(self):
        db = self.p("t.db")
        script = ("PRAGMA journal_mode=WAL;"
                  "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<5000)"
                  " INSERT INTO t(v) SELECT hex(randomblob(40)) FROM c;"
                  "DELETE FROM t WHERE id % 3 = 0; VACUUM;"
                  "PRAGMA integrity_check; SELECT count(*) FROM t;")
        out = subprocess.run(["sqlite3", db, script], check=True, capture_output=True,
                             text=True).stdout.split()
        self.assertIn("ok", out)
        self.assertEqual(out[-1], "3334")

    def workdir_local(self):
        if not hasattr(self, "_wd"):
            import tempfile
            self._wd = tempfile.mkdtemp(prefix="vfsd-local-")
            self.addCleanup(shutil.rmtree, self._wd, True)
        return self._wd

    def test_large_sequential(self):
        h = hashlib.sha256()
        chunk = os.urandom(1 << 20)
        with open(self.p("big"), "wb") as f:
            for i in range(32):
                f.write(chunk)
                h.update(chunk)
        h2 = hashlib.sha256()
        with open(self.p("big"), "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h2.update(b)
        self.assertEqual(h.hexdigest(), h2.hexdigest())
