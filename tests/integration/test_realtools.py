# SPDX-License-Identifier: GPL-2.0-or-later
"""Real tools through the real FUSE mount (issue 15): cp -a, tar -x then
tar --compare, rsync -a twice, of a tree with symlinks, hard links, odd
modes and sub-second times (realtools.py), on the local, SFTP and NFS
backends.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, tmpdir  # noqa: E402
import ganesha  # noqa: E402
from realtools import RealToolsSuite  # noqa: E402
from test_sftp import OnSftpMount, have_sshd  # noqa: E402


class LocalRealTools(RealToolsSuite, harness.TestCase):
    """On a file:// mount (default options: the kernel's passthrough where
    it has it)."""
    URL_OPTIONS = ""

    @classmethod
    def setUpClass(cls):
        cls.backing = tmpdir()
        os.chmod(cls.backing, 0o755)
        cls.vfsd = Vfsd([("/local", "file://" + cls.backing + cls.URL_OPTIONS)],
                        args=["-o", "allow_other,default_permissions"]).start()

    @classmethod
    def tearDownClass(cls):
        cls.vfsd.stop()

    def setUp(self):
        self.base = self.vfsd.path("local")
        super().setUp()


class LocalRealToolsNoPassthrough(LocalRealTools):
    """The same with every read and write through the daemon."""
    URL_OPTIONS = "?passthrough=no"


@unittest.skipUnless(have_sshd(), "needs OpenSSH's sshd (package openssh-server)")
class SftpRealTools(OnSftpMount, RealToolsSuite, harness.TestCase):
    """On an sftp:// mount of OpenSSH's internal-sftp.  SFTP v3 times are
    whole seconds (OpenSSH has no extension for more), and its attributes
    carry no inode number or link count: hard links are checked on the
    server."""
    PRECISION = {"file": 10**9, "dir": 10**9, "symlink": 10**9}
    LINKS_THROUGH_MOUNT = False

    def behind(self, path):
        return os.path.join(self.remote, os.path.relpath(path, self.base))

    # Hard links are also checked on the server's side (RealToolsSuite):
    # SFTP v3 carries no inode numbers; the names this mount linked show
    # one st_ino and their count as st_nlink while it runs
    # (backends/sftp/links.c).


_nfs = {}


def nfs_mount():
    """One nfs-ganesha and one vfsd with /nfs3 and /nfs4 of its export,
    for every NFS class here; stopped by tearDownModule."""
    if not _nfs:
        g = ganesha.Ganesha().start()
        _nfs["g"] = g
        for sub in ("v3", "v4"):
            os.mkdir(os.path.join(g.export, sub))
        _nfs["v"] = Vfsd([("/nfs3", g.url(version=3)), ("/nfs4", g.url(version=4))],
                         args=["-o", "allow_other,default_permissions"]).start()
    return _nfs["v"]


def tearDownModule():
    if "v" in _nfs:
        _nfs.pop("v").stop()
    if "g" in _nfs:
        _nfs.pop("g").stop()


@unittest.skipIf(ganesha.available(), ganesha.available())
class Nfs3RealTools(RealToolsSuite, harness.TestCase):
    """Over NFSv3: times set by name go through libnfs in microseconds
    (by handle, as cp -a and tar set a file's, in nanoseconds).
    nfs-ganesha (4.3, FSAL VFS) answers a SETATTR of a symlink's times
    with success and keeps the old ones (docs/conformance.md): no client
    can keep them there, and rsync sets them again on every run."""
    VERSION = 3
    PRECISION = {"file": 1000, "dir": 1000, "symlink": None}

    def setUp(self):
        self.base = nfs_mount().path("nfs%d" % self.VERSION, "v%d" % self.VERSION)
        super().setUp()


class Nfs4RealTools(Nfs3RealTools):
    """Over NFSv4: times keep nanoseconds."""
    VERSION = 4
    PRECISION = {"file": 1, "dir": 1, "symlink": None}


if __name__ == "__main__":
    harness.main()
