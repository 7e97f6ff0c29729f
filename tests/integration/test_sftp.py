# SPDX-License-Identifier: GPL-2.0-or-later
"""SFTP backend (issue 3), through the real FUSE mount, against an OpenSSH
server on 127.0.0.1 started for the test (see sshd.py).

vfsd never sees the invoking user's ~/.ssh or ssh-agent: HOME points into
the test's temporary directory and SSH_AUTH_SOCK is removed, and the
identity and known_hosts files come from URL parameters.
"""
import errno
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, tmpdir  # noqa: E402
from posix_suite import ALL_CAPS, PosixSuite, check_locked_writes_through, read_file, write_file  # noqa: E402
from sshd import Sshd  # noqa: E402

# What SFTP v3 + the OpenSSH extensions libssh2 1.10 can send allow;
# every other case of the suite asserts the documented errno.
SFTP_CAPS = frozenset({"symlink", "chown", "chmod", "rename_noreplace",
                       "o_direct", "locks"})
assert SFTP_CAPS <= ALL_CAPS


def have_sshd():
    return shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")


def vfsd_env(home):
    env = dict(os.environ, HOME=home)
    env.pop("SSH_AUTH_SOCK", None)
    return env


def start_failure(test, url, needles):
    """vfsd must refuse to start for url, with each needle in its message."""
    mnt = tmpdir()
    r = harness.run_vfsd(["-f", "-m", "/s=" + url, mnt],
                         env=vfsd_env(tmpdir()))
    test.assertNotEqual(r.returncode, 0, r.stderr)
    for needle in needles:
        test.assertIn(needle, r.stderr)
    test.assertFalse(harness.is_mounted(mnt))
    return r.stderr


def timed(fn, *args):
    """(seconds, result or OSError) of fn(*args)."""
    t0 = time.monotonic()
    try:
        res = fn(*args)
    except OSError as e:
        res = e
    return time.monotonic() - t0, res


