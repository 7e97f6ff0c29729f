# SPDX-License-Identifier: GPL-2.0-or-later
"""What vfsd refuses at start: each case ends with exit status 2, a
one-line message naming the problem, and nothing mounted."""
import os
import random
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, tmpdir  # noqa: E402


class StartRefusals(harness.TestCase):
    def setUp(self):
        self.d = tmpdir()
        self.mnt = tmpdir()

    def refused(self, args, *want, config=None):
        """Run vfsd (as a daemon: an old vfsd that accepted would return
        at once, mounted) and check it refused with every text of want."""
        if config is not None:
            path = os.path.join(tmpdir(), "vfsd.conf")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(config)
            args = ["-c", path] + list(args)
        r = harness.run_vfsd(list(args) + [self.mnt])
        out = r.stderr + r.stdout
        self.assertEqual(r.returncode, 2, "accepted %s:\n%s" % (args, out))
        self.assertFalse(harness.is_mounted(self.mnt))
        for w in want:
            self.assertIn(w, r.stderr)
        self.assertEqual(out.count("\n"), 1, out)
        return out

    def test_allow_other_without_default_permissions_as_root(self):
        """Any local user would act on the backends with root's rights."""
        harness.require_root(self)
        for opts in (["-o", "allow_other"], ["-o", "ro", "-o", "allow_other"],
                     ["-o", "allow_other,ro"]):
            self.refused(opts + ["-m", "/l=" + self.d],
                         "-o allow_other without default_permissions is refused when "
                         "vfsd runs as root", "any local user",
                         "Add -o default_permissions", "--allow-other-unchecked")
        # with the kernel's checks: fine, in one -o or two
        for opts in (["-o", "allow_other,default_permissions"],
                     ["-o", "allow_other", "-o", "default_permissions"]):
            with Vfsd([("/l", self.d)], args=opts) as v:
                self.assertNotIn("allow_other", v.log())

    def test_allow_other_unchecked_opt_in(self):
        """The documented way to ask for it anyway, with a warning."""
        harness.require_root(self)
        with Vfsd([("/l", self.d)], args=["-o", "allow_other",
                                           "--allow-other-unchecked"]) as v:
            self.assertIn("warning: -o allow_other without default_permissions, as "
                          "allow_other_unchecked asks", v.log())
            with open("/proc/self/mountinfo") as f:
                self.assertIn("allow_other", [ln for ln in f if v.mnt in ln][0])
        cfg = "[vfsd]\nallow_other_unchecked = yes\n[mount /l]\nurl = %s\n" % self.d
        with Vfsd(config_text=cfg, args=["-o", "allow_other"]) as v:
            self.assertIn("allow_other_unchecked asks", v.log())

    def test_allow_other_warning_when_not_root(self):
        """Not root: allowed (the daemon's rights are the user's own), but
        logged."""
        harness.require_root(self)  # to become uid 65534
        base = tmpdir()
        for sub in ("mnt", "dir", "run"):
            os.mkdir(os.path.join(base, sub))
        for dp, dns, _ in os.walk(base):
            os.chown(dp, 65534, 65534)
        mnt = os.path.join(base, "mnt")
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               harness.VFSD, "-f", "-o", "allow_other",
               "--control", os.path.join(base, "run", "ctl.sock"),
               "-m", "/l=" + os.path.join(base, "dir"), mnt]
        log = os.path.join(tmpdir(), "log")
        with open(log, "w") as out:
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)

        def text():
            with open(log) as f:
                return f.read()
        try:
            # it may mount (fuse.conf's user_allow_other) or not; the
            # warning comes first either way
            harness.wait_for(lambda: p.poll() is not None or "allow_other" in text(),
                             30, "vfsd's start as uid 65534")
            time.sleep(0.2)
            self.assertIn("warning: -o allow_other without default_permissions: every "
                          "user who can reach the mount acts on the backends with this "
                          "daemon's rights", text())
            self.assertNotIn("refused", text())
        finally:
            harness.fusermount_u(mnt)
            if p.poll() is None:
                p.terminate()
            p.wait(timeout=30)

    def test_host_id_checked_like_the_config(self):
        """--host-id takes what host_id in the config file takes (it was
        unchecked: '../../evil', newlines)."""
        self.refused(["--host-id", "../../evil", "-m", "/l=" + self.d],
                     "--host-id '../../evil': a host id is a word of 1 to 127 bytes "
                     "without spaces, control characters or slashes")
        out = self.refused(["--host-id", "a\nvfsd: forged", "-m", "/l=" + self.d],
                           "--host-id 'a\\x0avfsd: forged'")
        self.assertNotIn("\nvfsd: forged", out)
        self.refused(["--host-id", "h" * 128, "-m", "/l=" + self.d], "--host-id 'hhh")
        self.refused(["-m", "/l=" + self.d], "vfsd.conf:2: host_id '../x'",
                     config="[vfsd]\nhost_id = ../x\n")

    def test_file_url_must_name_a_directory(self):
        """An empty path served the host's / (file://, ///), and a user
        part was ignored."""
        self.refused(["-m", "/x=file://"],
                     "-m: [mount /x]: file://: no directory: a file URL needs an "
                     "absolute path")
        self.refused(["-m", "/p=///"], "-m: [mount /p]: ///: the path reduces to /, "
                     "the host's whole file system")
        self.refused(["-m", "/p=file:////"], "the path reduces to /")
        self.refused(["-m", "/u=file://user@" + self.d],
                     "file://user@%s: file URLs take no user name" % self.d)
        self.refused(["-m", "/u=file://user@host" + self.d], "take no user name")
        self.refused(["-m", "/h=file://host" + self.d], "file URLs take no host")
        self.refused([], "vfsd.conf:1: [mount /x]: file://: no directory",
                     config="[mount /x]\nurl = file://\n")
        # the host's / when asked for in so many words
        with Vfsd([("/p", "/")]) as v:
            self.assertIn("etc", os.listdir(v.path("p")))

    def test_duplicate_key_in_mount_section(self):
        """readonly given twice: an error, not the last one silently."""
        self.refused([], "vfsd.conf:4: duplicate key 'readonly'",
                     config="[mount /a]\nurl = %s\nreadonly = yes\nreadonly = no\n"
                     % self.d)

    def test_bad_prefixes(self):
        """The prefix rules of vfsctl mount add, for -m and the config."""
        self.refused(["-m", "/.vfsd/x=" + self.d],
                     "-m: mount prefix '/.vfsd/x' lies in /.vfsd, vfsd's own directory")
        self.refused(["-m", "/a\tb=" + self.d],
                     "-m: mount prefix '/a\\x09b' contains a control character")
        self.refused(["-m", "/%s=%s" % ("c" * 256, self.d)],
                     "has a component longer than 255 bytes")
        self.refused([], "vfsd.conf:1: mount prefix '/.vfsd' lies in /.vfsd",
                     config="[mount /.vfsd]\nurl = %s\n" % self.d)

    def test_malformed_url_password_not_echoed(self):
        """Messages quote a URL without its secrets (they were echoed
        whole on stderr)."""
        for args, want, config in (
                (["-m", "/x=sftp://127.0.0.1/x?password=hunter2&bad"],
                 "sftp://127.0.0.1/x?password=***&bad: query parameter 'bad' has no "
                 "value", None),
                (["-m", "/x=sftp://127.0.0.1/x?password=hun%zzter2"],
                 "bad query parameter 'password=***'", None),
                (["-m", "sftp://u:hunter2@127.0.0.1/x"],
                 "-m 'sftp://u:***@127.0.0.1/x': expected PREFIX=URL", None),
                (["-m", "/x=nfs://127.0.0.1:0/e?password=hunter2"],
                 "nfs://127.0.0.1:0/e?password=***: port must be 1 to 65535", None),
                ([], "vfsd.conf:1: [mount /s]: sftp://u:***@127.0.0.1/x: passwords "
                 "in URLs are refused", "[mount /s]\nurl = sftp://u:hunter2@127.0.0.1/x\n"),
                ([], "gopher://h/x?passphrase=***", "[mount /g]\nurl = "
                 "gopher://h/x?passphrase=hunter2\n")):
            out = self.refused(args, want, config=config)
            self.assertNotIn("hunter2", out)
            self.assertNotIn("ter2", out)


