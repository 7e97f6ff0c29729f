# SPDX-License-Identifier: GPL-2.0-or-later
"""vfsctl, the control socket, /.vfsd, reload, fstab and install, against a
running daemon."""
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, tmpdir  # noqa: E402
from posix_suite import read_file, write_file  # noqa: E402

VFSCTL = harness.VFSCTL


def vfsctl(v, *args, check=True, json_out=False, user=None, leak_check=True):
    """leak_check=False: without LeakSanitizer's scan at vfsctl's exit
    (harness.env_without_leak_check)."""
    cmd = [VFSCTL, "-m", v.mnt] + (["--json"] if json_out else []) + list(args)
    if user:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       env=None if leak_check else harness.env_without_leak_check())
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr))
    return r


def jq(text, expr):
    """Parse with jq, as a script would."""
    r = subprocess.run(["jq", "-c", expr], input=text, capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout)


class Control(harness.TestCase):
    def setUp(self):
        self.back = tmpdir()
        self.cfgdir = tmpdir()
        self.cfg = os.path.join(self.cfgdir, "vfsd.conf")
        self.write_cfg({"/cfg": self.back})
        self.v = Vfsd(args=["-c", self.cfg, "--host-id", "hostA"]).start()
        self.addCleanup(self.v.stop)

    def write_cfg(self, mounts):
        # passthrough = no: these tests count and revoke the I/O the
        # daemon serves (passthrough I/O never reaches it: test_local.py)
        with open(self.cfg, "w") as f:
            for prefix, d in mounts.items():
                f.write("[mount %s]\nurl = file://%s\npassthrough = no\n\n" % (prefix, d))

    def test_status(self):
        r = vfsctl(self.v, "status")
        self.assertIn("vfsd 0.1.0", r.stdout)
        self.assertIn(self.v.mnt, r.stdout)
        self.assertIn("hostA", r.stdout)
        st = jq(vfsctl(self.v, "status", json_out=True).stdout, ".")
        self.assertEqual(st["mountpoint"], self.v.mnt)
        self.assertEqual(st["host_id"], "hostA")
        self.assertEqual(st["pid"], self.v.proc.pid)
        self.assertEqual(st["config"], self.cfg)
        self.assertGreaterEqual(st["uptime_seconds"], 0)

    def test_mounts_and_runtime_add_remove(self):
        mounts = jq(vfsctl(self.v, "mounts", json_out=True).stdout, "[.mounts[].prefix]")
        self.assertEqual(mounts, ["/cfg"])
        other = tmpdir()
        vfsctl(self.v, "mount", "add", "/new/deep", "file://" + other, "cache_ttl=0",
               "passthrough=no")
        # usable at once, including the virtual directory leading to it
        self.assertIn("new", os.listdir(self.v.mnt))
        write_file(self.v.path("new/deep/f"), b"runtime")
        self.assertEqual(read_file(os.path.join(other, "f")), b"runtime")
        m = jq(vfsctl(self.v, "mounts", json_out=True).stdout,
               '.mounts[] | select(.prefix == "/new/deep")')
        self.assertEqual((m["backend"], m["state"], m["origin"], m["readonly"]),
                         ("file", "connected", "vfsctl", False))
        # bad requests fail with a message and status 1
        r = vfsctl(self.v, "mount", "add", "/x", "gopher://h/p", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown URL scheme", r.stderr)
        r = vfsctl(self.v, "mount", "add", "/new/deep", "file://" + other, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already", r.stderr)
        r = vfsctl(self.v, "mount", "add", "/y", "file://" + other, "password=x",
                   check=False)
        self.assertEqual(r.returncode, 1)
        # remove: refused while a file is open, then forced
        fd = os.open(self.v.path("new/deep/f"), os.O_RDONLY)
        try:
            r = vfsctl(self.v, "mount", "remove", "/new/deep", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("open", r.stderr)
            self.assertEqual(os.pread(fd, 7, 0), b"runtime")
            vfsctl(self.v, "mount", "remove", "--force", "/new/deep")
            with self.assertRaises(OSError) as cm:
                os.pread(fd, 7, 0)
            self.assertEqual(cm.exception.errno, errno.EIO)
        finally:
            # close reports the revoked handle too
            with self.assertRaises(OSError) as cm:
                os.close(fd)
            self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertFalse(os.path.exists(self.v.path("new/deep/f")))
        self.assertNotIn("new", os.listdir(self.v.mnt))
        r = vfsctl(self.v, "mount", "remove", "/new/deep", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not mounted", r.stderr)

    def test_stats_counts_operations(self):
        def snap():
            return jq(vfsctl(self.v, "stats", "/cfg", json_out=True).stdout, ".mounts[0]")
        before = snap()
        fd = os.open(self.v.path("cfg/counted"), os.O_WRONLY | os.O_CREAT, 0o644)
        for _ in range(3):
            os.write(fd, b"x" * 1000)
        os.close(fd)
        with self.assertRaises(FileNotFoundError):
            os.stat(self.v.path("cfg/missing-for-stats"))
        after = snap()
        self.assertEqual(after["ops"]["create"] - before["ops"]["create"], 1)
        self.assertEqual(after["ops"]["write"] - before["ops"]["write"], 3)
        self.assertEqual(after["bytes_written"] - before["bytes_written"], 3000)
        self.assertGreaterEqual(after["errors"].get("ENOENT", 0) -
                                before["errors"].get("ENOENT", 0), 1)
        self.assertGreater(after["latency_us"]["p99"], 0)
        self.assertEqual(after["in_flight"], 0)
        # the same numbers as files, through the mount itself
        via_file = json.loads(read_file(self.v.path(".vfsd/stats.json")))["mounts"][0]
        self.assertEqual(via_file["ops"]["write"], after["ops"]["write"])
        self.assertEqual(via_file["bytes_written"], after["bytes_written"])
        text = read_file(self.v.path(".vfsd/stats")).decode()
        self.assertIn("/cfg (file, connected)", text)
        self.assertIn("write=%d" % after["ops"]["write"], text)
        # hidden from the root's listing unless configured
        self.assertNotIn(".vfsd", os.listdir(self.v.mnt))
        self.assertIn("mounts.json", os.listdir(self.v.path(".vfsd")))
        with self.assertRaises(OSError) as cm:
            write_file(self.v.path(".vfsd/stats"), b"x")
        self.assertIn(cm.exception.errno, (errno.EROFS, errno.EACCES))
        # vfsd's own files keep no locks: fcntl(2)'s "no locks available"
        # (the contract's answer for a missing getlk/setlk), never ENOSYS,
        # which the kernel would remember for every mount at once
        with open(self.v.path(".vfsd/stats"), "rb") as f:
            for op in (fcntl.LOCK_SH | fcntl.LOCK_NB, fcntl.LOCK_SH):
                with self.assertRaises(OSError) as cm:
                    fcntl.lockf(f, op)
                self.assertEqual(cm.exception.errno, errno.ENOLCK)
            with self.assertRaises(OSError) as cm:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            self.assertEqual(cm.exception.errno, errno.ENOLCK)
        # and the mounts beside them still lock
        with open(self.v.path("cfg/lockable"), "wb") as f:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = vfsctl(self.v, "stats", "/nope", check=False)
        self.assertEqual(r.returncode, 1)

    def test_stats_count_zero_copy_bytes(self):
        """Reads and writes of a local mount's files, which the kernel
        splices between /dev/fuse and the backing file, count the bytes
        that moved, as reads and writes through vfsd's buffers do
        (regression: a read counted the kernel's request, a whole page or
        more, at the end of the file)."""
        def snap():
            return jq(vfsctl(self.v, "stats", "/cfg", json_out=True).stdout, ".mounts[0]")
        write_file(os.path.join(self.back, "tail"), b"t" * 1000)
        write_file(os.path.join(self.back, "big"), b"b" * 300000)
        before = snap()
        self.assertEqual(read_file(self.v.path("cfg/tail")), b"t" * 1000)
        self.assertEqual(len(read_file(self.v.path("cfg/big"))), 300000)
        fd = os.open(self.v.path("cfg/tail"), os.O_WRONLY)
        try:
            self.assertEqual(os.pwrite(fd, b"w" * 500, 700), 500)
        finally:
            os.close(fd)
        after = snap()
        self.assertGreaterEqual(after["ops"]["read"] - before["ops"]["read"], 2)
        self.assertEqual(after["bytes_read"] - before["bytes_read"], 301000)
        self.assertEqual(after["ops"]["write"] - before["ops"]["write"], 1)
        self.assertEqual(after["bytes_written"] - before["bytes_written"], 500)
        self.assertEqual(read_file(os.path.join(self.back, "tail")),
                         b"t" * 700 + b"w" * 500)
        self.assertEqual(after["in_flight"], 0)

    def test_force_removed_mount_fails_reads_and_writes(self):
        """After vfsctl mount remove --force, reads and writes of a local
        mount's open file (which take the zero-copy path) fail with EIO,
        as on every other mount."""
        other = tmpdir()
        write_file(os.path.join(other, "f"), b"0123456789")
        vfsctl(self.v, "mount", "add", "/gone", "file://" + other, "cache_ttl=0",
               "passthrough=no")
        fd = os.open(self.v.path("gone/f"), os.O_RDWR)
        try:
            self.assertEqual(os.pwrite(fd, b"ab", 0), 2)
            vfsctl(self.v, "mount", "remove", "--force", "/gone")
            with self.assertRaises(OSError) as cm:
                os.pwrite(fd, b"cd", 2)
            self.assertEqual(cm.exception.errno, errno.EIO)
            # pages of the file the kernel cached are no longer asked for
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            with self.assertRaises(OSError) as cm:
                os.pread(fd, 4, 0)
            self.assertEqual(cm.exception.errno, errno.EIO)
        finally:
            with self.assertRaises(OSError):
                os.close(fd)
        # nothing reached the backing file after the removal
        self.assertEqual(read_file(os.path.join(other, "f")), b"ab23456789")

    def test_reload(self):
        extra = tmpdir()
        write_file(os.path.join(extra, "e"), b"E")
        self.write_cfg({"/cfg": self.back, "/extra": extra})
        r = vfsctl(self.v, "reload")
        self.assertIn("added /extra", r.stdout)
        self.assertEqual(read_file(self.v.path("extra/e")), b"E")
        # SIGHUP does the same: drop /cfg
        self.write_cfg({"/extra": extra})
        self.v.proc.send_signal(signal.SIGHUP)
        harness.wait_for(lambda: not os.path.exists(self.v.path("cfg")), 10,
                         "/cfg to go away after SIGHUP")
        # the reload logs its summary after the unmount is done
        harness.wait_for(lambda: "removed /cfg" in self.v.log(), 10,
                         "the reload to log 'removed /cfg'")
        # a broken file changes nothing and says why
        with open(self.cfg, "w") as f:
            f.write("[mount /z]\nurl = file:///nonexistent\nbogus = 1\n")
        r = vfsctl(self.v, "reload", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("vfsd.conf:3", r.stderr)
        self.assertTrue(os.path.exists(self.v.path("extra/e")))

    def test_mount_add_bad_prefixes(self):
        """Prefixes that would break the mount table, the log, the root
        listing or /.vfsd are refused, with the rules of the config file
        (regression: all of these were mounted)."""
        other = tmpdir()
        before = jq(vfsctl(self.v, "mounts", json_out=True).stdout, "[.mounts[].prefix]")
        comp = "/" + "c" * 5000
        long_prefix = "".join("/" + "d" * 99 for _ in range(11))  # 1100 bytes
        cases = [
            ("/a\nb", "contains a control character"),
            ("/a\x1b[31mb", "contains a control character"),
            (comp, "has a component longer than 255 bytes"),
            (long_prefix, "is longer than 1024 bytes"),
            ("/.vfsd/x", "lies in /.vfsd, vfsd's own directory"),
            ("//.vfsd/./y/", "lies in /.vfsd"),
            ("/.vfsd", "lies in /.vfsd"),
            ("rel", "must be an absolute path"),
        ]
        for prefix, want in cases:
            r = vfsctl(self.v, "mount", "add", prefix, "file://" + other, check=False)
            self.assertEqual(r.returncode, 1, (prefix[:40], r.stdout))
            self.assertIn(want, r.stderr, prefix[:40])
            # one line, the prefix quoted and cut
            self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
            self.assertLess(len(r.stderr), 600)
        after = jq(vfsctl(self.v, "mounts", json_out=True).stdout, "[.mounts[].prefix]")
        self.assertEqual(after, before)
        # the root still lists, /.vfsd is still vfsd's
        self.assertEqual(sorted(os.listdir(self.v.mnt)), ["cfg"])
        self.assertIn("mounts.json", os.listdir(self.v.path(".vfsd")))
        # the longest component and prefix allowed still work
        ok = "/" + "e" * 255
        vfsctl(self.v, "mount", "add", ok, "file://" + other)
        self.assertIn("e" * 255, os.listdir(self.v.mnt))
        vfsctl(self.v, "mount", "remove", ok)
        self.assertNotIn("\x1b", self.v.log())

    def test_xattr_calls_after_removal_are_not_erofs(self):
        """setxattr and removexattr say what went wrong: on a file whose
        mount is gone, ESTALE as every other call on a node of a removed
        mount (test_nodes_of_a_removed_mount_stay_dead), not EROFS
        (regression: both answered EROFS for any failure to route)."""
        other = tmpdir()
        write_file(os.path.join(other, "f"), b"x")
        vfsctl(self.v, "mount", "add", "/gone", "file://" + other, "passthrough=no")
        fd = os.open(self.v.path("gone/f"), os.O_RDONLY)
        try:
            vfsctl(self.v, "mount", "remove", "--force", "/gone")
            for call in (lambda: os.setxattr(fd, "user.k", b"v"),
                         lambda: os.removexattr(fd, "user.k")):
                with self.assertRaises(OSError) as cm:
                    call()
                self.assertEqual(cm.exception.errno, errno.ESTALE)
        finally:
            with self.assertRaises(OSError):
                os.close(fd)
        # where nothing may change (the virtual root) it is still EROFS
        with self.assertRaises(OSError) as cm:
            os.setxattr(self.v.mnt, "user.k", b"v")
        self.assertEqual(cm.exception.errno, errno.EROFS)

    def test_mounts_show_capabilities(self):
        """vfsctl mounts lists what each mount can do, in text (last
        column) and JSON (regression: capability bits were set by every
        backend and shown nowhere)."""
        want = ["symlink", "hardlink", "special_files", "rename_exchange", "xattr",
                "fallocate", "punch_hole", "seek_data", "copy_range", "stable_fsync",
                "stable_ino", "acl_umask"]
        m = jq(vfsctl(self.v, "mounts", json_out=True).stdout,
               '.mounts[] | select(.prefix == "/cfg")')
        self.assertEqual(m["caps"], want)
        lines = vfsctl(self.v, "mounts").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["PREFIX", "BACKEND", "STATE", "RO", "ORIGIN",
                                            "URL", "CAPS"])
        row = [line.split() for line in lines[1:] if line.split()[0] == "/cfg"][0]
        self.assertEqual(row[-1], ",".join(want))
        # the same in /.vfsd/mounts.json
        via_file = json.loads(read_file(self.v.path(".vfsd/mounts.json")))["mounts"][0]
        self.assertEqual(via_file["caps"], want)

    def test_mount_ids_never_collide(self):
        """A mount's id goes into its inode numbers: after more than 256
        mounts added and removed, a new mount of the same directory still
        gets inode numbers of its own, never those of a live mount
        (regression: ids wrapped at 256, and mount 257 reported the inode
        numbers of mount 1 for the same file)."""
        write_file(os.path.join(self.back, "f"), b"x")
        keep = os.stat(self.v.path("cfg/f")).st_ino
        # /cfg has id 1 and /.vfsd 2, so /t0 has 3: the old counter gave
        # /t254 (mount 257) the id of /cfg, and ids are handed out again
        # from /t252 on (252 free ones); 270 goes past both with a margin
        # (tests/test_router.c adds and removes 600)
        for i in range(270):
            prefix = "/t%d" % i
            # 540 vfsctl runs for the daemon's ids: under the sanitizers
            # without LeakSanitizer's scan at each exit (50 ms of a run's
            # 70; vfsctl's own leaks are checked by every other call)
            vfsctl(self.v, "mount", "add", prefix, "file://" + self.back,
                   leak_check=False)
            ino = os.stat(self.v.path(prefix, "f")).st_ino
            self.assertNotEqual(ino, keep, "mount %d has the inode numbers of /cfg" % i)
            vfsctl(self.v, "mount", "remove", prefix, leak_check=False)
        self.assertEqual(os.stat(self.v.path("cfg/f")).st_ino, keep)

    def test_nodes_of_a_removed_mount_stay_dead(self):
        """What the kernel still holds of a removed mount (a directory
        open, a cwd) never reaches the files of a mount added later at the
        same prefix: the node table keys nodes by name, and their names
        led on to whatever was mounted there next (or, with a mount id
        reused, to the new mount's files with the old inode numbers)."""
        old, new = tmpdir(), tmpdir()
        for d, data in ((old, b"old"), (new, b"new")):
            os.mkdir(os.path.join(d, "sub"))
            write_file(os.path.join(d, "sub", "f"), data)
        vfsctl(self.v, "mount", "add", "/m", "file://" + old, "cache_ttl=0",
               "passthrough=no")
        fd = os.open(self.v.path("m", "sub"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            f = os.open("f", os.O_RDONLY, dir_fd=fd)
            self.assertEqual(os.read(f, 10), b"old")
            os.close(f)
            vfsctl(self.v, "mount", "remove", "--force", "/m")
            vfsctl(self.v, "mount", "add", "/m", "file://" + new, "cache_ttl=0",
                   "passthrough=no")
            for name in ("f", "g"):
                with self.assertRaises(OSError) as cm:
                    f = os.open(name, os.O_RDONLY, dir_fd=fd)
                    os.close(f)
                self.assertIn(cm.exception.errno, (errno.ESTALE, errno.ENOENT, errno.EIO),
                              name)
            with self.assertRaises(OSError):
                os.stat("f", dir_fd=fd)
        finally:
            os.close(fd)
        # the new mount by its path
        self.assertEqual(read_file(self.v.path("m", "sub", "f")), b"new")
        self.assertFalse(os.path.exists(os.path.join(new, "sub", "g")))

    def test_nested_mount_survives_removal_of_outer(self):
        """Removing a mount leaves a mount nested beneath it alone: what
        the kernel holds of the inner mount (an open directory, a cwd)
        still reaches the inner mount's files, also once the prefix is
        looked up again (a virtual directory now, another object than the
        removed mount's root), while what it holds of the removed mount,
        its root included, is dead."""
        outer, inner = tmpdir(), tmpdir()
        os.mkdir(os.path.join(outer, "own"))
        os.mkdir(os.path.join(inner, "sub"))
        write_file(os.path.join(inner, "sub", "f"), b"inner")
        vfsctl(self.v, "mount", "add", "/o", "file://" + outer, "cache_ttl=0",
               "passthrough=no")
        vfsctl(self.v, "mount", "add", "/o/in", "file://" + inner, "cache_ttl=0",
               "passthrough=no")
        fd = os.open(self.v.path("o", "in", "sub"), os.O_RDONLY | os.O_DIRECTORY)
        own = os.open(self.v.path("o", "own"), os.O_RDONLY | os.O_DIRECTORY)
        root = os.open(self.v.path("o"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            vfsctl(self.v, "mount", "remove", "/o")
            for _ in range(2):
                f = os.open("f", os.O_RDONLY, dir_fd=fd)
                try:
                    self.assertEqual(os.read(f, 10), b"inner")
                finally:
                    os.close(f)
                # the prefix by its path: the virtual directory
                self.assertEqual(read_file(self.v.path("o", "in", "sub", "f")),
                                 b"inner")
                self.assertEqual(os.listdir(self.v.path("o")), ["in"])
            for d in (own, root):
                with self.assertRaises(OSError) as cm:
                    os.stat(".", dir_fd=d)
                self.assertEqual(cm.exception.errno, errno.ESTALE)
        finally:
            os.close(fd)
            os.close(own)
            os.close(root)

    def test_nodes_of_a_removed_root_mount_stay_dead(self):
        """As test_nodes_of_a_removed_mount_stay_dead, for a mount at the
        root prefix "/", whose node (the root) has no name to lose."""
        old, new = tmpdir(), tmpdir()
        for d, data in ((old, b"old"), (new, b"new")):
            os.mkdir(os.path.join(d, "sub"))
            write_file(os.path.join(d, "sub", "f"), data)
        vfsctl(self.v, "mount", "add", "/", "file://" + old, "cache_ttl=0",
               "passthrough=no")
        fd = os.open(self.v.path("sub"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            vfsctl(self.v, "mount", "remove", "--force", "/")
            vfsctl(self.v, "mount", "add", "/", "file://" + new, "cache_ttl=0",
                   "passthrough=no")
            with self.assertRaises(OSError) as cm:
                f = os.open("f", os.O_RDONLY, dir_fd=fd)
                os.close(f)
            self.assertEqual(cm.exception.errno, errno.ESTALE)
        finally:
            os.close(fd)
        self.assertEqual(read_file(self.v.path("sub", "f")), b"new")
        # vfsd's own mount beneath the root prefix lives on
        self.assertTrue(os.path.isdir(self.v.path(".vfsd")))
        vfsctl(self.v, "mount", "remove", "/")

    def test_mount_add_hides_password(self):
        """A malformed URL with a password is refused without showing it,
        to the client and in the log."""
        for url in ("sftp://127.0.0.1/x?password=hunter2&bad",
                    "sftp://u:hunter2@127.0.0.1:99999/x",
                    "file://?password=hunter2"):
            r = vfsctl(self.v, "mount", "add", "/pw", url, check=False)
            self.assertEqual(r.returncode, 1, url)
            self.assertNotIn("hunter2", r.stderr)
            self.assertIn("***", r.stderr)
        self.assertNotIn("hunter2", self.v.log())

    def test_reload_hides_password(self):
        """Reload errors go to the client and (SIGHUP) to the log: a
        password in a malformed URL shows in neither (regression)."""
        with open(self.cfg, "w") as f:
            f.write("[mount /cfg]\nurl = file://%s\npassthrough = no\n\n"
                    "[mount /s]\nurl = sftp://127.0.0.1/x?password=hunter2&bad\n"
                    % self.back)
        r = vfsctl(self.v, "reload", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("password=***&bad", r.stderr)
        self.assertNotIn("hunter2", r.stderr)
        self.v.proc.send_signal(signal.SIGHUP)
        harness.wait_for(lambda: "reload (SIGHUP)" in self.v.log(), 10,
                         "the reload to log its error")
        self.assertIn("password=***&bad", self.v.log())
        self.assertNotIn("hunter2", self.v.log())

    def test_slow_clients_do_not_lock_out_vfsctl(self):
        """Clients that send their request a byte at a time hold no command
        slot and are cut off CTL_IO_TIMEOUT (10 s) after they connected,
        however often they send; vfsctl keeps answering at once
        (regression: 33 such clients locked vfsctl out, for as long as they
        kept sending)."""
        import socket
        import threading
        sock = jq(vfsctl(self.v, "status", json_out=True).stdout, ".control")
        nslow = 70  # more than the 64 places for requests still arriving
        slow, opened = [], []
        closed = [None] * nslow
        replies = [b""] * nslow
        for i in range(nslow):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(sock)
            slow.append(c)
            opened.append(time.monotonic())
            try:
                c.send(b"V")
            except OSError:
                closed[i] = 0
        answers = []
        stop = threading.Event()

        def ask():
            while not stop.is_set():
                t0 = time.monotonic()
                r = vfsctl(self.v, "status", check=False)
                answers.append((time.monotonic() - t0, r.returncode, r.stderr))
                stop.wait(0.5)
        asker = threading.Thread(target=ask)
        asker.start()
        try:
            deadline = time.monotonic() + 14
            while time.monotonic() < deadline and None in closed:
                for i, c in enumerate(slow):
                    if closed[i] is not None:
                        continue
                    c.setblocking(False)
                    try:
                        data = c.recv(4096)
                    except BlockingIOError:
                        data = None
                    except OSError:
                        data = b""
                    if data is not None:
                        replies[i] += data
                        closed[i] = time.monotonic() - opened[i]
                        continue
                    # one byte a second, never the newline
                    try:
                        c.send(b"x")
                    except OSError:
                        # vfsd answered and closed between the recv above
                        # and this send: the answer waits to be read
                        try:
                            replies[i] += c.recv(4096)
                        except OSError:
                            pass
                        closed[i] = time.monotonic() - opened[i]
                time.sleep(1)
        finally:
            stop.set()
            asker.join()
            for c in slow:
                c.close()
        self.assertGreaterEqual(len(answers), 10)
        for took, rc, err in answers:
            self.assertEqual(rc, 0, err)
            self.assertLess(took, 3, "vfsctl status took %.1f s" % took)
        # every slow client was cut off, within the time allowed in all
        self.assertNotIn(None, closed, "slow clients still connected after 14 s")
        self.assertLess(max(closed), 12.5)
        for r in replies:
            self.assertTrue(r.startswith(b"ERR ETIMEDOUT "), r)
        # the oldest made room for newer ones (the 6 beyond 64, then one
        # for each vfsctl while all places were taken); the others had
        # their 10 s
        self.assertGreaterEqual(sum(1 for t in closed if t > 9), 64 - len(answers))

    def test_access_control(self):
        sock = jq(vfsctl(self.v, "status", json_out=True).stdout, ".control")
        self.assertEqual(os.stat(sock).st_mode & 0o777, 0o600)
        # the file mode keeps others out...
        r = vfsctl(self.v, "status", check=False, user=65534)
        self.assertEqual(r.returncode, 2)
        self.assertIn("Permission denied", r.stderr)
        # ...and so do the daemon's own checks when the mode is opened up
        os.chmod(sock, 0o666)
        os.chmod(os.path.dirname(sock), 0o755)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            VFSCTL, "-s", sock, "status"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("permission denied", r.stderr)

    def test_no_daemon(self):
        r = subprocess.run([VFSCTL, "-s", os.path.join(tmpdir(), "none.sock"), "status"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no vfsd listening", r.stderr)
        r = subprocess.run([VFSCTL, "-m", self.v.mnt, "frobnicate"], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown command", r.stderr)


class RuntimeSftp(harness.TestCase):
    def test_mount_add_sftp_and_use_at_once(self):
        from sshd import Sshd
        sshd = Sshd().start()
        self.addCleanup(sshd.stop)
        remote = tmpdir()
        env = dict(os.environ, HOME=sshd.dir)
        env.pop("SSH_AUTH_SOCK", None)
        v = Vfsd([("/l", "file://" + tmpdir())], env=env).start()
        self.addCleanup(v.stop)
        vfsctl(v, "mount", "add", "/ssh", sshd.url(remote), "connections=2")
        write_file(v.path("ssh/hello"), b"over ssh")
        self.assertEqual(read_file(os.path.join(remote, "hello")), b"over ssh")
        m = jq(vfsctl(v, "mounts", json_out=True).stdout,
               '.mounts[] | select(.prefix == "/ssh")')
        self.assertEqual((m["backend"], m["state"]), ("sftp", "connected"))
        # what it can do: symlinks, hard links (hardlink@openssh.com), no
        # xattrs, no special files, server-side copies (copy-data) and
        # clones, data on stable storage (fsync@openssh.com)
        self.assertEqual(m["caps"], ["symlink", "hardlink", "copy_range", "clone",
                                     "stable_fsync", "shared"])
        # the URL shown has no secrets, and a secret option is refused
        r = vfsctl(v, "mount", "add", "/ssh2", sshd.url(remote), "password=hunter2",
                   check=False)
        self.assertEqual(r.returncode, 1)
        self.assertNotIn("hunter2", r.stderr)
        self.assertNotIn("hunter2", v.log())


class ControlDirVisible(harness.TestCase):
    def test_show_control_dir(self):
        d = tmpdir()
        cfg = "[vfsd]\nshow_control_dir = yes\n[mount /a]\nurl = %s\n" % d
        with Vfsd(config_text=cfg) as v:
            self.assertEqual(sorted(os.listdir(v.mnt)), [".vfsd", "a"])
            self.assertIn("/a ", read_file(v.path(".vfsd/mounts")).decode())


class SystemIntegration(harness.TestCase):
    def test_mount_t_fuse_vfsd(self):
        """fstab's way: mount -t fuse.vfsd CONFIG MOUNTPOINT."""
        d, mnt = tmpdir(), tmpdir()
        cfg = os.path.join(tmpdir(), "fstab.conf")
        with open(cfg, "w") as f:
            f.write("[mount /f]\nurl = file://%s\n" % d)
        # mount(8) hands helpers a standard PATH, where an installed vfsd
        # is found for "-t fuse.vfsd"; a build tree's binary is named with
        # mount.fuse3's "PROGRAM#SOURCE" form, the same code path
        r = subprocess.run(["mount", "-t", "fuse", "-o",
                            "allow_other,default_permissions",
                            "%s#%s" % (harness.VFSD, cfg), mnt],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            write_file(os.path.join(mnt, "f", "x"), b"fstab")
            self.assertEqual(read_file(os.path.join(d, "x")), b"fstab")
        finally:
            subprocess.run(["umount", mnt], check=True)

    def test_meson_install(self):
        build = os.path.dirname(os.path.dirname(harness.VFSD))
        dest = tmpdir()
        r = subprocess.run(["meson", "install", "-C", build, "--destdir", dest,
                            "--no-rebuild", "--quiet"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        found = {os.path.relpath(os.path.join(dp, f), dest)
                 for dp, _, fs in os.walk(dest) for f in fs}
        names = {os.path.basename(f) for f in found}
        for want in ("vfsd", "vfsctl", "vfsd.8", "vfsctl.8", "vfsd.conf.5",
                     "vfsd@.service", "vfsd.conf.example"):
            self.assertIn(want, names)
        unit = [f for f in found if f.endswith("vfsd@.service")][0]
        with open(os.path.join(dest, unit)) as f:
            text = f.read()
        self.assertIn("vfsd -f -c /etc/vfsd/%i.conf", text)
        self.assertIn("kill -HUP", text)
        man = [f for f in found if f.endswith("vfsctl.8")][0]
        r = subprocess.run(["man", "-l", os.path.join(dest, man)], capture_output=True,
                           text=True, env=dict(os.environ, MANWIDTH="80"))
        self.assertIn("mount remove", r.stdout)

    def test_daemon_logs_to_syslog_not_terminal(self):
        d, mnt = tmpdir(), tmpdir()
        r = harness.run_vfsd(["-m", "/l=" + d, mnt])
        try:
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "")
        finally:
            subprocess.run(["fusermount3", "-u", mnt])
        time.sleep(0.1)


if __name__ == "__main__":
    harness.main()
