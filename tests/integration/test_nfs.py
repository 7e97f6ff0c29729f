# SPDX-License-Identifier: GPL-2.0-or-later
"""NFS backend (issue 4) through the real FUSE mount, against nfs-ganesha
on 127.0.0.1 (see ganesha.py)."""
import errno
import fcntl
import hashlib
import json
import mmap
import os
import random
import re
import socket
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, fault, tmpdir  # noqa: E402
import ganesha  # noqa: E402
from link_suite import LinkSuite  # noqa: E402
from ganesha import Ganesha  # noqa: E402
import rpcrelay  # noqa: E402
from rpcrelay import NFS_PROGRAM, NFSPROC3_PATHCONF, NFSPROC3_READ, OP4_READ, RpcRelay  # noqa: E402
from readahead_suite import MIB, ReadAheadChecks, check_reader_when_server_stops, patch_on_server  # noqa: E402
from posix_suite import ALL_CAPS, PosixSuite, check_locked_writes_through, read_file, write_file  # noqa: E402

SKIP = ganesha.available()

# What NFS has no operation for (in v3 and in the v4.0 libnfs speaks).
# RENAME_NOREPLACE is a check before the RENAME (not atomic against other
# clients); NFSv3 times go through libnfs in microseconds.
NFS_CAPS = ALL_CAPS - {"xattr", "fallocate", "punch_hole", "seek_data",
                       "rename_exchange", "utimens_nsec"}

# One server and one daemon for the shared suite: /nfs3 and /nfs4 are the
# same export through the two protocol versions, next to a local mount.
_shared = {}


def setUpModule():
    if SKIP:
        raise unittest.SkipTest(SKIP)
    g = Ganesha().start()
    # each version's suite in its own directory of the shared export, so
    # that what one leaves behind never meets the other
    for sub in ("v3", "v4"):
        os.mkdir(os.path.join(g.export, sub))
    local = tmpdir()
    v = Vfsd([("/nfs3", g.url(version=3)), ("/nfs4", g.url(version=4)),
              ("/local", "file://" + local)],
             args=["-o", "allow_other,default_permissions"]).start()
    _shared.update(g=g, v=v, local=local)


def tearDownModule():
    if "v" in _shared:
        _shared["v"].stop()
    if "g" in _shared:
        _shared["g"].stop()


def copy_across_restart(test, argv, dst, digest):
    """Run argv, a copy into dst, and restart the test's server 0.3 s in:
    either the copy fails with EIO (data may be lost) or dst is exact.
    Never silently wrong data."""
    cp = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    test.g.restart()
    _, err = cp.communicate(timeout=300)
    if cp.returncode == 0:
        with open(dst, "rb") as f:
            test.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest)
    else:
        test.assertIn("Input/output error", err)


class Nfs3Posix(PosixSuite, harness.TestCase):
    """The shared operation suite over NFSv3."""
    CAPS = NFS_CAPS

    def setUp(self):
        self.base = _shared["v"].path("nfs3", "v3")
        super().setUp()


class Nfs4Posix(PosixSuite, harness.TestCase):
    """The shared operation suite over NFSv4 (timestamps go out with
    nanoseconds here: our own SETATTR compound)."""
    CAPS = NFS_CAPS | {"utimens_nsec"}

    def setUp(self):
        self.base = _shared["v"].path("nfs4", "v4")
        super().setUp()


class Nfs3Links(LinkSuite, harness.TestCase):
    """Hard links over NFSv3: one node per file handle's fileid."""
    VERSION = 3

    def setUp(self):
        sub = "v%d" % self.VERSION
        self.base = _shared["v"].path("nfs%d" % self.VERSION, sub)
        self.export = os.path.join(_shared["g"].export, sub)
        super().setUp()

    def behind(self, path):
        return os.path.join(self.export, os.path.relpath(path, self.base))


class Nfs4Links(Nfs3Links):
    """The same over NFSv4."""
    VERSION = 4