def _procs_naming(comm, text):
    """pids of the processes called comm whose command line contains text
    (comm first: reading a command line waits on a process's memory map,
    which a process stuck elsewhere may hold)."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid) as f:
                if f.read().strip() != comm:
                    continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if text.encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def _private_fusectl_mounts():
    """fusectl mounted elsewhere than its place (vfsd's own, fuse_bg.c)."""
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f
                if ln.split(" - ")[1].startswith("fusectl ")
                and ln.split()[4] != harness.FUSECTL]


LOAD = """
import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(100000):
        pass
"""


class KillDuringStart(harness.TestCase):
    """An admin's kill -9, or a supervisor's, may come at any moment of a
    start: it must leave a mount point that fails at once (ENOTCONN until
    fusermount3 -u) and no process behind, never a mount that hangs."""

    ROUNDS = 150     # the old daemon wedged in about 3 rounds of 100

    @staticmethod
    def kill_9(proc, mnt):
        """Kill vfsd (if not yet) and reap it; if it cannot die, abort its
        connection so that nothing stays hung.  True if it died."""
        conn = harness.fuse_connection(mnt)
        proc.kill()
        if harness.wait_reaped(proc, 20):
            return True
        harness.abort_fuse(conn=conn)
        harness.wait_reaped(proc, 30)
        return False

    def end_round(self, proc, mnt):
        self.kill_9(proc, mnt)
        harness.fusermount_u(mnt)

    def test_kill_9_at_any_moment_of_start_leaves_nothing_hung(self):
        seed = int(os.environ.get("VFSD_TEST_SEED", time.time_ns() % 100000))
        rng = random.Random(seed)
        comm = os.path.basename(harness.VFSD)[:15]
        env = dict(os.environ, LC_ALL="C")
        d = tmpdir()
        for name in ("a", "b"):
            with open(os.path.join(d, name), "w") as f:
                f.write(name)
        # the moments to hit are short; load on both CPUs widens them
        load = [subprocess.Popen([sys.executable, "-c", LOAD]) for _ in range(2)]
        for p in load:
            self.addCleanup(p.wait)
            self.addCleanup(p.kill)
        fusectl = _private_fusectl_mounts()
        for i in range(self.ROUNDS):
            mnt = tmpdir()
            proc = subprocess.Popen([harness.VFSD, "-f", "-m", "/l=file://" + d, mnt],
                                    stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            self.addCleanup(self.end_round, proc, mnt)
            if i % 5:
                # the moment that wedged the old daemon: its own first stat
                # of the mount, just after the mount appears
                deadline = time.monotonic() + 60
                while not harness.is_mounted(mnt) and proc.poll() is None \
                        and time.monotonic() < deadline:
                    pass
                spin = time.perf_counter() + rng.uniform(0, 0.0003)
                while time.perf_counter() < spin:
                    pass
            else:
                time.sleep(rng.uniform(0, 0.15))
            what = "seed %d, round %d" % (seed, i)
            if not self.kill_9(proc, mnt):
                self.fail("vfsd did not die of SIGKILL (%s): a thread of it "
                          "waits on its own mount" % what)
            # a listing of the mount point returns at once: ENOTCONN while
            # mounted (a stat may be answered from the kernel's cache), or
            # the empty directory beneath
            if harness.is_mounted(mnt):
                r = subprocess.run(["ls", mnt], capture_output=True, text=True,
                                   timeout=20, env=env)
                self.assertNotEqual(r.returncode, 0, what)
                # ENOTCONN, or ECONNABORTED for a request in flight
                self.assertRegex(r.stderr, "not connected|connection abort", what)
            harness.wait_for(lambda: not _procs_naming(comm, mnt), 20,
                             "every process of the killed vfsd to end (%s)" % what)
            harness.fusermount_u(mnt)
            self.assertFalse(harness.is_mounted(mnt), what)
            self.assertEqual(_private_fusectl_mounts(), fusectl, what)
        # and a start after all that still serves
        with Vfsd([("/l", "file://" + d)]) as v:
            self.assertEqual(sorted(os.listdir(v.path("l"))), ["a", "b"])


if __name__ == "__main__":
    harness.main()
