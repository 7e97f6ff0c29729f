# SPDX-License-Identifier: GPL-2.0-or-later
"""Image awareness (issue 6, part 3), through the real mount: format
xattrs, `vfsctl image list/info`, and `vfsctl image clone` on a local
directory, over SFTP (in-daemon copy, and GNU cp on the server with
remote_exec) and over NFSv3 -- each clone byte-identical and still sparse.
"""
import errno
import fcntl
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, tmpdir  # noqa: E402
from test_control import VFSCTL, jq, vfsctl  # noqa: E402

MiB = 1 << 20


def qemu_img(*args):
    subprocess.run(["qemu-img"] + list(args), check=True, capture_output=True,
                   timeout=60)


def make_sparse(path, size=256 * MiB):
    """A sparse file: size bytes with two islands of random data (1 MiB at
    1 MiB, a few bytes at 100 MiB).  Returns its content's islands."""
    islands = {MiB: os.urandom(MiB), 100 * MiB: b"island at 100 MiB"}
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in islands.items():
            f.seek(off)
            f.write(data)
    return islands


def allocated(path):
    return os.stat(path).st_blocks * 512


def clone(v, src, dst):
    return subprocess.run([VFSCTL, "image", "clone", src, dst], capture_output=True,
                          text=True, timeout=300)


def stats(v, prefix):
    return jq(vfsctl(v, "stats", prefix, json_out=True).stdout, ".mounts[0]")


class CloneChecks:
    """Assertions shared by every backend's clone test."""

    def assertSameSparse(self, src, dst, sparse=True):
        self.assertEqual(os.stat(dst).st_size, os.stat(src).st_size)
        with open(src, "rb") as a, open(dst, "rb") as b:
            while True:
                x, y = a.read(8 * MiB), b.read(8 * MiB)
                self.assertEqual(x, y)
                if not x:
                    break
        # the 256 MiB file holds about 1 MiB of data: a copy that wrote
        # the zeros would allocate all of it
        if sparse:
            self.assertLess(allocated(dst), 8 * MiB,
                            "clone of a sparse image is not sparse")


