# SPDX-License-Identifier: GPL-2.0-or-later
"""docs/conformance.md, checked through the real mount.

Each test tries one row of the page that states a limit of FUSE, of a
backend or of its protocol, and asserts what the page says a caller gets,
so that the page and the code cannot drift apart: a test failing here means
the behaviour changed and the page must say so.  Rows that the page marks
"(issue 13)" belong to the tests of those changes, and rows that describe
defects are not enshrined here.  Limits the shared operation suite
(posix_suite.py) already asserts through its CAPS are not repeated.

One nfs-ganesha, one sshd and one vfsd (-o allow_other,default_permissions)
serve every class; each test works in a fresh directory.
"""
import ctypes
import errno
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import traceback
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, tmpdir  # noqa: E402
import ganesha  # noqa: E402
from ganesha import Ganesha  # noqa: E402
from posix_suite import read_file, write_file  # noqa: E402
from sshd import Sshd  # noqa: E402

_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_WHITEOUT = 4
FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_INSERT_RANGE = 0x20
# an unprivileged caller that needs no passwd entry
USER = 61002

NFS_SKIP = ganesha.available()
SFTP_SKIP = None if (shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")) else \
    "needs OpenSSH's sshd (package openssh-server)"
ACL_SKIP = None if shutil.which("setfacl") else "needs setfacl (package acl)"

_shared = {}


def setUpModule():
    harness.require_root(None)
    local = tmpdir()
    os.chmod(local, 0o777)
    mounts = [("/local", "file://" + local)]
    env = None
    backing = {"/local": local}
    if not NFS_SKIP:
        g = Ganesha().start()
        _shared["g"] = g
        for v in (3, 4):
            sub = os.path.join(g.export, "v%d" % v)
            os.mkdir(sub)
            os.chmod(sub, 0o777)
            mounts.append(("/nfs%d" % v, g.url("/v%d" % v, version=v)))
            backing["/nfs%d" % v] = sub
    else:
        print("note: NFS rows not checked: %s" % NFS_SKIP, file=sys.stderr)
    if not SFTP_SKIP:
        s = Sshd().start()
        _shared["s"] = s
        remote = tmpdir("vfsd-remote-")
        os.chmod(remote, 0o777)
        mounts.append(("/ssh", s.url(remote)))
        backing["/ssh"] = remote
        env = dict(os.environ, HOME=s.dir)
        env.pop("SSH_AUTH_SOCK", None)
    else:
        print("note: SFTP rows not checked: %s" % SFTP_SKIP, file=sys.stderr)
    v = Vfsd(mounts, args=["-o", "allow_other,default_permissions"], env=env).start()
    os.chmod(v.workdir, 0o755)      # let the unprivileged caller reach the mount
    _shared.update(v=v, backing=backing)


def tearDownModule():
    for k in ("v", "s", "g"):
        if k in _shared:
            _shared[k].stop()


def as_user(fn):
    """fn() run as uid/gid USER in a child; its result, or OSError raised
    again here with the child's errno."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(USER, USER, USER)
            os.setresuid(USER, USER, USER)
            out = {"ok": fn()}
        except OSError as e:
            out = {"errno": e.errno}
        except BaseException:
            out = {"error": traceback.format_exc()}
        data = json.dumps(out).encode()
        while data:
            data = data[os.write(w, data):]
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = json.loads(f.read())
    os.waitpid(pid, 0)
    if "errno" in out:
        raise OSError(out["errno"], os.strerror(out["errno"]))
    if "error" in out:
        raise AssertionError("in the child:\n" + out["error"])
    return out["ok"]


class Row(harness.TestCase):
    """A fresh directory in mount PREFIX: self.p() through the mount,
    self.b() the same name beneath it."""
    PREFIX = None

    def setUp(self):
        super().setUp()
        if self.PREFIX not in _shared["backing"]:
            self.skipTest("%s is not mounted (see the note above)" % self.PREFIX)
        name = "c-%s-%d" % (self._testMethodName, os.getpid())
        self.d = _shared["v"].path(self.PREFIX, name)
        self.bd = os.path.join(_shared["backing"][self.PREFIX], name)
        os.mkdir(self.d)
        os.chmod(self.d, 0o777)
        self.addCleanup(shutil.rmtree, self.bd, True)

    def p(self, *parts):
        return os.path.join(self.d, *parts)

    def b(self, *parts):
        return os.path.join(self.bd, *parts)

    def assertErrno(self, want, fn, *args, **kw):
        with self.assertRaises(OSError) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.errno, want, "expected %s, got %s" % (
            errno.errorcode[want], errno.errorcode.get(cm.exception.errno)))

    def wait_until(self, pred, what, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                self.fail("not within %.0f s: %s" % (timeout, what))
            time.sleep(0.05)

    def check_mtime_set(self, ns, want_ns):
        """utime by name to ns; the mtime read back through the mount once
        the attribute cache expired, and beneath, is want_ns."""
        write_file(self.p("t"), b"x")
        os.utime(self.p("t"), ns=(ns, ns))
        time.sleep(1.2)         # past cache_ttl: what the server keeps
        self.assertEqual(os.stat(self.p("t")).st_mtime_ns, want_ns)
        self.assertEqual(os.stat(self.b("t")).st_mtime_ns, want_ns)

    def check_acl_beneath_not_enforced(self):
        """A POSIX ACL that denies USER beneath: through the mount only the
        mode bits are checked, so USER reads the file."""
        write_file(self.p("f"), b"secret")
        os.chmod(self.p("f"), 0o644)
        subprocess.run(["setfacl", "-m", "u:%d:---" % USER, self.b("f")], check=True)
        self.assertTrue(os.getxattr(self.b("f"), "system.posix_acl_access"))
        time.sleep(1.2)
        self.assertTrue(as_user(lambda: read_file(self.p("f")) == b"secret"))
        r = subprocess.run(["setfacl", "-m", "u:%d:r" % USER, self.p("f")],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Operation not supported", r.stderr)

    def check_dir_stream_rewind(self):
        """A directory stream opened before a create shows the new name
        after rewinddir (os.listdir(fd) rewinds), although the backend
        reads listings whole."""
        fd = os.open(self.d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self.assertEqual(os.listdir(fd), [])
            write_file(self.p("late"), b"")
            self.assertEqual(os.listdir(fd), ["late"])
        finally:
            os.close(fd)
        self.assertIn("late", os.listdir(self.d))

    def check_late_efbig(self, late_errno):
        """A write past the largest file the server's file system allows
        returns at once; the next fsync fails with late_errno."""
        probe = self.b("limit")
        write_file(probe, b"")
        try:
            os.truncate(probe, 1 << 44)
            self.skipTest("the file system beneath takes 16 TiB files; no EFBIG to see")
        except OSError as e:
            self.assertEqual(e.errno, errno.EFBIG)
        fd = os.open(self.p("big"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self.assertEqual(os.pwrite(fd, b"Z", 1 << 44), 1)
            self.assertErrno(late_errno, os.fsync, fd)
        finally:
            os.close(fd)


class EveryMount(Row):
    """§ Every mount (FUSE and vfsd), on a local mount."""
    PREFIX = "/local"

    def test_nosuid_nodev(self):
        with open("/proc/self/mountinfo") as f:
            opts = [line.split()[5] for line in f if line.split()[4] == _shared["v"].mnt]
        self.assertEqual(len(opts), 1)
        self.assertIn("nosuid", opts[0].split(","))
        self.assertIn("nodev", opts[0].split(","))
        os.mknod(self.p("null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.close(os.open(self.b("null"), os.O_RDONLY))
        self.assertErrno(errno.EACCES, os.open, self.p("null"), os.O_RDONLY)

    def test_st_dev_st_ino_f_fsid(self):
        write_file(self.p("f"), b"")
        mine, beneath = os.stat(self.p("f")), os.stat(self.b("f"))
        self.assertNotEqual(mine.st_dev, beneath.st_dev)
        self.assertNotEqual(mine.st_ino, beneath.st_ino)
        # the inode number beneath, the mount's number in the top 8 bits
        self.assertEqual(mine.st_ino & ((1 << 56) - 1), beneath.st_ino)
        self.assertEqual(os.statvfs(self.d).f_fsid, 0)

    def test_o_tmpfile_refused(self):
        for prefix in _shared["backing"]:
            self.assertErrno(errno.EOPNOTSUPP, os.open, _shared["v"].path(prefix),
                             os.O_TMPFILE | os.O_RDWR, 0o600)

    def test_collapse_insert_range_refused(self):
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong,
                                    ctypes.c_longlong]
        write_file(self.p("f"), b"D" * (1 << 20))
        fd = os.open(self.p("f"), os.O_RDWR)
        try:
            for mode in (FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE):
                self.assertEqual(_libc.fallocate(fd, mode, 65536, 65536), -1)
                self.assertEqual(ctypes.get_errno(), errno.EOPNOTSUPP)
        finally:
            os.close(fd)

    def test_rename_whiteout_refused(self):
        write_file(self.p("a"), b"")
        r = _libc.renameat2(AT_FDCWD, os.fsencode(self.p("a")), AT_FDCWD,
                            os.fsencode(self.p("b")), ctypes.c_uint(RENAME_WHITEOUT))
        self.assertEqual((r, ctypes.get_errno()), (-1, errno.EINVAL))

    def test_lseek_past_the_size_limit(self):
        fd = os.open(self.p("f"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self.assertEqual(os.lseek(fd, 1 << 62, os.SEEK_SET), 1 << 62)
        finally:
            os.close(fd)

    def test_changes_beneath_seen_within_cache_ttl(self):
        """Size changed, file created, file removed beneath: seen through
        every mount within cache_ttl (1 s) and some slack."""
        for prefix, beneath in _shared["backing"].items():
            mine = _shared["v"].path(prefix, os.path.basename(self.d) + "-c")
            other = os.path.join(beneath, os.path.basename(mine))
            write_file(mine, b"12345")
            self.addCleanup(lambda p=other: os.path.exists(p) and os.unlink(p))
            self.assertEqual(os.stat(mine).st_size, 5)
            with open(other, "ab") as f:
                f.write(b"678")
            self.wait_until(lambda: os.stat(mine).st_size == 8, prefix + ": new size", 3)
            os.unlink(other)
            self.wait_until(lambda: not os.path.exists(mine), prefix + ": removal", 3)
            write_file(other, b"")
            self.wait_until(lambda: os.path.exists(mine), prefix + ": creation", 3)


@unittest.skipIf(NFS_SKIP, NFS_SKIP)
class Nfs3(Row):
    """§ NFSv3."""
    PREFIX = "/nfs3"

    def test_times_clamped_to_32_bits(self):
        self.check_mtime_set(-315_619_200 * 10**9, 0)
        self.check_mtime_set((2**32 + 10) * 10**9, (2**32 - 1) * 10**9)

    def test_times_by_name_in_microseconds(self):
        ns = 1_500_000_000_123_456_789
        self.check_mtime_set(ns, ns // 1000 * 1000)
        fd = os.open(self.p("t"), os.O_RDWR)
        try:
            os.utime(fd, ns=(ns, ns))
        finally:
            os.close(fd)
        time.sleep(1.2)
        self.assertEqual(os.stat(self.b("t")).st_mtime_ns, ns)

    def test_long_symlink_target(self):
        self.assertErrno(errno.ENOMEM, os.symlink, "y" * 4095, self.p("l"))
        os.symlink("y" * 3900, self.p("l"))
        self.assertEqual(os.readlink(self.p("l")), "y" * 3900)

    def test_xattrs(self):
        write_file(self.p("f"), b"")
        self.assertErrno(errno.EOPNOTSUPP, os.getxattr, self.p("f"), "user.none")
        self.assertEqual(os.listxattr(self.p("f")), [])

    @unittest.skipIf(ACL_SKIP, ACL_SKIP)
    def test_acls_unsupported_and_not_enforced(self):
        self.check_acl_beneath_not_enforced()

    def test_unlinked_open_file_is_silly_renamed(self):
        os.mkdir(self.p("d"))
        write_file(self.p("d", "f"), b"data")
        fd = os.open(self.p("d", "f"), os.O_RDWR)
        try:
            os.unlink(self.p("d", "f"))
            names = os.listdir(self.p("d"))
            self.assertEqual(len(names), 1)
            self.assertTrue(names[0].startswith(".vfsd-silly-"), names)
            self.assertEqual(os.fstat(fd).st_nlink, 1)
            self.assertEqual(os.pread(fd, 10, 0), b"data")
            self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("d"))
        finally:
            os.close(fd)
        self.wait_until(lambda: os.listdir(self.b("d")) == [], "silly file removed")
        os.rmdir(self.p("d"))

    def test_dir_stream_rewind(self):
        self.check_dir_stream_rewind()

    def test_write_past_the_server_limit_fails_late(self):
        self.check_late_efbig(errno.EFBIG)


@unittest.skipIf(NFS_SKIP, NFS_SKIP)
class Nfs4(Row):
    """§ NFSv4."""
    PREFIX = "/nfs4"

    def test_times_full_range_with_nanoseconds(self):
        for ns in (-315_619_200_123_456_789, 1_500_000_000_123_456_789,
                   (2**32 + 10) * 10**9 + 7):
            self.check_mtime_set(ns, ns)

    def test_long_paths_fail_with_eio(self):
        """Below about 3.5 KiB of server path, a mkdir fails with EIO."""
        fd = os.open(self.d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with self.assertRaises(OSError) as cm:
                for _ in range(16):
                    os.mkdir("c" * 250, dir_fd=fd)
                    nfd = os.open("c" * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                    os.close(fd)
                    fd = nfd
            self.assertEqual(cm.exception.errno, errno.EIO)
        finally:
            os.close(fd)

    def test_long_symlink_target(self):
        self.assertErrno(errno.EIO, os.symlink, "y" * 4095, self.p("l"))

    @unittest.skipIf(ACL_SKIP, ACL_SKIP)
    def test_acls_unsupported_and_not_enforced(self):
        self.check_acl_beneath_not_enforced()

    def test_dir_stream_rewind(self):
        self.check_dir_stream_rewind()


@unittest.skipIf(SFTP_SKIP, SFTP_SKIP)
class Sftp(Row):
    """§ SFTP."""
    PREFIX = "/ssh"

    def test_special_files_refused(self):
        self.assertErrno(errno.EOPNOTSUPP, os.mkfifo, self.p("fifo"))
        for kind, dev in ((stat.S_IFCHR, os.makedev(1, 3)), (stat.S_IFBLK, os.makedev(7, 0)),
                          (stat.S_IFSOCK, 0)):
            self.assertErrno(errno.EOPNOTSUPP, os.mknod, self.p("n"), kind | 0o644, dev)
        with socket.socket(socket.AF_UNIX) as s:
            self.assertErrno(errno.EOPNOTSUPP, s.bind, self.p("sock"))

    def test_lchown_is_the_links_own(self):
        """lsetstat@openssh.com: lchown changes the link, never its
        target (SETSTAT would follow it)."""
        write_file(self.p("f"), b"")
        os.symlink("f", self.p("l"))
        os.chown(self.p("l"), 1, 1, follow_symlinks=False)
        self.assertEqual(os.lstat(self.b("l")).st_uid, 1)
        self.assertEqual(os.stat(self.b("f")).st_uid, 0)
        self.assertEqual(os.lstat(self.p("l")).st_uid, 1)

    def test_times_whole_seconds_clamped_to_32_bits(self):
        self.check_mtime_set(1_500_000_000_123_456_789, 1_500_000_000 * 10**9)
        self.check_mtime_set(-315_619_200 * 10**9, 0)
        self.check_mtime_set((2**32 + 10) * 10**9, (2**32 - 1) * 10**9)

    def test_ctime_is_mtime(self):
        write_file(self.p("f"), b"")
        os.utime(self.p("f"), (1_000_000_000, 1_000_000_000))
        os.chmod(self.p("f"), 0o600)
        time.sleep(1.2)
        st = os.stat(self.p("f"))
        self.assertEqual(st.st_ctime_ns, st.st_mtime_ns)
        self.assertEqual(st.st_ctime, 1_000_000_000)

    def test_nlink_ino_blocks(self):
        os.mkdir(self.p("d"))
        os.mkdir(self.p("d", "sub"))
        self.assertEqual(os.stat(self.p("d")).st_nlink, 1)
        write_file(self.p("a"), b"")
        ino = os.stat(self.p("a")).st_ino
        os.rename(self.p("a"), self.p("b"))
        self.assertNotEqual(os.stat(self.p("b")).st_ino, ino)
        fd = os.open(self.p("sparse"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"x", (8 << 20) - 1)
            os.fsync(fd)
        finally:
            os.close(fd)
        time.sleep(1.2)
        st = os.stat(self.p("sparse"))
        self.assertEqual(st.st_blocks, (8 << 20) // 512)
        self.assertLess(os.stat(self.b("sparse")).st_blocks, st.st_blocks)
        self.assertEqual(st.st_blksize, 131072)

    @unittest.skipIf(ACL_SKIP, ACL_SKIP)
    def test_acls_unsupported_and_not_enforced(self):
        self.check_acl_beneath_not_enforced()

    def test_unlinked_open_file_stays_usable(self):
        write_file(self.p("f"), b"still")
        fd = os.open(self.p("f"), os.O_RDWR)
        try:
            os.unlink(self.p("f"))
            self.assertEqual(os.listdir(self.d), [])
            self.assertEqual(os.pwrite(fd, b"S", 0), 1)
            self.assertEqual(os.pread(fd, 10, 0), b"Still")
            self.assertEqual(os.fstat(fd).st_nlink, 1)
        finally:
            os.close(fd)

    def test_dir_stream_rewind(self):
        self.check_dir_stream_rewind()


if __name__ == "__main__":
    harness.main()