@unittest.skipUnless(have_sshd(), "needs OpenSSH's sshd (package openssh-server)")
class SftpPosix(PosixSuite, harness.TestCase):
    """The shared operation suite on an sftp:// mount."""
    CAPS = SFTP_CAPS

    @classmethod
    def setUpClass(cls):
        cls.sshd = Sshd().start()
        cls.remote = tmpdir("vfsd-remote-")
        # the kernel checks modes (default_permissions): let others in
        os.chmod(cls.remote, 0o755)
        cls.vfsd = Vfsd([("/ssh", cls.sshd.url(cls.remote))],
                        args=["-o", "allow_other,default_permissions"],
                        env=vfsd_env(cls.sshd.dir)).start()

    @classmethod
    def tearDownClass(cls):
        cls.vfsd.stop()
        cls.sshd.stop()

    def setUp(self):
        self.base = self.vfsd.path("ssh")
        super().setUp()

    def test_data_lands_on_server(self):
        data = os.urandom(300000)
        write_file(self.p("f"), data)
        rel = os.path.relpath(self.p("f"), self.base)
        self.assertEqual(read_file(os.path.join(self.remote, rel)), data)
        # a change made on the server is seen at the next open
        # (close-to-open), even within the cache ttl
        write_file(os.path.join(self.remote, rel), b"changed on the server")
        self.assertEqual(read_file(self.p("f")), b"changed on the server")

    def test_libssh2_uses_the_bulk_cipher(self):
        """libssh2 encrypts with sftp_ctr.c's AES-128-CTR (its keystream
        made in bulk), which the daemon hands it through OpenSSL's symbol."""
        write_file(self.p("f"), b"x" * 100000)
        self.assertIn("keystream made in bulk serves libssh2", self.vfsd.log())

    def test_rename_replace_keeps_nothing_behind(self):
        write_file(self.p("a"), b"new")
        write_file(self.p("b"), b"old")
        os.rename(self.p("a"), self.p("b"))
        self.assertEqual(sorted(os.listdir(self.d)), ["b"])
        rel = os.path.relpath(self.d, self.base)
        self.assertEqual(sorted(os.listdir(os.path.join(self.remote, rel))), ["b"])
        os.mkdir(self.p("d1"))
        os.mkdir(self.p("d2"))
        os.rename(self.p("d1"), self.p("d2"))  # onto an empty directory
        self.assertEqual(sorted(os.listdir(self.d)), ["b", "d2"])
        self.assertTrue(os.path.isdir(self.p("d2")))
        self.assertErrno(errno.EISDIR, os.rename, self.p("b"), self.p("d2"))
        self.assertErrno(errno.ENOTDIR, os.rename, self.p("d2"), self.p("b"))
        self.assertEqual(read_file(self.p("b")), b"new")

    def test_mode_of_new_files_not_masked_by_server(self):
        old = os.umask(0)
        try:
            fd = os.open(self.p("f"), os.O_WRONLY | os.O_CREAT, 0o666)
            os.close(fd)
            os.mkdir(self.p("d"), 0o777)
        finally:
            os.umask(old)
        self.assertEqual(os.stat(self.p("f")).st_mode & 0o777, 0o666)
        self.assertEqual(os.stat(self.p("d")).st_mode & 0o777, 0o777)

    def test_names_longer_than_namemax(self):
        """statvfs says 255: a 256-byte name (ASCII or multibyte UTF-8)
        fails with ENAMETOOLONG in every call that takes one, as on the
        local and NFS mounts, not with the EBADMSG of the server's reply
        (issue 13); a 255-byte name works."""
        ok = "y" * 255
        write_file(self.p(ok), b"x")
        self.assertEqual(read_file(self.p(ok)), b"x")
        self.assertLessEqual(os.statvfs(self.d).f_namemax, 255)
        write_file(self.p("src"), b"s")
        for long in ("y" * 256, "\u00e9" * 128):
            self.assertEqual(len(long.encode()), 256)
            p = self.p(long)
            self.assertErrno(errno.ENAMETOOLONG, os.stat, p)
            self.assertErrno(errno.ENAMETOOLONG, os.open, p, os.O_CREAT | os.O_WRONLY, 0o644)
            self.assertErrno(errno.ENAMETOOLONG, os.mkdir, p)
            self.assertErrno(errno.ENAMETOOLONG, os.symlink, "t", p)
            self.assertErrno(errno.ENAMETOOLONG, os.rename, self.p("src"), p)
            self.assertErrno(errno.ENAMETOOLONG, os.unlink, p)
        self.assertEqual(sorted(os.listdir(self.d)), sorted([ok, "src"]))

    def test_symlink_on_symlink_attrs_refused(self):
        os.symlink("nowhere", self.p("l"))
        # SETSTAT would follow the link: refused rather than done wrong
        with self.assertRaises(OSError) as cm:
            os.utime(self.p("l"), (1, 1), follow_symlinks=False)
        self.assertIn(cm.exception.errno, (errno.EOPNOTSUPP, errno.ENOTSUP))

    def test_ls_l_uses_listing_attributes(self):
        for i in range(50):
            write_file(self.p("f%02d" % i), b"x" * i)
        out = subprocess.run(["ls", "-ln", self.d], capture_output=True, text=True,
                             check=True).stdout.splitlines()
        self.assertEqual(len(out), 51)  # "total" + 50
        self.assertIn(" 49 ", [ln for ln in out if ln.endswith("f49")][0])

    def test_locked_file_writes_through(self):
        """Under a cross-host lock no write waits in the write-behind
        queue: each is on the server when write(2) returns."""
        name = "locked-%d" % time.monotonic_ns()
        check_locked_writes_through(self, self.vfsd.path("ssh", name),
                                    os.path.join(self.remote, name))

    def test_append_pieces_in_order(self):
        """O_APPEND data lands in the order written (the server appends at
        its own end of file, so appends never go out on several
        sessions at once)."""
        path = self.p("log")
        write_file(path, b"head\n")
        pieces = [bytes([65 + i]) * (1 << 20) for i in range(8)]
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            for piece in pieces:
                os.write(fd, piece)
        finally:
            os.close(fd)
        self.assertEqual(read_file(path), b"head\n" + b"".join(pieces))

    def test_renamed_open_file_keeps_its_data(self):
        """A file renamed through the mount while open, its old name
        taken by a new file: later writes through the open descriptor go
        to the renamed file, never to the newcomer."""
        fd = os.open(self.p("a"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"1" * (1 << 20))
            os.rename(self.p("a"), self.p("b"))
            write_file(self.p("a"), b"newcomer")
            for i in range(1, 6):
                os.pwrite(fd, bytes([48 + i]) * (1 << 20), i << 20)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.assertEqual(read_file(self.p("a")), b"newcomer")
        want = b"1" * (1 << 20) + b"".join(bytes([48 + i]) * (1 << 20)
                                           for i in range(1, 6))
        self.assertEqual(read_file(self.p("b")), want)

    def test_names_changed_by_another_host(self):
        """Names are kept longer than attributes (vfsd resolves by path on
        every request), yet another host's unlink, rename and create show
        within cache_ttl (1 s here)."""
        tag = "other-%d" % time.monotonic_ns()
        mine, theirs = self.vfsd.path("ssh", tag), os.path.join(self.remote, tag)
        write_file(theirs, b"x")
        self.assertEqual(os.stat(mine).st_size, 1)
        os.rename(theirs, theirs + "-moved")
        harness.wait_for(lambda: not os.path.exists(mine), 3, "the rename to show")
        self.assertEqual(read_file(mine + "-moved"), b"x")
        os.unlink(theirs + "-moved")
        harness.wait_for(lambda: not os.path.exists(mine + "-moved"), 3,
                         "the unlink to show")
        self.assertFalse(os.path.exists(mine + "-new"))
        write_file(theirs + "-new", b"new")
        harness.wait_for(lambda: os.path.exists(mine + "-new"), 3, "the create to show")
        self.assertEqual(read_file(mine + "-new"), b"new")


@unittest.skipUnless(have_sshd(), "needs OpenSSH's sshd (package openssh-server)")
class SftpConnect(harness.TestCase):
    """Mount-time checks: host keys, authentication, options, errors."""

    def setUp(self):
        self.sshd = Sshd().start()
        self.addCleanup(self.sshd.stop)
        self.remote = tmpdir("vfsd-remote-")

    def test_unknown_host_key_refused(self):
        empty = os.path.join(self.sshd.dir, "empty_known_hosts")
        open(empty, "w").close()
        msg = start_failure(self, self.sshd.url(self.remote, known_hosts=empty),
                            ["[127.0.0.1]:%d" % self.sshd.port,
                             self.sshd.fingerprint(), "hostkey=accept-new"])
        self.assertNotIn("authentication", msg)
        self.assertEqual(os.path.getsize(empty), 0)

    def test_changed_host_key_refused(self):
        old = self.sshd.fingerprint()
        self.sshd.new_host_key()
        new = self.sshd.fingerprint()
        self.assertNotEqual(old, new)
        for policy in ("strict", "accept-new"):
            start_failure(self, self.sshd.url(self.remote, hostkey=policy),
                          ["HOST KEY CHANGED", "[127.0.0.1]:%d" % self.sshd.port, new])
        # known_hosts is left alone
        with open(self.sshd.known_hosts) as f:
            self.assertEqual(f.read().count("127.0.0.1"), 1)
        # nothing reached authentication
        self.assertNotIn("Accepted publickey", self.sshd.log())

    def test_accept_new_adds_key(self):
        kh = os.path.join(self.sshd.dir, "new", "known_hosts")  # dir missing too
        url = self.sshd.url(self.remote, known_hosts=kh, hostkey="accept-new")
        with Vfsd([("/s", url)], env=vfsd_env(self.sshd.dir)) as v:
            write_file(v.path("s/f"), b"ok")
            self.assertIn(self.sshd.fingerprint(), v.log())
        with open(kh) as f:
            self.assertEqual(f.read(), self.sshd.host_key_line())
        # now known: strict accepts it
        with Vfsd([("/s", self.sshd.url(self.remote, known_hosts=kh))],
                  env=vfsd_env(self.sshd.dir)) as v:
            self.assertEqual(read_file(v.path("s/f")), b"ok")

    def test_wrong_user_key_refused(self):
        other = os.path.join(self.sshd.dir, "other_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other],
                       check=True)
        start_failure(self, self.sshd.url(self.remote, identity=other),
                      ["authentication failed for %s@127.0.0.1" % self.sshd.user,
                       other, "key refused"])
        start_failure(self, self.sshd.url(self.remote, identity="/nonexistent/key"),
                      ["authentication failed", "/nonexistent/key"])

    def test_agent_then_default_identity(self):
        # ssh-agent first: no identity option, no keys under HOME
        home = tmpdir("vfsd-home-")
        sock = os.path.join(home, "agent.sock")
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(agent.wait)
        self.addCleanup(agent.kill)
        harness.wait_for(lambda: os.path.exists(sock), 10, "ssh-agent")
        env = dict(vfsd_env(home), SSH_AUTH_SOCK=sock)
        subprocess.run(["ssh-add", "-q", self.sshd.identity], env=env, check=True,
                       stdin=subprocess.DEVNULL)
        url = "sftp://%s@127.0.0.1:%d%s?known_hosts=%s" % (
            self.sshd.user, self.sshd.port, self.remote, self.sshd.known_hosts)
        with Vfsd([("/s", url)], env=env) as v:
            write_file(v.path("s/by-agent"), b"a")
        # then ~/.ssh/id_ed25519 when there is no agent
        os.mkdir(os.path.join(home, ".ssh"), 0o700)
        shutil.copy(self.sshd.identity, os.path.join(home, ".ssh", "id_ed25519"))
        with Vfsd([("/s", url)], env=vfsd_env(home)) as v:
            self.assertEqual(read_file(v.path("s/by-agent")), b"a")
        # and neither: the message says what was tried
        os.unlink(os.path.join(home, ".ssh", "id_ed25519"))
        start_failure(self, url, ["authentication failed", "no ssh-agent and no identity file"])

    def test_options_from_config_file(self):
        cfg = ("[mount /ssh]\nurl = sftp://%s@127.0.0.1:%d%s\nidentity = %s\n"
               "known_hosts = %s\nconnections = 2\ncache_ttl = 0\ntimeout = 7\n"
               % (self.sshd.user, self.sshd.port, self.remote, self.sshd.identity,
                  self.sshd.known_hosts))
        with Vfsd(config_text=cfg, env=vfsd_env(self.sshd.dir)) as v:
            write_file(v.path("ssh/f"), b"cfg")
            self.assertIn("2 connections, timeout 7s", v.log())
        self.assertEqual(read_file(os.path.join(self.remote, "f")), b"cfg")

    def test_missing_remote_dir_and_bad_server(self):
        start_failure(self, self.sshd.url("/nonexistent/dir"),
                      ["/nonexistent/dir", "No such file"])
        port = harness.free_port()
        start_failure(self, "sftp://root@127.0.0.1:%d/?known_hosts=%s" %
                      (port, self.sshd.known_hosts),
                      ["127.0.0.1 port %d" % port, "refused"])

    def test_password_not_accepted_from_url(self):
        start_failure(self, self.sshd.url(self.remote, password="x"),
                      ["password"])


@unittest.skipUnless(have_sshd(), "needs OpenSSH's sshd (package openssh-server)")
class SftpResilience(harness.TestCase):
    def setUp(self):
        self.sshd = Sshd().start()
        self.addCleanup(self.sshd.stop)
        self.remote = tmpdir("vfsd-remote-")
        self.local = tmpdir("vfsd-local-")

    def mount(self, **params):
        return Vfsd([("/ssh", self.sshd.url(self.remote, **params)),
                     ("/local", "file://" + self.local)],
                    env=vfsd_env(self.sshd.dir)).start()

    def test_restart_mid_copy(self):
        v = self.mount(timeout=5)
        self.addCleanup(v.stop)
        src = os.path.join(self.local, "src")
        with open(src, "wb") as f:
            for _ in range(256):
                f.write(os.urandom(1 << 20))
        cp = subprocess.Popen(["dd", "if=" + src, "of=" + v.path("ssh/copy"),
                               "bs=1M", "status=none"], stderr=subprocess.PIPE)
        self.addCleanup(cp.kill)
        target = os.path.join(self.remote, "copy")
        harness.wait_for(lambda: os.path.exists(target) and
                         os.path.getsize(target) > (8 << 20), 60, "the copy to start")
        self.sshd.stop()
        _, err = cp.communicate(timeout=30)
        # the copy saw an error (or, on a very fast machine, had finished)
        if cp.returncode == 0:
            self.assertEqual(os.path.getsize(target), 256 << 20)
        else:
            self.assertIn(b"Input/output error", err)
        self.sshd.restart()

        def works():
            try:
                os.listdir(v.path("ssh"))
                return True
            except OSError:
                return False
        harness.wait_for(works, 30, "the mount to reconnect")
        data = os.urandom((5 << 20) + 7)
        write_file(v.path("ssh/after"), data)
        self.assertEqual(read_file(v.path("ssh/after")), data)
        self.assertEqual(read_file(os.path.join(self.remote, "after")), data)
        log = v.log()
        self.assertIn("reconnecting", log)
        self.assertIn(": connected", log)

    def test_open_file_survives_reconnect(self):
        data = os.urandom(3 << 20)
        write_file(os.path.join(self.remote, "f"), data)
        v = self.mount(timeout=5)
        self.addCleanup(v.stop)
        fd = os.open(v.path("ssh/f"), os.O_RDWR | os.O_DIRECT)
        self.addCleanup(os.close, fd)
        self.assertEqual(os.pread(fd, 1 << 20, 0), data[:1 << 20])
        self.sshd.restart()
        # reopened by path on a new session, transparently
        deadline = time.monotonic() + 30
        while True:
            try:
                got = os.pread(fd, 1 << 20, 1 << 20)
                break
            except OSError as e:
                if time.monotonic() > deadline:
                    raise
                self.assertIn(e.errno, (errno.EIO, errno.ETIMEDOUT))
                time.sleep(0.2)
        self.assertEqual(got, data[1 << 20:2 << 20])
        os.pwrite(fd, b"written after restart", 0)
        os.fsync(fd)
        self.assertEqual(read_file(os.path.join(self.remote, "f"))[:21],
                         b"written after restart")

    def test_stopped_server_times_out_other_mounts_unaffected(self):
        timeout = 3
        v = self.mount(timeout=timeout, cache_ttl=0)
        self.addCleanup(v.stop)
        write_file(v.path("ssh/before"), b"b")
        self.sshd.pause()
        self.addCleanup(self.sshd.resume)

        results = []

        def hammer_ssh(i):
            # fresh names: nothing may be answered from a cache
            for fn, args in ((os.stat, (v.path("ssh/nope%d" % i),)),
                             (write_file, (v.path("ssh/new%d" % i), b"x")),
                             (os.listdir, (v.path("ssh"),))):
                results.append((fn.__name__,) + timed(fn, *args))
        threads = [threading.Thread(target=hammer_ssh, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        # meanwhile /local answers at its usual speed
        local_times = []
        t_end = time.monotonic() + timeout + 2
        i = 0
        while time.monotonic() < t_end:
            i += 1
            t, res = timed(write_file, v.path("local/f%d" % i), b"L" * 4096)
            self.assertNotIsInstance(res, OSError)
            local_times.append(t)
            t, res = timed(read_file, v.path("local/f%d" % i))
            self.assertEqual(res, b"L" * 4096)
            local_times.append(t)
            t, res = timed(os.listdir, v.path("local"))
            local_times.append(t)
            time.sleep(0.05)
        for t in threads:
            t.join(timeout=4 * timeout)
            self.assertFalse(t.is_alive(), "an /ssh operation hung")
        self.assertLess(max(local_times), 1.0, "/local slowed down by the dead /ssh")
        self.assertEqual(len(results), 24)
        for name, secs, res in results:
            self.assertIsInstance(res, OSError, name)
            self.assertIn(res.errno, (errno.EIO, errno.ETIMEDOUT), (name, res))
            # within the timeout (plus scheduling slack)
            self.assertLess(secs, timeout + 1.5, (name, secs))
        self.assertIn("down", v.log())

        # once the server answers again, the mount recovers by itself
        self.sshd.resume()

        def works():
            try:
                return read_file(v.path("ssh/before")) == b"b"
            except OSError:
                return False
        harness.wait_for(works, 30, "the mount to recover")


if __name__ == "__main__":
    harness.main()