class ImageLocal(CloneChecks, harness.TestCase):
    def setUp(self):
        self.back = tmpdir()
        self.other = tmpdir()
        self.v = Vfsd([("/img", "file://%s?shared=yes&cache_ttl=0" % self.back),
                       ("/other", "file://" + self.other)],
                      args=["--host-id", "hostA"]).start()
        self.addCleanup(self.v.stop)
        self.dir = self.v.path("img")

    def make_images(self):
        qemu_img("create", "-q", "-f", "raw", os.path.join(self.dir, "base.raw"), "64M")
        qemu_img("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw",
                 os.path.join(self.dir, "top.qcow2"), "64M")
        return os.path.join(self.dir, "base.raw"), os.path.join(self.dir, "top.qcow2")

    def test_format_xattrs(self):
        raw, top = self.make_images()
        x = lambda p, k: os.getxattr(p, "user.vfsd.image." + k).decode()  # noqa: E731
        self.assertEqual(x(top, "format"), "qcow2")
        self.assertEqual(x(top, "virtual_size"), str(64 * MiB))
        self.assertEqual(x(top, "backing_file"), "base.raw")
        self.assertEqual(x(top, "cluster_size"), "65536")
        self.assertEqual(x(top, "dirty"), "0")
        self.assertEqual(x(raw, "format"), "raw")
        self.assertEqual(x(raw, "virtual_size"), str(64 * MiB))
        with self.assertRaises(OSError):
            os.getxattr(raw, "user.vfsd.image.backing_file")
        self.assertEqual(x(top, "locked_by"), "")
        # a lock through this vfsd shows its host id, as QEMU's would
        fd = os.open(top, os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
            self.assertEqual(x(top, "locked_by"), "hostA")
            info = jq(vfsctl(self.v, "image", "info", top, json_out=True).stdout, ".")
            self.assertEqual(info["locked_by"], ["hostA"])
        finally:
            os.close(fd)
        self.assertEqual(x(top, "locked_by"), "")

    def test_list_and_info(self):
        raw, top = self.make_images()
        with open(os.path.join(self.dir, "notes.txt"), "w") as f:
            f.write("not an image, yet a raw file to a hypervisor\n")
        imgs = jq(vfsctl(self.v, "image", "list", self.dir, json_out=True).stdout, ".")
        if isinstance(imgs, dict):
            imgs = imgs.get("images", imgs)
        by_name = {os.path.basename(i["path"]): i for i in imgs}
        self.assertEqual(by_name["top.qcow2"]["format"], "qcow2")
        self.assertEqual(by_name["top.qcow2"]["backing_file"], "base.raw")
        self.assertEqual(by_name["base.raw"]["format"], "raw")
        self.assertEqual(by_name["base.raw"]["virtual_size"], 64 * MiB)
        # a fresh raw image allocates nothing, a qcow2 only its metadata
        self.assertLess(by_name["base.raw"]["allocated_size"], MiB)
        human = vfsctl(self.v, "image", "list", self.dir).stdout
        self.assertIn("top.qcow2", human)
        self.assertIn("qcow2", human)
        info = vfsctl(self.v, "image", "info", top).stdout
        self.assertIn("qcow2", info)
        self.assertIn("64.0 MiB", info)
        self.assertIn("base.raw", info)
        r = vfsctl(self.v, "image", "info", os.path.join(self.dir, "missing"),
                   check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("missing", r.stderr)

    def test_clone(self):
        src = os.path.join(self.dir, "src.raw")
        make_sparse(src)
        dst = os.path.join(self.dir, "dst.raw")
        r = clone(self.v, src, dst)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "", "no progress bar without a terminal")
        self.assertSameSparse(src, dst)
        self.assertSameSparse(os.path.join(self.back, "src.raw"),
                              os.path.join(self.back, "dst.raw"))
        self.assertEqual(os.stat(dst).st_mode & 0o777, os.stat(src).st_mode & 0o777)
        r = clone(self.v, src, dst)
        self.assertEqual(r.returncode, 1)
        self.assertIn("File exists", r.stderr)
        # two backends of one vfsd: no server-side copy, vfsctl copies
        r = clone(self.v, src, self.v.path("other", "x.raw"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertSameSparse(src, self.v.path("other", "x.raw"))
        r = clone(self.v, self.dir, os.path.join(self.dir, "d"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not a regular file", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "d")))


def have_sshd():
    return shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")


@unittest.skipUnless(have_sshd(), "needs OpenSSH's sshd (package openssh-server)")
class ImageSftp(CloneChecks, harness.TestCase):
    """Clones over SFTP: copy-data on the server (remote_exec off), and GNU
    cp on the server (remote_exec = yes); no data crosses the network
    either way."""

    @classmethod
    def setUpClass(cls):
        from sshd import Sshd
        from test_sftp import vfsd_env
        cls.sshd = Sshd().start()
        cls.remote = tmpdir("vfsd-remote-")
        url = cls.sshd.url(cls.remote)
        cls.v = Vfsd([("/ssh", url), ("/exec", url + "&remote_exec=yes")],
                     env=vfsd_env(cls.sshd.dir)).start()

    @classmethod
    def tearDownClass(cls):
        cls.v.stop()
        cls.sshd.stop()

    def test_clone_with_copy_data(self):
        """remote_exec off: vfsctl's copy_file_range becomes OpenSSH's
        copy-data, so no data crosses the network either; sftp-server
        writes the holes as zeros (vfsd(8) says so), remote_exec = yes
        keeps them (test_clone_on_server)."""
        make_sparse(os.path.join(self.remote, "a.raw"))
        before = stats(self.v, "/ssh")
        r = clone(self.v, self.v.path("ssh", "a.raw"), self.v.path("ssh", "a2.raw"))
        self.assertEqual(r.returncode, 0, r.stderr)
        after = stats(self.v, "/ssh")
        # nothing read through the daemon; what copy_range reports as
        # copied is counted as written
        self.assertEqual(after["bytes_read"], before["bytes_read"])
        self.assertEqual(after["bytes_written"] - before["bytes_written"], 256 * MiB)
        self.assertGreater(after["ops"]["copy_range"], before["ops"]["copy_range"])
        self.assertSameSparse(os.path.join(self.remote, "a.raw"),
                              os.path.join(self.remote, "a2.raw"), sparse=False)
        self.assertSameSparse(self.v.path("ssh", "a.raw"), self.v.path("ssh", "a2.raw"),
                              sparse=False)

    def test_clone_on_server(self):
        make_sparse(os.path.join(self.remote, "b.raw"))
        os.chmod(os.path.join(self.remote, "b.raw"), 0o640)
        before = stats(self.v, "/exec")
        r = clone(self.v, self.v.path("exec", "b.raw"), self.v.path("exec", "b2.raw"))
        self.assertEqual(r.returncode, 0, r.stderr)
        after = stats(self.v, "/exec")
        self.assertEqual(after["ops"]["clone"], before["ops"]["clone"] + 1)
        self.assertEqual(after["bytes_read"], before["bytes_read"])
        self.assertEqual(after["bytes_written"], before["bytes_written"])
        self.assertSameSparse(os.path.join(self.remote, "b.raw"),
                              os.path.join(self.remote, "b2.raw"))
        self.assertEqual(os.stat(os.path.join(self.remote, "b2.raw")).st_mode & 0o777, 0o640)
        # the new name is visible through the mount at once
        self.assertEqual(os.stat(self.v.path("exec", "b2.raw")).st_size, 256 * MiB)
        r = clone(self.v, self.v.path("exec", "b.raw"), self.v.path("exec", "b2.raw"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("File exists", r.stderr)

    def test_clone_refuses_non_file(self):
        """Only regular files are cloned; nothing is left behind."""
        os.mkdir(os.path.join(self.remote, "sub"))
        path = os.path.join(self.remote, "sub", "fifo")
        os.mkfifo(path)
        r = clone(self.v, self.v.path("exec", "sub", "fifo"),
                  self.v.path("exec", "sub", "copy"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a regular file", r.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.remote, "sub"))), ["fifo"])

    def test_format_xattr_over_sftp(self):
        qemu_img("create", "-q", "-f", "qcow2", self.v.path("ssh", "x.qcow2"), "1G")
        self.assertEqual(os.getxattr(self.v.path("ssh", "x.qcow2"),
                                     "user.vfsd.image.format"), b"qcow2")
        self.assertEqual(os.getxattr(self.v.path("ssh", "x.qcow2"),
                                     "user.vfsd.image.virtual_size"), str(1 << 30).encode())

    def test_format_xattrs_read_only_over_sftp(self):
        """The image attributes are read-only facts on every mount, also
        where the backend keeps no attributes of its own (SFTP): EPERM,
        as on a local mount, not the EOPNOTSUPP of the backend's gap."""
        path = self.v.path("ssh", "ro.raw")
        with open(path, "wb") as f:
            f.write(b"\0" * 4096)
        for call in (lambda: os.setxattr(path, "user.vfsd.image.format", b"qcow2"),
                     lambda: os.removexattr(path, "user.vfsd.image.format")):
            with self.assertRaises(OSError) as cm:
                call()
            self.assertEqual(cm.exception.errno, errno.EPERM)
        # other names keep the backend's answer
        with self.assertRaises(OSError) as cm:
            os.setxattr(path, "user.other", b"x")
        self.assertEqual(cm.exception.errno, errno.EOPNOTSUPP)


def have_ganesha():
    return shutil.which("ganesha.nfsd") or os.path.exists("/usr/bin/ganesha.nfsd")


@unittest.skipUnless(have_ganesha(), "needs nfs-ganesha (packages nfs-ganesha, nfs-ganesha-vfs)")
class ImageNfs(CloneChecks, harness.TestCase):
    def test_clone_nfs3(self):
        from ganesha import Ganesha
        g = Ganesha().start()
        self.addCleanup(g.stop)
        with Vfsd([("/nfs", g.url(version=3))]) as v:
            make_sparse(os.path.join(g.export, "n.raw"))
            r = clone(v, v.path("nfs", "n.raw"), v.path("nfs", "n2.raw"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertSameSparse(os.path.join(g.export, "n.raw"),
                                  os.path.join(g.export, "n2.raw"))


if __name__ == "__main__":
    harness.main()