class Coherence(harness.TestCase):
    """Data through vfsd and data in the exported directory are the same
    bytes, both ways, for both versions."""

    def setUp(self):
        self.g, self.v = _shared["g"], _shared["v"]

    def _check(self, prefix):
        tag = "%s-%d-%d" % (prefix, os.getpid(), time.monotonic_ns())
        data = os.urandom(5 * 1024 * 1024 + 17)
        write_file(self.v.path(prefix, tag + "-in"), data)
        self.assertEqual(read_file(os.path.join(self.g.export, tag + "-in")), data)
        st = os.stat(os.path.join(self.g.export, tag + "-in"))
        # created with the caller's ids, mode as asked, a sane mtime
        self.assertEqual((st.st_uid, st.st_gid), (os.getuid(), os.getgid()))
        self.assertEqual(st.st_mode & 0o777, 0o644)
        self.assertLess(abs(st.st_mtime - time.time()), 600)

        # another writer creates a file in the export: fresh names only,
        # ganesha misbehaves on names deleted behind its back and reused
        other = os.urandom(300000)
        write_file(os.path.join(self.g.export, tag + "-out"), other)
        self.assertEqual(read_file(self.v.path(prefix, tag + "-out")), other)

        # another writer changes a file vfsd has read: the next open sees it
        # (close-to-open), at the latest once the kernel's attribute cache
        # of cache_ttl has expired
        changed = os.urandom(300001)
        write_file(os.path.join(self.g.export, tag + "-out"), changed)

        def fresh():
            return read_file(self.v.path(prefix, tag + "-out")) == changed
        harness.wait_for(fresh, 5, "vfsd to see the server-side change")

    def test_v3(self):
        self._check("nfs3")

    def test_v4(self):
        self._check("nfs4")

    def _write_behind(self, prefix):
        """Ordinary writes return before the server has the data (write-
        behind); whatever could see the file waits for it first."""
        path = self.v.path(prefix, "wb-%d" % time.monotonic_ns())
        pieces = [os.urandom(1 << 20) for _ in range(12)]
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            for i, p in enumerate(pieces):
                self.assertEqual(os.pwrite(fd, p, i << 20), len(p))
                # size and data right after each write, through the
                # handle and by name
                self.assertEqual(os.fstat(fd).st_size, (i + 1) << 20)
                self.assertEqual(os.stat(path).st_size, (i + 1) << 20)
                self.assertEqual(os.pread(fd, 64, i << 20), p[:64])
            # an overwrite of queued data lands after it, not before
            os.pwrite(fd, b"A" * 4096, 5 << 20)
            os.pwrite(fd, b"B" * 4096, 5 << 20)
            os.ftruncate(fd, 11 << 20)
            afd = os.open(path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(afd, b"tail")
            finally:
                os.close(afd)
        finally:
            os.close(fd)
        want = b"".join(pieces)[:11 << 20]
        want = want[:5 << 20] + b"B" * 4096 + want[(5 << 20) + 4096:] + b"tail"
        self.assertEqual(read_file(os.path.join(self.g.export, os.path.basename(path))), want)

    def test_locked_file_writes_through_v3(self):
        """Under a cross-host lock no write waits in the write-behind
        queue: each is on the server when write(2) returns, so a holder
        whose lease runs out has nothing left to send."""
        name = "locked-%d" % time.monotonic_ns()
        check_locked_writes_through(self, self.v.path("nfs3", name),
                                    os.path.join(self.g.export, name))

    def test_write_behind_v3(self):
        self._write_behind("nfs3")

    def test_write_behind_v4(self):
        self._write_behind("nfs4")

    def _handle_follows_server_rename(self, prefix):
        """fchmod, futimens and ftruncate change the file the descriptor
        has open, also after another client renamed it and put a new
        file under the old name: they go by file handle, not by name."""
        tag = "fh-%s-%d" % (prefix, time.monotonic_ns())
        old = os.path.join(self.g.export, tag)
        moved = os.path.join(self.g.export, tag + "-moved")
        fd = os.open(self.v.path(prefix, tag), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"x" * 10000)
            os.fsync(fd)
            os.rename(old, moved)           # behind vfsd's back
            write_file(old, b"another file")
            os.chmod(old, 0o640)
            os.fchmod(fd, 0o600)
            os.utime(fd, ns=(1_500_000_000_123_456_789, 1_600_000_000_987_654_321))
            os.ftruncate(fd, 4321)
            os.utime(fd, ns=(1_500_000_000_123_456_789, 1_600_000_000_987_654_321))
            st = os.fstat(fd)
            self.assertEqual((st.st_mode & 0o7777, st.st_size), (0o600, 4321))
            self.assertEqual(st.st_mtime_ns, 1_600_000_000_987_654_321)
        finally:
            os.close(fd)
        st = os.stat(moved)
        self.assertEqual((st.st_mode & 0o7777, st.st_size), (0o600, 4321))
        self.assertEqual((st.st_atime_ns, st.st_mtime_ns),
                         (1_500_000_000_123_456_789, 1_600_000_000_987_654_321))
        # st_blocks in 512-byte units over both versions (du)
        self.assertEqual(os.stat(self.v.path(prefix, tag + "-moved")).st_blocks,
                         st.st_blocks)
        st = os.stat(old)
        self.assertEqual((st.st_mode & 0o7777, st.st_size), (0o640, 12))
        self.assertEqual(read_file(old), b"another file")

    def test_handle_follows_server_rename_v3(self):
        self._handle_follows_server_rename("nfs3")

    def test_handle_follows_server_rename_v4(self):
        self._handle_follows_server_rename("nfs4")

    def test_v3_v4_same_file(self):
        tag = "both-%d" % os.getpid()
        write_file(self.v.path("nfs3", tag), b"written over v3")
        self.assertEqual(read_file(self.v.path("nfs4", tag)), b"written over v3")
        write_file(self.v.path("nfs4", tag + "-4"), b"x" * 100000)
        self.assertEqual(read_file(self.v.path("nfs3", tag + "-4")), b"x" * 100000)


class V4Writes(harness.TestCase):
    """NFSv4 WRITEs are our own COMPOUNDs on a connection of their own
    (backends/nfs/wire.c): libnfs 4.0.0 cannot encode one of 4 KiB or more.
    Every size from 1 byte to past the server's wtmax, at unaligned offsets
    and past 4 GiB, lands exactly, through the synchronous path (O_SYNC,
    O_DIRECT) and write-behind; a large write goes out in WRITEs of wtmax,
    not 3.5 KiB pieces; a lost reply is sent again; a paused server times
    out."""

    def setUp(self):
        if SKIP:
            self.skipTest(SKIP)
        self.g = Ganesha().start()
        self.addCleanup(self.g.stop)

    def _vfsd(self, **params):
        v = Vfsd([("/n4", self.g.url(version=4, cache_ttl=0, **params))]).start()
        self.addCleanup(v.stop)
        m = re.search(r"NFSv4, .* wsize (\d+)\)", v.log())
        self.assertIsNotNone(m, v.log())
        return v, int(m.group(1))

    def test_sizes_and_offsets(self):
        v, wsize = self._vfsd()
        # the server's own limit, not libnfs 4.0.0's 4 KiB: at least 64 KiB
        self.assertGreaterEqual(wsize, 65536)
        sizes = [1, 3, 4095, 4096, 4097, 65541, wsize - 1, wsize, wsize + 1,
                 3 * wsize + 7]
        offsets = [0, 1, 4093, (4 << 30) + 3]
        modes = {"sync": os.O_SYNC, "behind": 0}
        for mode, flag in modes.items():
            for off in offsets:
                name = "f-%s-%d" % (mode, off)
                want = bytearray()
                fd = os.open(v.path("n4", name), os.O_RDWR | os.O_CREAT | flag, 0o644)
                try:
                    pos = off
                    for size in sizes:
                        data = os.urandom(size)
                        self.assertEqual(os.pwrite(fd, data, pos), size)
                        want += data
                        pos += size
                    os.fsync(fd)
                finally:
                    os.close(fd)
                with open(os.path.join(self.g.export, name), "rb") as f:
                    f.seek(off)
                    got = f.read()
                    self.assertEqual(os.fstat(f.fileno()).st_size, off + len(want), name)
                self.assertTrue(got == want, "%s: the server holds other bytes" % name)
                # and read back through the mount
                fd = os.open(v.path("n4", name), os.O_RDONLY)
                try:
                    self.assertTrue(os.pread(fd, len(want), off) == want, name)
                finally:
                    os.close(fd)

    def test_transfer_sizes_are_the_servers(self):
        """NFSv4 READs and WRITEs are as large as the server says
        (FATTR4_MAXREAD/MAXWRITE, which libnfs 4.0.0 never asks for: it
        left them at 64 KiB), as NFSv3's are (FSINFO: ganesha's 1 MiB);
        v4 READs stop at 512 KiB, where ganesha serves them fastest."""
        v = Vfsd([("/n3", self.g.url(version=3)), ("/n4", self.g.url(version=4))]).start()
        self.addCleanup(v.stop)
        sizes = dict(re.findall(r"\(NFSv(\d), \d+ connections, (rsize \d+ wsize \d+)\)",
                                v.log()))
        self.assertEqual(set(sizes), {"3", "4"}, v.log())
        # v4 READs stop at 512 KiB (nfsb_limits), WRITEs do not
        self.assertEqual(sizes["3"], "rsize 1048576 wsize 1048576")
        self.assertEqual(sizes["4"], "rsize 524288 wsize 1048576")
        self.assertNotEqual(sizes["4"], "rsize 65536 wsize 65536")

    def test_direct_io_past_4g(self):
        v, wsize = self._vfsd()
        buf = mmap.mmap(-1, 2 * wsize + 8192)
        data = os.urandom(len(buf))
        buf[:] = data
        off = (5 << 30) + 4096
        fd = os.open(v.path("n4", "direct"), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
        try:
            self.assertEqual(os.pwritev(fd, [buf], off), len(buf))
            os.fsync(fd)
        finally:
            os.close(fd)
            buf.close()
        with open(os.path.join(self.g.export, "direct"), "rb") as f:
            f.seek(off)
            self.assertTrue(f.read() == data)

    def _relay(self, **kw):
        r = RpcRelay(self.g.nfs_port, **kw).start()
        self.addCleanup(r.stop)
        v, wsize = self._vfsd(nfsport=r.port)
        return r, v, wsize

    @staticmethod
    def _writes(r):
        return [c for c in r.calls if rpcrelay.OP4_WRITE in c[4]]

    def test_writes_go_out_at_wtmax(self):
        """A 1 MiB write is WRITEs of the server's wtmax (libnfs 4.0.0
        alone: 293 of 3.5 KiB)."""
        r, v, wsize = self._relay()
        size = 1 << 20
        buf = mmap.mmap(-1, size)
        buf[:] = os.urandom(size)
        fd = os.open(v.path("n4", "big"), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
        try:
            before = len(self._writes(r))
            self.assertEqual(os.pwritev(fd, [buf], 0), size)
            writes = self._writes(r)[before:]
        finally:
            os.close(fd)
        lens = [w[3] for w in writes]
        self.assertEqual(len(writes), -(-size // min(wsize, size)), lens)
        self.assertLessEqual(len(writes), 16, lens)
        # each carries its share of the data and the RPC around it
        self.assertGreater(min(lens), min(wsize, size) - 1, lens)
        with open(os.path.join(self.g.export, "big"), "rb") as f:
            self.assertTrue(f.read() == bytes(buf))
        buf.close()

    def test_lost_reply_is_sent_again(self):
        """The WRITE's reply is lost with its connection: the write goes
        out once more on a new connection and succeeds, exact."""
        r, v, wsize = self._relay(lose=rpcrelay.v4_op_is(rpcrelay.OP4_WRITE))
        data = os.urandom(wsize + 12345)
        fd = os.open(v.path("n4", "lost"), os.O_WRONLY | os.O_CREAT | os.O_SYNC, 0o644)
        try:
            self.assertEqual(os.pwrite(fd, data, 7), len(data))
        finally:
            os.close(fd)
        self.assertEqual(r.lost, 1, "the relay lost no reply")
        with open(os.path.join(self.g.export, "lost"), "rb") as f:
            self.assertTrue(f.read() == bytes(7) + data)
        self.assertEqual(v.mount_info("/n4")["state"], "connected")

    def test_paused_server_times_out(self):
        timeout = 3
        v, wsize = self._vfsd(timeout=timeout)
        write_file(v.path("n4", "p"), b"x")
        buf = mmap.mmap(-1, wsize)
        buf[:] = os.urandom(wsize)
        fd = os.open(v.path("n4", "p"), os.O_RDWR | os.O_DIRECT)
        try:
            self.g.pause()
            self.addCleanup(self.g.resume)
            t0 = time.monotonic()
            with self.assertRaises(OSError) as cm:
                os.pwritev(fd, [buf], 0)
            took = time.monotonic() - t0
            self.assertIn(cm.exception.errno, (errno.ETIMEDOUT, errno.EIO))
            self.assertLess(took, timeout + 2)
            self.g.resume()
            # the mount comes back, and so does the file's wire
            def works():
                try:
                    return os.pwritev(fd, [buf], 0) == wsize
                except OSError as e:
                    self.assertIn(e.errno, (errno.ETIMEDOUT, errno.EIO))
                    return False
            harness.wait_for(works, 30, "writes to work again")
        finally:
            os.close(fd)
        with open(os.path.join(self.g.export, "p"), "rb") as f:
            self.assertTrue(f.read() == bytes(buf))
        buf.close()


class WireReads(harness.TestCase):
    """READs (v3 and v4) come on each context's own connection
    (backends/nfs/wire.c), their data received straight into the reader's
    buffer.  A reply lost with its connection is asked again, exact; a
    paused server fails every read and write within its timeout and the
    mount comes back; a restart mid-read gives exact data or EIO;
    connections reset many times leave no descriptor behind; with no port
    below 1024 free, ordinary ports are used."""

    def setUp(self):
        if SKIP:
            self.skipTest(SKIP)
        self.g = Ganesha().start()
        self.addCleanup(self.g.stop)

    def _vfsd(self, nfsport=None, **params):
        mounts = []
        for version in (3, 4):
            kw = dict(params, cache_ttl=0)
            if nfsport:
                kw["nfsport"] = nfsport
            mounts.append(("/n%d" % version, self.g.url(version=version, **kw)))
        v = Vfsd(mounts).start()
        self.addCleanup(v.stop)
        return v

    @staticmethod
    def _pread_direct(path, size, off=0):
        """size bytes at off with O_DIRECT: READs, not the page cache."""
        buf = mmap.mmap(-1, size)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        try:
            n = os.preadv(fd, [buf], off)
            return bytes(buf[:n])
        finally:
            os.close(fd)
            buf.close()

    def test_lost_read_reply_is_asked_again(self):
        data = os.urandom((3 << 20) + 4096)
        write_file(os.path.join(self.g.export, "lost"), data)
        for version, lose in ((3, rpcrelay.proc_is(3, NFSPROC3_READ)),
                              (4, rpcrelay.v4_op_is(OP4_READ))):
            with self.subTest(version=version):
                r = RpcRelay(self.g.nfs_port, lose=lose).start()
                self.addCleanup(r.stop)
                v = Vfsd([("/n", self.g.url(version=version, nfsport=r.port,
                                            cache_ttl=0))]).start()
                self.addCleanup(v.stop)
                got = self._pread_direct(v.path("n", "lost"), len(data))
                self.assertEqual(r.lost, 1, "the relay lost no reply")
                self.assertTrue(got == data, "the read returned other bytes")
                self.assertEqual(v.mount_info("/n")["state"], "connected")
                v.stop()
                r.stop()

    def test_paused_server_reads_time_out(self):
        timeout = 3
        v = self._vfsd(timeout=timeout)
        data = os.urandom(4 << 20)
        write_file(os.path.join(self.g.export, "p"), data)
        for prefix in ("n3", "n4"):
            self.assertTrue(self._pread_direct(v.path(prefix, "p"), len(data)) == data)
        self.g.pause()
        self.addCleanup(self.g.resume)
        results = {}

        def reader(prefix):
            t0 = time.monotonic()
            try:
                self._pread_direct(v.path(prefix, "p"), len(data))
                results[prefix] = ("ok", time.monotonic() - t0)
            except OSError as e:
                results[prefix] = (e.errno, time.monotonic() - t0)

        threads = [threading.Thread(target=reader, args=(p,)) for p in ("n3", "n4")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout * 4)
            self.assertFalse(t.is_alive(), "a read hangs past its timeout")
        for prefix in ("n3", "n4"):
            err, took = results[prefix]
            self.assertIn(err, (errno.ETIMEDOUT, errno.EIO), results)
            self.assertLess(took, timeout + 2, results)
        self.g.resume()
        for prefix in ("n3", "n4"):
            def works():
                try:
                    return self._pread_direct(v.path(prefix, "p"), len(data)) == data
                except OSError as e:
                    self.assertIn(e.errno, (errno.ETIMEDOUT, errno.EIO))
                    return False
            harness.wait_for(works, 30, "/%s reads to work again" % prefix)

    def test_restart_mid_read(self):
        """cp from the mount while the server restarts: the copy is exact
        or cp fails with EIO; never other bytes.  Reads through a
        descriptor opened before work again after."""
        v = self._vfsd()
        data = os.urandom(64 << 20)
        write_file(os.path.join(self.g.export, "big"), data)
        digest = hashlib.sha256(data).hexdigest()
        local = tmpdir()
        for prefix in ("n3", "n4"):
            fd = os.open(v.path(prefix, "big"), os.O_RDONLY | os.O_DIRECT)
            buf = mmap.mmap(-1, 1 << 20)
            try:
                dst = os.path.join(local, "copy-" + prefix)
                copy_across_restart(self, ["dd", "if=" + v.path(prefix, "big"), "of=" + dst,
                                           "bs=1M", "iflag=direct"], dst, digest)

                def works():
                    try:
                        n = os.preadv(fd, [buf], 5 << 20)
                        return buf[:n] == data[5 << 20:6 << 20]
                    except OSError as e:
                        self.assertIn(e.errno, (errno.ETIMEDOUT, errno.EIO))
                        return False
                harness.wait_for(works, 30, "reads on an open descriptor to work")
            finally:
                os.close(fd)
                buf.close()

    def test_resets_leave_no_descriptors(self):
        """Fifty READ replies lost with their connection: each read is
        exact, or fails with EIO when its retry lost its reply too; vfsd
        holds as many descriptors after as before."""
        data = os.urandom(256 << 10)
        write_file(os.path.join(self.g.export, "r"), data)
        r = RpcRelay(self.g.nfs_port, lose=rpcrelay.proc_is(3, NFSPROC3_READ),
                     lose_count=50).start()
        self.addCleanup(r.stop)
        v = Vfsd([("/n", self.g.url(version=3, nfsport=r.port, cache_ttl=0,
                                    connections=1))]).start()
        self.addCleanup(v.stop)

        def fds():
            return len(os.listdir("/proc/%d/fd" % v.proc.pid))

        def read():
            try:
                got = self._pread_direct(v.path("n", "r"), len(data))
                self.assertTrue(got == data, "a read returned other bytes")
                return True
            except OSError as e:
                # its retry lost its reply too
                self.assertEqual(e.errno, errno.EIO)
                return False

        # the context and its wire connected
        harness.wait_for(read, 30, "a first read to work")
        before = fds()
        t0 = time.monotonic()
        while r.lost < 50 and time.monotonic() - t0 < 120:
            read()
        self.assertEqual(r.lost, 50)
        harness.wait_for(read, 30, "reads to work again")
        self.assertEqual(fds(), before)

    def test_paused_server_writes_time_out(self):
        """A large O_DIRECT write (v3: libnfs; v4: the wire) to a paused
        server fails within its timeout, and writes work again once it
        is back."""
        timeout = 3
        v = self._vfsd(timeout=timeout)
        size = 8 << 20
        buf = mmap.mmap(-1, size)
        buf[:] = os.urandom(size)
        fds = {}
        for prefix in ("n3", "n4"):
            write_file(v.path(prefix, "w"), b"x")
            fds[prefix] = os.open(v.path(prefix, "w"), os.O_RDWR | os.O_DIRECT)
        try:
            self.g.pause()
            self.addCleanup(self.g.resume)
            results = {}

            def writer(prefix):
                t0 = time.monotonic()
                try:
                    os.pwritev(fds[prefix], [buf], 0)
                    results[prefix] = ("ok", time.monotonic() - t0)
                except OSError as e:
                    results[prefix] = (e.errno, time.monotonic() - t0)

            threads = [threading.Thread(target=writer, args=(p,)) for p in fds]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout * 4)
                self.assertFalse(t.is_alive(), "a write hangs past its timeout")
            for prefix in fds:
                err, took = results[prefix]
                self.assertIn(err, (errno.ETIMEDOUT, errno.EIO), results)
                self.assertLess(took, timeout + 2, results)
            self.g.resume()
            for prefix in fds:
                def works():
                    try:
                        return os.pwritev(fds[prefix], [buf], 0) == size
                    except OSError as e:
                        self.assertIn(e.errno, (errno.ETIMEDOUT, errno.EIO))
                        return False
                harness.wait_for(works, 30, "/%s writes to work again" % prefix)
                with open(os.path.join(self.g.export, "w"), "rb") as f:
                    self.assertTrue(f.read() == bytes(buf), prefix)
        finally:
            for fd in fds.values():
                os.close(fd)
            buf.close()

    def test_no_reserved_port_free(self):
        """Every port below 1024 taken (many mounts on one host): the
        contexts and their connections of our own use ordinary ports,
        which ganesha takes; reads and writes work, v3 and v4."""
        held = []
        try:
            for port in range(1, 1024):
                s = socket.socket()
                try:
                    s.bind(("0.0.0.0", port))
                    held.append(s)
                except OSError:
                    s.close()
            v = self._vfsd()
            data = os.urandom((2 << 20) + 5)
            for prefix in ("n3", "n4"):
                fd = os.open(v.path(prefix, "lowport"),
                             os.O_RDWR | os.O_CREAT | os.O_SYNC, 0o644)
                try:
                    self.assertEqual(os.pwrite(fd, data, 0), len(data))
                finally:
                    os.close(fd)
                self.assertTrue(self._pread_direct(v.path(prefix, "lowport"),
                                                   len(data) + 4091) == data)
        finally:
            for s in held:
                s.close()


class ReadAhead(ReadAheadChecks, harness.TestCase):
    """Read-ahead over NFS (the shared checks, over v3 and v4), plus:
    random readers get none, a truncation through another open, a change
    on the server past the attribute timeout and a lock taken are never
    hidden by data read ahead before them, and readahead=0 turns it off.
    Issue 18."""
    PREFIX = "/n3"

    @classmethod
    def setUpClass(cls):
        if SKIP:
            raise unittest.SkipTest(SKIP)
        cls.g = Ganesha().start()
        cls.back = cls.g.export
        try:
            cls.v = Vfsd([("/n3", cls.g.url(version=3)),
                          ("/n4", cls.g.url(version=4)),
                          ("/off", cls.g.url(version=3, readahead=0))]).start()
        except Exception:
            cls.g.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.v.stop()
        cls.g.stop()

    def test_sequential_v4(self):
        self.check_sequential("/n4", "seq4")

    def test_reader_ahead_when_server_stops(self):
        """readahead_suite.check_reader_when_server_stops, over NFSv3."""
        v = Vfsd([("/t", self.g.url(version=3, timeout=3))]).start()
        self.addCleanup(v.stop)
        check_reader_when_server_stops(self, v, "/t", self.back, self.g, 3)

    def test_random_reads_read_nothing_ahead(self):
        data, _ = self.server_file("rand", 64)
        before = self.ra_stats("/n3")
        fd = self.open_cold(self.v.path("/n3", "rand"))
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        rnd = random.Random(18)
        for _ in range(300):
            off = rnd.randrange(len(data) // 4096) * 4096
            self.assertEqual(os.pread(fd, 4096, off), data[off:off + 4096])
        after = self.ra_stats("/n3")
        self.assertLessEqual(after["read"] - before["read"], 4 * MIB, after)

    def test_slow_mapped_reader_fetches_each_byte_about_once(self):
        """A reader through a mapping asks for no attributes, so a segment
        it comes to later than the attribute timeout (cache_ttl, 1 s)
        after its read is refused and its bytes read again.  A mapped
        reader at 6 MiB/s with a window of 8 MiB (1.3 s ahead of it) has
        the window halved at the first such refusal: the server sends
        little more than the file, not each byte twice."""
        data, _ = self.server_file("slowmap", 32)
        self.wait_nothing_held()
        before = self.v.stats("/n3")
        fd = self.open_cold(self.v.path("/n3", "slowmap"))
        m = mmap.mmap(fd, len(data), prot=mmap.PROT_READ)
        self.addCleanup(m.close)
        m.madvise(mmap.MADV_SEQUENTIAL)
        start = time.monotonic()
        for i, off in enumerate(range(0, len(data), MIB)):
            if m[off:off + MIB] != bytes(data[off:off + MIB]):
                self.fail("mapped bytes at %d differ" % off)
            # the pace on average, whatever a fault cost
            time.sleep(max(0.0, start + (i + 1) / 6 - time.monotonic()))
        rate = len(data) / MIB / (time.monotonic() - start)
        after = self.v.stats("/n3")
        ra = {k: after["readahead"][k] - before["readahead"][k]
              for k in ("read", "served", "dropped")}
        fetched = after["bytes_read"] - before["bytes_read"]
        if rate < 4:
            # two segments ahead are then a second ahead as well
            self.skipTest("the machine read the mapping at %.1f MiB/s, "
                          "not the 6 the test paces it at" % rate)
        self.assertGreaterEqual(ra["served"], len(data) // 2, ra)
        # the segments queued under the 8 MiB window, read twice
        self.assertLessEqual(fetched, len(data) * 3 // 2, (fetched, ra))

    def test_truncate_through_another_open_is_seen(self):
        """Cut to 10 MiB and grown back: what lay beyond the cut reads as
        zeros, not as what was read ahead of it before."""
        data, _ = self.server_file("t", 24)
        path = self.v.path("/n3", "t")
        _, m = self.reader_at_8mib(path, data)
        cut = 10 * MIB + 5
        os.truncate(path, cut)
        os.truncate(path, len(data))
        data[cut:] = bytes(len(data) - cut)
        self.read_mapped(m, data, 8 * MIB, len(data))

    def test_server_change_seen_at_the_next_read(self):
        """A change made on the server (as by another host) to the part
        of the file read ahead: the next read sees it, as it would the
        kernel's own pages of an open file on a shared mount, whose size
        and times it asks for at each read once a getattr of the open
        file answered (reader_at_8mib's mmap makes one, an fstat)."""
        data, back = self.server_file("s", 24)
        fd, _ = self.reader_at_8mib(self.v.path("/n3", "s"), data)
        patch_on_server(back, data, b"changed on the server" * 3)
        self.read_on(fd, data, 8 * MIB, len(data))

    def test_file_grown_on_the_server_reads_whole(self):
        """A reader at the end of a file, which then grows on the server:
        the reader gets the new bytes, not the end of the file that was
        read ahead of it."""
        data, back = self.server_file("g", 8)
        data = data[:8 * MIB - 100]
        os.truncate(back, len(data))
        fd = self.open_cold(self.v.path("/n3", "g"))
        self.read_on(fd, data, 0, len(data))
        more = os.urandom(3 * MIB)
        with open(back, "ab") as f:
            f.write(more)
        data += more
        # the kernel keeps the size the lookup gave for the attribute
        # timeout (cache_ttl, 1 s), read-ahead or not
        time.sleep(1.2)
        self.read_on(fd, data, 7 * MIB, len(data))

    def test_lock_taken_drops_what_was_read_ahead(self):
        """Another host writes the file, then lets go of its lock; this
        host's reader takes the lock and must read what was written, also
        through a mapping (whose faults ask for no attributes)."""
        data, back = self.server_file("l", 24)
        fd, m = self.reader_at_8mib(self.v.path("/n3", "l"), data)
        patch_on_server(back, data, b"written under another host's lock" * 3)
        fcntl.lockf(fd, fcntl.LOCK_SH)
        self.read_mapped(m, data, 8 * MIB, len(data))
        fcntl.lockf(fd, fcntl.LOCK_UN)

    def test_close_and_exit_with_reads_ahead_paused(self):
        """Reads ahead held by a paused server (a fault rule pausing every
        read) hold neither the close of their file nor vfsd's exit: a
        close sends no more reads, and the exit lets paused calls go."""
        v = Vfsd([("/f", "fault+" + self.g.url(version=3))]).start()
        self.addCleanup(v.stop)
        data, _ = self.server_file("p", 24)
        fd = os.open(v.path("/f", "p"), os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        self.read_on(fd, data, 0, 8 * MIB)
        rid = int(fault(v, "/f", "add", "op=read", "pause").stdout)
        # the next read queues the window's next segments, which pause
        # (the read itself may be answered from what was read before,
        # or pause too: a thread of its own)
        t = threading.Thread(target=os.pread, args=(fd, MIB, 8 * MIB),
                             daemon=True)
        t.start()

        def paused():
            rules = json.loads(fault(v, "/f", "list", json_out=True).stdout)
            return [r for r in rules["rules"] if r["id"] == rid][0]["paused"]
        harness.wait_for(lambda: paused() >= 1, 30, "a read paused")
        t.join(2)
        os.close(fd)
        t0 = time.monotonic()
        v.stop()
        self.assertLess(time.monotonic() - t0, 30)
        t.join(30)

    def test_readahead_0_reads_nothing_ahead(self):
        data, _ = self.server_file("off", 16)
        fd = self.open_cold(self.v.path("/off", "off"))
        self.read_on(fd, data, 0, len(data))
        self.assertEqual(self.ra_stats("/off"),
                         {"budget": 0, "held": 0, "read": 0, "served": 0,
                          "dropped": 0})


class LoneRandomReader(harness.TestCase):
    """Fair sharing (issue 17) must not hold a file alone on the mount to
    one request at a time: a VM disk's random reads at queue depth 16
    would each wait a whole round trip (issue 18).  Reads are paused in
    the fault layer (over NFS, with the mount's 4 connections), so the
    number paused at once is the number fair sharing let go."""

    @classmethod
    def setUpClass(cls):
        if SKIP:
            raise unittest.SkipTest(SKIP)
        cls.g = Ganesha().start()
        cls.v = Vfsd([("/f", "fault+" + cls.g.url(version=3))]).start()

    @classmethod
    def tearDownClass(cls):
        cls.v.stop()
        cls.g.stop()

    def rule_paused(self, rid):
        out = fault(self.v, "/f", "list", json_out=True).stdout
        return [r for r in json.loads(out)["rules"] if r["id"] == rid][0]["paused"]

    def check_paused_together(self, name, size, threads, want):
        """`threads` O_DIRECT reads of `size` bytes at once from `name`:
        `want` of them reach the backend together, no more; after the
        resume every one returns the file's bytes."""
        data = os.urandom(8 * MIB)
        with open(os.path.join(self.g.export, name), "wb") as f:
            f.write(data)
        fd = os.open(self.v.path("f", name), os.O_RDONLY | os.O_DIRECT)
        self.addCleanup(os.close, fd)
        rid = int(fault(self.v, "/f", "add", "op=read", "path=/" + name, "pause").stdout)
        self.addCleanup(fault, self.v, "/f", "clear", check=False)
        results = {}

        def read_at(i):
            buf = mmap.mmap(-1, size)
            off = (i * 7919 * 4096) % (8 * MIB - size)
            off -= off % 4096
            results[i] = (off, os.preadv(fd, [buf], off), bytes(buf))

        ts = [threading.Thread(target=read_at, args=(i,), daemon=True)
              for i in range(threads)]
        for t in ts:
            t.start()
        harness.wait_for(lambda: self.rule_paused(rid) >= want, 20,
                         "%d reads of %s to reach the backend" % (want, name))
        time.sleep(0.5)         # no more come once `want` are in flight
        self.assertEqual(self.rule_paused(rid), want)
        fault(self.v, "/f", "clear")
        for t in ts:
            t.join(30)
        self.assertEqual(len(results), threads)
        for off, n, got in results.values():
            self.assertEqual((n, got), (size, data[off:off + size]))

    def test_small_reads_go_on_every_connection_but_one(self):
        # 4 connections: one is kept for a file with nothing in flight
        self.check_paused_together("rand.img", 4096, 8, 3)

    def test_large_reads_go_one_at_a_time(self):
        # 1 MiB of data in flight is the share: a streamer's second
        # request of 1 MiB waits (a small reader beside it would not)
        self.check_paused_together("stream.img", MIB, 4, 1)


class NameMax(harness.TestCase):
    """The longest name is the server's (NFSv3 PATHCONF, NFSv4 maxname),
    not libnfs's constant 256: programs size names from pathconf, and a
    name one byte longer than the answer fails with ENAMETOOLONG."""

    def setUp(self):
        self.g, self.v = _shared["g"], _shared["v"]

    def _check(self, prefix, sub):
        d = self.v.path(prefix, sub)
        self.assertEqual(os.statvfs(d).f_namemax, 255)
        self.assertEqual(os.pathconf(d, "PC_NAME_MAX"), 255)
        longest = "n%d" % os.getpid()
        longest += "x" * (255 - len(longest))
        write_file(os.path.join(d, longest), b"255")
        self.assertEqual(read_file(os.path.join(self.g.export, sub, longest)), b"255")
        os.unlink(os.path.join(d, longest))
        too_long = longest + "y"
        src = os.path.join(d, "src-%d" % os.getpid())
        write_file(src, b"s")
        self.addCleanup(os.unlink, src)
        for what, call in (
                ("create", lambda p: os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)),
                ("mkdir", os.mkdir), ("stat", os.stat),
                ("symlink", lambda p: os.symlink("t", p)),
                ("link", lambda p: os.link(src, p)),
                ("rename", lambda p: os.rename(src, p))):
            with self.subTest(what=what):
                with self.assertRaises(OSError) as cm:
                    call(os.path.join(d, too_long))
                self.assertEqual(cm.exception.errno, errno.ENAMETOOLONG)
        self.assertFalse(any(n.startswith(longest[:20])
                             for n in os.listdir(os.path.join(self.g.export, sub))))

    def test_v3(self):
        self._check("nfs3", "v3")

    def test_v4(self):
        self._check("nfs4", "v4")


class Ownership(harness.TestCase):
    """What another user creates through vfsd (root) is that user's."""

    def test_new_objects_belong_to_the_caller(self):
        if SKIP:
            self.skipTest(SKIP)
        g = _shared["g"]
        for ver in (3, 4):
            sub = "own%d" % ver
            os.mkdir(os.path.join(g.export, sub))
            os.chmod(os.path.join(g.export, sub), 0o777)
        with Vfsd([("/n3", g.url(version=3)), ("/n4", g.url(version=4))],
                  args=["-o", "allow_other,default_permissions"]) as v:
            os.chmod(os.path.dirname(v.mnt), 0o755)
            for ver in (3, 4):
                d = v.path("n%d" % ver, "own%d" % ver)
                r = subprocess.run(
                    ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                     "sh", "-c", "echo hi > %s/f && mkdir %s/d && ln -s x %s/l && "
                     "mkfifo %s/p" % (d, d, d, d)],
                    capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
                for name in ("f", "d", "l", "p"):
                    st = os.lstat(os.path.join(g.export, "own%d" % ver, name))
                    self.assertEqual((st.st_uid, st.st_gid), (65534, 65534),
                                     "v%d %s" % (ver, name))


class LostReplies(harness.TestCase):
    """A call the server carried out whose reply was lost with its
    connection is made again on a new one (nfsb_call): a retried
    MKDIR/SYMLINK/LINK that finds what it asked for, a retried REMOVE/RMDIR
    that finds nothing and a retried RENAME that finds its source at the
    target are the first try's success, as in the kernel's NFS client.
    The same answers without a retry stay errors."""

    @classmethod
    def setUpClass(cls):
        if SKIP:
            raise unittest.SkipTest(SKIP)
        cls.g = Ganesha().start()
        cls.addClassCleanup(cls.g.stop)

    def setUp(self):
        self.dir = os.path.join(self.g.export, self.id().rsplit(".", 1)[-1])
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o777)

    def _vfsd(self, lose, version=3):
        r = RpcRelay(self.g.nfs_port, lose=lose).start()
        self.addCleanup(r.stop)
        sub = "/" + os.path.basename(self.dir)
        v = Vfsd([("/n", self.g.url(sub, version=version, nfsport=r.port,
                                    cache_ttl=0))]).start()
        self.addCleanup(v.stop)
        return r, v

    def _lost(self, r):
        self.assertEqual(r.lost, 1, "the relay lost no reply")

    def test_mkdir(self):
        r, v = self._vfsd(rpcrelay.proc_is(3, rpcrelay.NFSPROC3_MKDIR))
        os.mkdir(v.path("n", "d"))
        self._lost(r)
        self.assertTrue(os.path.isdir(os.path.join(self.dir, "d")))
        # no retry: an existing name is EEXIST
        with self.assertRaises(FileExistsError):
            os.mkdir(v.path("n", "d"))

    def test_mkdir_existing_not_given_away(self):
        """A retried MKDIR's EEXIST for a directory that was there before
        the first try (whose lost reply was that EEXIST) is no success for
        the caller: a directory of vfsd's own identity (root's), made by
        root on the server just before the caller's MKDIR arrived, is not
        given to the caller as if the caller had made it."""
        target = os.path.join(self.dir, "d")
        mkdir3 = rpcrelay.proc_is(3, rpcrelay.NFSPROC3_MKDIR)

        def root_first(prog, vers, proc, payload):
            # root takes the name on the server as the MKDIR goes out
            if not mkdir3(prog, vers, proc, payload):
                return False
            os.mkdir(target, 0o755)
            return True

        r = RpcRelay(self.g.nfs_port, lose=root_first).start()
        self.addCleanup(r.stop)
        base = harness.reachable_tmpdir("vfsd-lost-")
        os.mkdir(os.path.join(base, "mnt"), 0o755)
        v = Vfsd([("/n", self.g.url("/" + os.path.basename(self.dir), version=3,
                                    nfsport=r.port, cache_ttl=0))],
                 args=["-o", "allow_other,default_permissions"],
                 mnt=os.path.join(base, "mnt")).start()
        self.addCleanup(v.stop)
        user = harness.Account("attacker", 4242, 4242, [])
        self.assertEqual(harness.try_as(user, os.mkdir, v.path("n", "d")), "EEXIST")
        self._lost(r)
        self.assertEqual(os.stat(target).st_uid, 0)

    def test_symlink(self):
        r, v = self._vfsd(rpcrelay.proc_is(3, rpcrelay.NFSPROC3_SYMLINK))
        os.symlink("target", v.path("n", "l"))
        self._lost(r)
        self.assertEqual(os.readlink(os.path.join(self.dir, "l")), "target")
        with self.assertRaises(FileExistsError):
            os.symlink("target", v.path("n", "l"))

    def test_mknod(self):
        r, v = self._vfsd(rpcrelay.proc_is(3, rpcrelay.NFSPROC3_MKNOD))
        os.mkfifo(v.path("n", "p"), 0o644)
        self._lost(r)
        self.assertTrue(stat.S_ISFIFO(os.lstat(os.path.join(self.dir, "p")).st_mode))

    def test_link(self):
        write_file(os.path.join(self.dir, "f"), b"x")
        r, v = self._vfsd(rpcrelay.proc_is(3, rpcrelay.NFSPROC3_LINK))
        os.link(v.path("n", "f"), v.path("n", "g"))
        self._lost(r)
        self.assertEqual(os.stat(os.path.join(self.dir, "g")).st_ino,
                         os.stat(os.path.join(self.dir, "f")).st_ino)
        with self.assertRaises(FileExistsError):
            os.link(v.path("n", "f"), v.path("n", "g"))

    def test_unlink(self):
        write_file(os.path.join(self.dir, "f"), b"x")
        write_file(os.path.join(self.dir, "h"), b"x")
        r, v = self._vfsd(rpcrelay.proc_is(3, rpcrelay.NFSPROC3_REMOVE))
        os.unlink(v.path("n", "f"))
        self._lost(r)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "f")))
        # no retry: a name removed by someone else is ENOENT
        os.stat(v.path("n", "h"))
        os.unlink(os.path.join(self.dir, "h"))
        with self.assertRaises(FileNotFoundError):
            os.unlink(v.path("n", "h"))

    def test_rmdir(self):
        os.mkdir(os.path.join(self.dir, "d"))
        r, v = self._vfsd(rpcrelay.proc_is(3, rpcrelay.NFSPROC3_RMDIR))
        os.rmdir(v.path("n", "d"))
        self._lost(r)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "d")))

    def test_rename(self):
        write_file(os.path.join(self.dir, "a"), b"a")
        write_file(os.path.join(self.dir, "h"), b"h")
        r, v = self._vfsd(rpcrelay.proc_is(3, rpcrelay.NFSPROC3_RENAME))
        os.rename(v.path("n", "a"), v.path("n", "b"))
        self._lost(r)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "a")))
        self.assertEqual(read_file(os.path.join(self.dir, "b")), b"a")
        # no retry: a source removed by someone else is ENOENT
        os.stat(v.path("n", "h"))
        os.unlink(os.path.join(self.dir, "h"))
        with self.assertRaises(FileNotFoundError):
            os.rename(v.path("n", "h"), v.path("n", "b"))

    def test_exclusive_create_v3(self):
        """O_EXCL over NFSv3 is an EXCLUSIVE CREATE with a verifier: its
        retry after a lost reply finds the file its first try made and
        succeeds, with the mode asked for and the times of now (the
        server kept the verifier in them)."""
        r, v = self._vfsd(rpcrelay.proc_is(3, rpcrelay.NFSPROC3_CREATE))
        fd = os.open(v.path("n", "x"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            os.write(fd, b"data")
        finally:
            os.close(fd)
        self._lost(r)
        st = os.stat(os.path.join(self.dir, "x"))
        self.assertEqual(st.st_mode & 0o777, 0o640)
        self.assertLess(abs(st.st_mtime - time.time()), 60)
        self.assertLess(abs(st.st_atime - time.time()), 60)
        self.assertEqual(read_file(os.path.join(self.dir, "x")), b"data")
        # no retry: an existing name is EEXIST, another's file untouched
        write_file(os.path.join(self.dir, "y"), b"theirs")
        os.chmod(os.path.join(self.dir, "y"), 0o600)
        with self.assertRaises(FileExistsError):
            os.open(v.path("n", "y"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.assertEqual(os.stat(os.path.join(self.dir, "y")).st_mode & 0o777, 0o600)
        self.assertEqual(read_file(os.path.join(self.dir, "y")), b"theirs")

    def _vfsd_rewrite(self, fn):
        r = RpcRelay(self.g.nfs_port, rewrite=(
            rpcrelay.proc_is(3, rpcrelay.NFSPROC3_CREATE), fn)).start()
        self.addCleanup(r.stop)
        sub = "/" + os.path.basename(self.dir)
        v = Vfsd([("/n", self.g.url(sub, version=3, nfsport=r.port,
                                    cache_ttl=0))]).start()
        self.addCleanup(v.stop)
        return r, v

    def test_exclusive_create_v3_without_handle(self):
        """A CREATE reply without the new file's handle (optional in
        NFSv3): the file the name leads to is the one made, by its number
        in the reply's attributes, and gets the mode asked for."""
        r, v = self._vfsd_rewrite(rpcrelay.create3_reply(handle=False))
        fd = os.open(v.path("n", "x"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o604)
        os.close(fd)
        self.assertEqual(r.rewritten, 1, "the relay changed no CREATE reply")
        self.assertEqual(os.stat(os.path.join(self.dir, "x")).st_mode & 0o777, 0o604)

    def test_exclusive_create_v3_names_another_file(self):
        """The reply gives no handle and its file number is not that of
        the file the name leads to (another object put there in between):
        nothing is set through the name, and O_EXCL fails with EEXIST."""
        r, v = self._vfsd_rewrite(rpcrelay.create3_reply(handle=False, fileid_delta=1))
        with self.assertRaises(FileExistsError):
            os.open(v.path("n", "x"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o604)
        self.assertEqual(r.rewritten, 1, "the relay changed no CREATE reply")
        st = os.stat(os.path.join(self.dir, "x"))
        self.assertNotEqual(st.st_mode & 0o777, 0o604,
                            "the mode was set on a file the CREATE did not name")

    def test_exclusive_create_v3_without_handle_or_attributes(self):
        """Neither handle nor attributes: the file cannot be told from
        another put at its name, so nothing is set through the name and
        the open fails with EIO (a server that answers so is rare)."""
        r, v = self._vfsd_rewrite(rpcrelay.create3_reply(handle=False, attributes=False))
        with self.assertRaises(OSError) as cm:
            os.open(v.path("n", "x"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o604)
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(r.rewritten, 1, "the relay changed no CREATE reply")
        self.assertNotEqual(os.stat(os.path.join(self.dir, "x")).st_mode & 0o777, 0o604)

    def test_jukebox_is_tried_again(self):
        """A server that answers "try again later" (NFS3ERR_JUKEBOX: busy,
        nothing done) is asked again after a short wait, as the kernel's
        client does, and the caller sees the answer, not EAGAIN."""
        write_file(os.path.join(self.dir, "f"), b"x" * 10)
        armed = threading.Event()
        left = [2]
        getattr3 = rpcrelay.proc_is(3, rpcrelay.NFSPROC3_GETATTR)

        def busy(prog, vers, proc, payload):
            if not (armed.is_set() and getattr3(prog, vers, proc, payload)) or not left[0]:
                return False
            left[0] -= 1
            return True

        r = RpcRelay(self.g.nfs_port, rewrite=(
            busy, rpcrelay.status_reply(rpcrelay.NFS3ERR_JUKEBOX))).start()
        self.addCleanup(r.stop)
        sub = "/" + os.path.basename(self.dir)
        v = Vfsd([("/n", self.g.url(sub, version=3, nfsport=r.port,
                                    cache_ttl=0))]).start()
        self.addCleanup(v.stop)
        fd = os.open(v.path("n", "f"), os.O_RDONLY)
        try:
            armed.set()
            self.assertEqual(os.fstat(fd).st_size, 10)
        finally:
            os.close(fd)
        self.assertEqual(r.rewritten, 2, "the relay answered no GETATTR with JUKEBOX")

    def test_exclusive_create_v4_close_lost(self):
        """NFSv4: the CLOSE right after an OPEN that created the file
        loses its reply with the connection.  The file is open all the
        same (its handle is all vfsd keeps; the open state goes with the
        dead connection's lease): O_EXCL succeeds and the mode is the one
        asked for, not EEXIST from an OPEN made again."""
        r, v = self._vfsd(rpcrelay.v4_op_is(rpcrelay.OP4_CLOSE), version=4)
        fd = os.open(v.path("n", "x"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            os.write(fd, b"data")
        finally:
            os.close(fd)
        self._lost(r)
        st = os.stat(os.path.join(self.dir, "x"))
        self.assertEqual(st.st_mode & 0o777, 0o640)
        self.assertEqual(read_file(os.path.join(self.dir, "x")), b"data")


    @unittest.expectedFailure
    def test_exclusive_create_v4_open_lost(self):
        """NFSv4: the OPEN of an O_EXCL create loses its reply with the
        connection.  Not handled yet: libnfs 4.0 draws a new random
        EXCLUSIVE4 verifier for every OPEN and looks the name up before
        sending one, so its retry answers EEXIST for the file its first
        OPEN made (and that file keeps mode 0600 and the verifier in its
        times).  Telling it apart needs an OPEN of vfsd's own with a
        verifier it keeps, as NFSv3 has (test_exclusive_create_v3)."""
        r, v = self._vfsd(rpcrelay.v4_op_is(rpcrelay.OP4_OPEN), version=4)
        fd = os.open(v.path("n", "x"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.close(fd)
        self._lost(r)


class Mounting(harness.TestCase):
    """URL handling and start-up errors."""

    @classmethod
    def setUpClass(cls):
        if SKIP:
            raise unittest.SkipTest(SKIP)
        cls.g = Ganesha().start()

    @classmethod
    def tearDownClass(cls):
        cls.g.stop()

    def assertStartupError(self, url, needles):
        mnt = tmpdir()
        t0 = time.monotonic()
        r = harness.run_vfsd(["-f", "-m", "/n=" + url, mnt], timeout=60)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 2, r.stderr)
        for needle in needles:
            self.assertIn(needle, r.stderr)
        self.assertFalse(harness.is_mounted(mnt))
        return took

    def test_wrong_export(self):
        for version in (3, 4):
            url = "nfs://127.0.0.1/no/such/export?version=%d&nfsport=%d" % (
                version, self.g.nfs_port)
            if version == 3:
                url += "&mountport=%d" % self.g.mnt_port
            self.assertStartupError(url, ["nfs://127.0.0.1/no/such/export"])

    def test_unreachable_port(self):
        port = harness.free_port()      # nothing listens there
        url = "nfs://127.0.0.1/x?nfsport=%d&mountport=%d&timeout=5" % (port, port)
        took = self.assertStartupError(url, ["nfs://127.0.0.1/x"])
        self.assertLess(took, 15)

    def test_bad_options(self):
        self.assertStartupError(self.g.url(version=5), ["version"])
        self.assertStartupError(self.g.url(connections=0), ["connections"])
        self.assertStartupError(self.g.url(bogus=1), ["bogus"])

    def test_path_below_export(self):
        os.makedirs(os.path.join(self.g.export, "sub", "dir"), exist_ok=True)
        write_file(os.path.join(self.g.export, "sub", "dir", "deep"), b"deep")
        with Vfsd([("/d3", self.g.url("/sub/dir", version=3)),
                   ("/d4", self.g.url("/sub/dir", version=4))]) as v:
            self.assertEqual(read_file(v.path("d3", "deep")), b"deep")
            self.assertEqual(read_file(v.path("d4", "deep")), b"deep")
            write_file(v.path("d3", "new3"), b"3")
            self.assertEqual(read_file(os.path.join(self.g.export, "sub", "dir", "new3")),
                             b"3")
        self.assertStartupError(self.g.url("/sub/missing", version=3), ["/sub/missing"])

    def test_pathconf_unanswered_at_mount_v3(self):
        """A server that answers the mount but never the PATHCONF asked
        for the longest name: the mount is made all the same (255, as for
        a server that does not say), and the file handle libnfs opened for
        the PATHCONF is freed, not lost with the connection the timeout
        destroys (the sanitizer build finds it leaked at vfsd's exit)."""
        drop = {(NFS_PROGRAM, 3, NFSPROC3_PATHCONF)}
        with RpcRelay(self.g.nfs_port, drop) as r:
            url = self.g.url(version=3, nfsport=r.port, timeout=2)
            with Vfsd([("/n", url)]) as v:
                self.assertGreaterEqual(r.dropped, 1)
                self.assertIn("gives no longest name", v.log())

                def works():
                    try:
                        return os.statvfs(v.path("n")).f_namemax == 255
                    except OSError as e:
                        # down for a backoff after the timeout
                        self.assertEqual(e.errno, errno.EIO)
                        return False
                harness.wait_for(works, 20, "the mount to work")


class Faults(harness.TestCase):
    """Server restarts and a server that stops answering."""

    def setUp(self):
        if SKIP:
            self.skipTest(SKIP)
        self.g = Ganesha().start()
        self.addCleanup(self.g.stop)
        self.local = tmpdir()

    def _vfsd(self, **params):
        v = Vfsd([("/n3", self.g.url(version=3, **params)),
                  ("/n4", self.g.url(version=4, **params)),
                  ("/local", "file://" + self.local)])
        v.start()
        self.addCleanup(v.stop)
        return v

    def _lost_write_is_reported(self, v, prefix, name="unstable", child_close=False):
        """Unstable writes lost to a server restart: the next write, fsync
        or close of the owner says EIO.  child_close: a forked child's
        close of its copy of the descriptor comes first and says EIO
        too."""
        fd = os.open(v.path(prefix, name), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"u" * (4 << 20))     # unstable, not committed
            self.g.restart()
            if child_close:
                with self.assertRaises(OSError) as cm:
                    harness.run_as(None, os.close, fd, timeout=60)
                self.assertEqual(cm.exception.errno, errno.EIO, prefix)
            # the verifier changed (v3) or the connection was lost with
            # uncommitted data (v4): the next write, fsync or close says so
            errors = []
            for fn in (lambda: os.write(fd, b"more"), lambda: os.fsync(fd)):
                try:
                    fn()
                except OSError as e:
                    errors.append(e.errno)
            try:
                os.close(fd)
            except OSError as e:
                errors.append(e.errno)
            fd = -1
            self.assertIn(errno.EIO, errors, prefix)
        finally:
            if fd >= 0:
                os.close(fd)

    def test_lost_write_outlives_a_forked_childs_close(self):
        """A child forked with the file open (QEMU's and libvirt's
        helpers, subprocess) closes its copy of the descriptor: that close
        reports the loss of unstable writes to a server restart, and must
        not take it from the owner, whose next write, fsync or close still
        says EIO (the kernel's rule: a flush reports, fsync consumes).
        Before, the child's close took it and the owner's fsync and close
        succeeded with the data gone."""
        v = self._vfsd()
        for prefix in ("n3", "n4"):
            self._lost_write_is_reported(v, prefix, "forked", child_close=True)
            harness.wait_for(lambda: os.path.exists(v.path(prefix, "forked")),
                             30, "the mount to come back")

    def test_restart_reports_lost_writes_and_recovers(self):
        v = self._vfsd()
        for prefix in ("n3", "n4"):
            write_file(v.path(prefix, "before-" + prefix), b"before")
            self._lost_write_is_reported(v, prefix)
            # the mount recovers for new operations
            harness.wait_for(lambda: os.path.exists(v.path(prefix, "before-" + prefix)),
                             30, "the mount to come back")
            data = os.urandom(2 << 20)
            write_file(v.path(prefix, "after-" + prefix), data)
            self.assertEqual(read_file(os.path.join(self.g.export, "after-" + prefix)), data)
            self.assertEqual(read_file(v.path(prefix, "before-" + prefix)), b"before")

    def test_read_of_file_removed_elsewhere_v3(self):
        """A file another client removed on the server answers a read of
        its open handle with ESTALE, as the kernel's NFS client does; the
        connection it was read on is sound and stays (libnfs's own pread
        answers -EFAULT for any failed READ, which read as a lost
        connection: EIO, a reconnect, the mount 'reconnecting')."""
        v = self._vfsd(cache_ttl=0)
        other = Vfsd([("/n3", self.g.url(version=3, cache_ttl=0))]).start()
        self.addCleanup(other.stop)
        write_file(v.path("n3", "gone"), b"g" * 65536)
        # O_DIRECT: the READ itself, not a cached page or the kernel's
        # attribute check before a cached read, meets the stale handle
        fd = os.open(v.path("n3", "gone"), os.O_RDONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, 4096)
        try:
            os.unlink(other.path("n3", "gone"))
            with self.assertRaises(OSError) as cm:
                os.preadv(fd, [buf], 0)
            self.assertEqual(cm.exception.errno, errno.ESTALE, os.strerror(cm.exception.errno))
        finally:
            os.close(fd)
            buf.close()
        info = v.mount_info("/n3")
        self.assertEqual((info["state"], info["reconnects"]), ("connected", 0))

    def test_restart_counts_reconnects(self):
        """A server restart breaks the connections; each one rebuilt is
        counted in vfsctl mounts (reconnects), which says connected again,
        for NFSv3 and NFSv4 alike.  The local mount beside them counts
        none."""
        v = self._vfsd(cache_ttl=0)
        for prefix in ("n3", "n4"):
            write_file(v.path(prefix, "a-" + prefix), b"a")
            info = v.mount_info("/" + prefix)
            self.assertEqual((info["state"], info["reconnects"]), ("connected", 0))
        self.g.restart()
        for prefix in ("n3", "n4"):
            def works():
                try:
                    return read_file(v.path(prefix, "a-" + prefix)) == b"a"
                except OSError as e:
                    self.assertIn(e.errno, (errno.EIO, errno.ETIMEDOUT))
                    return False
            harness.wait_for(works, 60, "/%s to work again" % prefix)
            info = v.mount_info("/" + prefix)
            self.assertGreaterEqual(info["reconnects"], 1, prefix)
            self.assertEqual(info["state"], "connected", prefix)
        self.assertEqual(v.mount_info("/local")["reconnects"], 0)

    def test_restart_mid_copy(self):
        """cp of a large file while the server restarts: either cp fails
        (EIO: data may be lost) or the copy is complete and exact, and the
        mount works afterwards.  Never silently wrong data."""
        v = self._vfsd()
        src = os.path.join(self.local, "src")
        data = os.urandom(64 << 20)
        write_file(src, data)
        digest = hashlib.sha256(data).hexdigest()
        for prefix in ("n3", "n4"):
            dst = v.path(prefix, "copy-" + prefix)
            copy_across_restart(self, ["cp", src, dst], dst, digest)
            write_file(v.path(prefix, "later"), b"works")
            self.assertEqual(read_file(os.path.join(self.g.export, "later")), b"works")
            os.unlink(os.path.join(self.g.export, "later"))

    def test_sigstop_times_out_and_local_keeps_working(self):
        timeout = 3
        v = self._vfsd(timeout=timeout, cache_ttl=0)
        write_file(v.path("n3", "f"), b"x")
        write_file(v.path("n4", "f"), b"x")
        self.g.pause()
        self.addCleanup(self.g.resume)
        results = {}

        def nfs_op(prefix):
            t0 = time.monotonic()
            try:
                os.stat(v.path(prefix, "never-seen-%s" % prefix))
                results[prefix] = ("ok", time.monotonic() - t0)
            except OSError as e:
                results[prefix] = (e.errno, time.monotonic() - t0)

        threads = [threading.Thread(target=nfs_op, args=(p,)) for p in ("n3", "n4")]
        for t in threads:
            t.start()
        # meanwhile the local mount answers at once
        t0 = time.monotonic()
        for i in range(20):
            write_file(os.path.join(v.path("local"), "l%d" % i), b"local")
            self.assertEqual(read_file(os.path.join(v.path("local"), "l%d" % i)), b"local")
        self.assertLess(time.monotonic() - t0, 2)
        for t in threads:
            t.join(timeout * 4)
            self.assertFalse(t.is_alive(), "an NFS operation hangs past its timeout")
        for prefix in ("n3", "n4"):
            err, took = results[prefix]
            self.assertIn(err, (errno.ETIMEDOUT, errno.EIO), results)
            self.assertLess(took, timeout + 2, results)
        # while the server is known to be down, new operations fail fast
        # (the state vfsctl shows means what it means for sftp)
        for prefix in ("n3", "n4"):
            self.assertEqual(v.mount_info("/" + prefix)["state"], "down", prefix)
        t0 = time.monotonic()
        with self.assertRaises(OSError):
            os.stat(v.path("n3", "another-one"))
        self.assertLess(time.monotonic() - t0, 1.5)
        # and the mount comes back when the server does
        self.g.resume()
        harness.wait_for(lambda: os.path.exists(v.path("n3", "f")) and
                         os.path.exists(v.path("n4", "f")), 30, "the mount to come back")
        self.assertEqual(read_file(v.path("n4", "f")), b"x")
        for prefix in ("n3", "n4"):
            self.assertEqual(v.mount_info("/" + prefix)["state"], "connected", prefix)

    def test_cache_dropped_after_outage(self):
        """What the mount cached before the server went away is not served
        once it is back: the server may have changed meanwhile (as sftp).
        A listing cached for a long cache_ttl before an outage (the mount
        down) shows a file made on the server during it."""
        timeout = 3
        v = self._vfsd(timeout=timeout, cache_ttl=120)
        for prefix in ("n3", "n4"):
            os.mkdir(os.path.join(self.g.export, "d-" + prefix))
            write_file(os.path.join(self.g.export, "d-" + prefix, "old"), b"o")
            self.assertEqual(os.listdir(v.path(prefix, "d-" + prefix)), ["old"])
        self.g.pause()
        self.addCleanup(self.g.resume)
        for prefix in ("n3", "n4"):
            with self.assertRaises(OSError) as cm:
                os.stat(v.path(prefix, "unseen-during-outage"))
            self.assertIn(cm.exception.errno, (errno.ETIMEDOUT, errno.EIO))
            self.assertEqual(v.mount_info("/" + prefix)["state"], "down", prefix)
            # still within cache_ttl, and no call of ours changed it
            write_file(os.path.join(self.g.export, "d-" + prefix, "new"), b"n")
        self.g.resume()
        for prefix in ("n3", "n4"):
            def back():
                try:
                    os.stat(v.path(prefix, "unseen-after-%d" % time.monotonic_ns()))
                except OSError as e:
                    return e.errno == errno.ENOENT
                return False
            harness.wait_for(back, 30, "/%s to come back" % prefix)
            self.assertEqual(v.mount_info("/" + prefix)["state"], "connected", prefix)
            self.assertEqual(sorted(os.listdir(v.path(prefix, "d-" + prefix))),
                             ["new", "old"], prefix)


if __name__ == "__main__":
    harness.main()
