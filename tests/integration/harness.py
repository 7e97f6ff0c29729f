# SPDX-License-Identifier: GPL-2.0-or-later
"""Test harness: runs vfsd on a temporary mount point and cleans up.

Every process and mount a test starts is registered here and torn down in
reverse order when the test ends, also on failure, and at interpreter exit
as a last resort.  Servers listen on 127.0.0.1 only, on ports picked at
run time.  Permission tests get throwaway users (make_user), run code as
them (run_as) and compare a scenario on a plain directory with the same
scenario through the mount (compare).
"""
import atexit
import contextlib
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
VFSD = os.environ.get("VFSD") or os.path.join(SRC, "build", "vfsd", "vfsd")
VFSCTL = os.environ.get("VFSCTL") or os.path.join(SRC, "build", "vfsd", "vfsctl")

_cleanups = []


def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        with contextlib.suppress(Exception):
            fn()


atexit.register(_run_cleanups)


def _terminated(signum, frame):
    """meson test ends a test that ran past its timeout with SIGTERM, which
    would kill Python without running atexit: leave through SystemExit, so
    the cleanups unmount every vfsd and stop every server started."""
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _terminated)


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fn, *args):
    """(seconds, result or OSError) of fn(*args)."""
    t0 = time.monotonic()
    try:
        res = fn(*args)
    except OSError as e:
        res = e
    return time.monotonic() - t0, res


def wait_for(pred, timeout, what, interval=0.05):
    """Poll pred() until it is true; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def _real(path):
    """os.path.realpath of path's directory, then path's name: a realpath of
    the whole would stat the mount point, which hangs if the mount does."""
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)),
                        os.path.basename(path))


def is_mounted(path):
    path = _real(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].replace("\\040", " ")
            if mp == path:
                return True
    return False


FUSECTL = "/sys/fs/fuse/connections"


def _fuse_device(path):
    """The device number of the FUSE mount at path, read from mountinfo
    (a stat of a wedged mount would hang), or None."""
    path = _real(path)
    dev = None
    with open("/proc/self/mountinfo") as f:
        for line in f:     # the last one is on top
            fields = line.split()
            if fields[4].replace("\\040", " ") != path:
                continue
            dev = None
            if fields[fields.index("-") + 1].startswith("fuse"):
                major, minor = (int(x) for x in fields[2].split(":"))
                dev = os.makedev(major, minor)
    return dev


def fuse_connection(path):
    """The fusectl number of the FUSE mount at path (the kernel's dev_t of
    it, major << 20 | minor), or None."""
    dev = _fuse_device(path)
    return None if dev is None else os.major(dev) << 20 | os.minor(dev)


def abort_fuse(path=None, conn=None):
    """Abort a FUSE connection through fusectl (the mount's at path, or
    number conn), as the kernel does when the daemon's /dev/fuse closes:
    every request waiting on it fails with ENOTCONN.  The way out of a
    mount whose daemon cannot die (a thread of it waiting on the mount
    itself).  Returns whether a connection was aborted."""
    if conn is None:
        conn = fuse_connection(path)
    if conn is None:
        return False
    if not is_mounted(FUSECTL):
        r = subprocess.run(["mount", "-t", "fusectl", "none", FUSECTL],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            _cleanups.append(lambda: subprocess.run(
                ["umount", FUSECTL], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
    try:
        with open(os.path.join(FUSECTL, str(conn), "abort"), "w") as f:
            f.write("1")
    except OSError:
        return False
    return True


def wait_reaped(proc, timeout):
    """proc.wait with a timeout; True once the process is gone."""
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def fusermount_u(path):
    for args in (["fusermount3", "-u", path], ["fusermount3", "-uz", path],
                 ["umount", "-l", path]):
        if not is_mounted(path):
            return
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: not is_mounted(path), 5, "unmount of " + path)


def run_vfsd(args, timeout=60, env=None):
    """Run vfsd to completion (for start-up error tests)."""
    return subprocess.run([VFSD] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def tmpdir(prefix="vfsd-test-"):
    d = tempfile.mkdtemp(prefix=prefix)

    def rm():
        fusermount_u(d)
        subprocess.run(["rm", "-rf", "--one-file-system", d])
    _cleanups.append(rm)
    return d


class Vfsd:
    """vfsd -f with the given mounts on a fresh mount point.

    mounts: list of (prefix, url).  config_text: written to a 0600 file and
    passed with -c.  args: extra arguments (e.g. ["-o", "allow_other,default_permissions"]).
    """

    def __init__(self, mounts=(), config_text=None, args=(), env=None,
                 mnt=None, start_timeout=60, umask=None):
        """umask: the daemon's own umask (default: this process's)."""
        self.mounts = list(mounts)
        self.config_text = config_text
        self.args = list(args)
        self.env = env
        self.mnt = mnt
        self.start_timeout = start_timeout
        self.umask = umask
        self.proc = None
        self.logfile = None
        self.killed = False     # stopped by a signal: any exit status
        self.sigkilled = False
        self.conn = None        # its fusectl connection, once mounted

    def command(self):
        cmd = [VFSD, "-f"]
        if self.config_text is not None:
            cfg = os.path.join(self.workdir, "vfsd.conf")
            with open(os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(self.config_text)
            cmd += ["-c", cfg]
        for prefix, url in self.mounts:
            cmd += ["-m", "%s=%s" % (prefix, url)]
        return cmd + self.args + [self.mnt]

    def start(self):
        self.workdir = tmpdir("vfsd-run-")
        if self.mnt is None:
            self.mnt = os.path.join(self.workdir, "mnt")
            os.mkdir(self.mnt)
        self.logpath = os.path.join(self.workdir, "vfsd.log")
        self.logfile = open(self.logpath, "w")
        self.proc = subprocess.Popen(self.command(), stdout=self.logfile,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     stdin=subprocess.DEVNULL,
                                     umask=-1 if self.umask is None else self.umask)
        _cleanups.append(self.stop)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("vfsd exited with %d:\n%s" % (self.proc.returncode, self.log()))
            return is_mounted(self.mnt)
        wait_for(up, self.start_timeout, "vfsd to mount " + self.mnt)
        self.conn = fuse_connection(self.mnt)
        # the first access waits for FUSE INIT; make sure it answers
        os.stat(self.mnt)
        return self

    def log(self):
        with contextlib.suppress(OSError):
            with open(self.logpath, errors="backslashreplace") as f:
                return f.read()
        return ""

    def stop(self):
        if self.proc is None:
            return
        if self.sigkilled:
            self.abort_if_undying()
        fusermount_u(self.mnt)
        hung = False
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hung = True
            self.proc.kill()
            self.abort_if_undying()
            fusermount_u(self.mnt)
        self.logfile.close()
        rc, self.proc = self.proc.returncode, None
        if self.killed or hung or rc != 0:
            # a vfsd that did not end cleanly left its control socket,
            # unless another vfsd on this mount point took it over
            m = re.search(r"control socket (/\S+\.sock)$", self.log(), re.M)
            if m:
                with contextlib.suppress(OSError), \
                        socket.socket(socket.AF_UNIX) as probe:
                    try:
                        probe.connect(m.group(1))
                    except ConnectionRefusedError:
                        os.unlink(m.group(1))
        # a clean unmount ends vfsd with 0; anything else (a sanitizer
        # report, a crash, a hang) fails the test that owned it
        if not self.killed and (hung or rc != 0):
            raise AssertionError("vfsd %s (status %s); its log:\n%s" % (
                "hung on unmount" if hung else "exited badly", rc, self.log()))

    def abort_if_undying(self):
        """After a SIGKILL: a thread stuck on the mount (waiting for an
        answer only this process could give) keeps the process from dying
        and so /dev/fuse open, and nothing else would ever free it; abort
        its connection, by the number it had (an unmount may have taken
        the mount point's entry already; a process still alive holds its
        number, so it is not another's)."""
        if wait_reaped(self.proc, 10):
            return
        if self.conn is not None and self.proc.poll() is None:
            abort_fuse(conn=self.conn)
        if not wait_reaped(self.proc, 30):
            raise AssertionError("vfsd survives SIGKILL for 40 s")

    def kill(self, sig=signal.SIGKILL):
        """Send sig; stop() then accepts any exit status."""
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            self.killed = True
        if sig == signal.SIGKILL:
            self.sigkilled = True
        self.proc.send_signal(sig)

    def path(self, *parts):
        return os.path.join(self.mnt, *[p.lstrip("/") for p in parts])

    def mount_info(self, prefix):
        """The daemon's own view of one mount (vfsctl --json mounts)."""
        r = subprocess.run([VFSCTL, "-m", self.mnt, "--json", "mounts"],
                           capture_output=True, text=True, timeout=60, check=True)
        for m in json.loads(r.stdout)["mounts"]:
            if m["prefix"] == prefix:
                return m
        raise KeyError(prefix)

    def stats(self, prefix):
        """vfsctl --json stats PREFIX: the mount's counters."""
        r = subprocess.run([VFSCTL, "-m", self.mnt, "--json", "stats", prefix],
                           capture_output=True, text=True, timeout=60, check=True)
        return json.loads(r.stdout)["mounts"][0]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class TestCase(unittest.TestCase):
    """unittest.TestCase whose cleanups also run the harness's."""

    def add_process_cleanup(self, fn):
        self.addCleanup(fn)


def require_root(test):
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (FUSE mounts, chown, mknod)")


def measures_rates(test):
    """Marks a test method, or a class's every test, whose proof is a rate
    or a time measured over a window (what a limit lets through, how long
    others wait beside it), not what the code does with memory.  main()
    takes --rates=skip (leave them out) or --rates=only (run only them):
    tests/meson.build makes them a meson test of their own in suite rates,
    which the sanitizer run leaves out (scripts/test.sh), their code
    running under the sanitizers in the script's other tests.  A test
    named on the command line runs either way."""
    test.measures_rates = True
    return test


class _RatesLoader(unittest.TestLoader):
    """Loads of each class only the tests measures_rates marks (only) or
    only the others; counts those it left out."""

    def __init__(self, only):
        super().__init__()
        self.only = only
        self.left_out = 0

    def getTestCaseNames(self, cls):
        names = []
        for n in super().getTestCaseNames(cls):
            rates = bool(getattr(cls, "measures_rates", False) or
                         getattr(getattr(cls, n), "measures_rates", False))
            if rates == self.only:
                names.append(n)
            else:
                self.left_out += 1
        return names


class _TimedResult(unittest.TextTestResult):
    """Keeps each test's wall time, for the summary of the slowest."""

    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        self.times = getattr(self, "times", [])
        self.times.append((time.monotonic() - self._t0, test.id()))


def main():
    import sys
    # -v shows each test and every skip with its reason
    runner = unittest.TextTestRunner(verbosity=2, resultclass=_TimedResult)
    args, loader = [], None
    for a in sys.argv[1:]:
        if a in ("--rates=skip", "--rates=only"):
            loader = _RatesLoader(a == "--rates=only")
        else:
            args.append(a)
    prog = unittest.main(module="__main__", argv=[sys.argv[0], "-v"] + args,
                         exit=False, testRunner=runner,
                         testLoader=loader or unittest.defaultTestLoader)
    res = prog.result
    if loader and loader.left_out:
        print("%d tests left out: %s (measures_rates)" % (
            loader.left_out, "those that do not measure rates" if loader.only
            else "those that measure rates"))
    slow = sorted(getattr(res, "times", []), reverse=True)[:5]
    if slow and slow[0][0] >= 10:
        # where a suite's minutes go (CI keeps the whole run under 45 min)
        print("slowest: " + ", ".join("%s %.0f s" % (name.rsplit(".", 2)[-2] + "." +
                                                     name.rsplit(".", 1)[-1], t)
                                      for t, name in slow if t >= 10))
    skipped = len(res.skipped)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    passed = res.testsRun - failed - skipped
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    _run_cleanups()
    sys.exit(0 if res.wasSuccessful() and res.testsRun > 0 else 1)


def env_without_leak_check():
    """The environment for a child that is to skip LeakSanitizer's scan at
    its exit, or None (this one's) outside a sanitizer run.  Under the
    sanitizers (scripts/test.sh sets ASAN_OPTIONS with detect_leaks=1)
    the scan takes a vfsctl about 50 ms of its 70: a test that runs it
    hundreds of times for what the daemon does, not for vfsctl's own
    memory (which every other call checks), runs it with this.  The rest of
    AddressSanitizer and UBSan stays on; of repeated flags the last wins."""
    opts = os.environ.get("ASAN_OPTIONS")
    if opts is None:
        return None
    return dict(os.environ, ASAN_OPTIONS=opts + ":detect_leaks=0")


def vfsctl(v, *args, check=True):
    """vfsctl ARGS... for the daemon serving Vfsd v; the CompletedProcess,
    or AssertionError with its output when it fails and `check`."""
    r = subprocess.run([VFSCTL, "-m", v.mnt] + list(args), capture_output=True,
                       text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("vfsctl %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


def fault(vfsd, prefix, *args, check=True, json_out=False):
    """vfsctl fault PREFIX ARGS... on a fault+ mount of `vfsd` (vfsctl(8)).

    Returns the CompletedProcess; with check, a refusal raises with vfsctl's
    message.  For instance:
        rid = int(fault(v, "/s", "add", "op=write", "path=*.img", "pause").stdout)
        rules = json.loads(fault(v, "/s", "list", json_out=True).stdout)["rules"]
        fault(v, "/s", "resume", rid)
    """
    cmd = [VFSCTL, "-m", vfsd.mnt] + (["--json"] if json_out else []) + \
        ["fault", prefix] + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr))
    return r


def port_open(addr, port, netns=None, timeout=1.0):
    """Whether addr:port accepts a TCP connection, seen from netns (a name
    under /run/netns) or from here."""
    if netns is None:
        with socket.socket() as s:
            s.settimeout(timeout)
            return s.connect_ex((addr, port)) == 0
    probe = ("import socket,sys; s=socket.socket(); s.settimeout(%r); "
             "sys.exit(s.connect_ex((%r, %d)) != 0)" % (timeout, addr, port))
    return subprocess.run(["nsenter", "--net=/run/netns/" + netns, sys.executable,
                           "-c", probe], timeout=30).returncode == 0


def netns_prefix(netns):
    """Command prefix that runs a program in network namespace `netns` and
    nothing else of it (its FUSE mounts stay visible here)."""
    return ["nsenter", "--net=/run/netns/" + netns] if netns else []


# -- other users ---------------------------------------------------------
#
# Permission tests act as throwaway unprivileged users (useradd/groupadd,
# removed again by the cleanup list, also when a test fails) and compare
# what such a user gets through the mount with what the same user gets on
# a plain directory.

class Account:
    """A user: name, uid, primary gid and supplementary gids."""

    def __init__(self, name, uid, gid, groups):
        self.name, self.uid, self.gid, self.groups = name, uid, gid, tuple(groups)

    def __repr__(self):
        return self.name


_account_seq = [0]


def _account_name(tag):
    # unique per run and per call; useradd wants at most 32 characters
    _account_seq[0] += 1
    return ("vt%d%s%d" % (os.getpid(), tag, _account_seq[0]))[:32]


def make_group(tag):
    """A new group; returns (name, gid)."""
    import grp
    name = _account_name(tag)
    subprocess.run(["groupadd", name], check=True, capture_output=True)
    _cleanups.append(lambda: subprocess.run(["groupdel", name], capture_output=True))
    return name, grp.getgrnam(name).gr_gid


def make_user(tag, groups=()):
    """A new user with a primary group of its own and the supplementary
    groups named in `groups`, no home and no login shell; an Account."""
    import grp
    import pwd
    name = _account_name(tag)
    cmd = ["useradd", "-M", "-U", "-d", "/nonexistent", "-s", "/usr/sbin/nologin"]
    if groups:
        cmd += ["-G", ",".join(groups)]
    subprocess.run(cmd + [name], check=True, capture_output=True)

    def remove():
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)
    _cleanups.append(remove)
    pw = pwd.getpwnam(name)
    return Account(name, pw.pw_uid, pw.pw_gid, [grp.getgrnam(g).gr_gid for g in groups])


class ChildTimeout(Exception):
    """run_as's child did not answer in time; `pid` is still to be reaped
    (reap_later does it once whatever blocks it is released).  Not an
    OSError, so that outcome() never mistakes it for an errno."""

    def __init__(self, msg, pid):
        super().__init__(msg)
        self.pid = pid


def reap_later(pid, timeout=30):
    """SIGKILL pid and reap it, waiting up to timeout (a process stuck in a
    FUSE request cannot die before the daemon answers)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            return True     # reaped already
        time.sleep(0.05)
    return False


def run_as(user, fn, *args, umask=0o022, timeout=20):
    """fn(*args) in a forked child running as `user` (an Account; None:
    as this process) with `umask`.  Returns what fn returned (it must
    pickle), or raises the OSError it raised, with its errno.  A child that
    has not answered within timeout raises ChildTimeout."""
    import pickle
    import select
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            os.close(r)
            if user is not None:
                os.setgroups(list(user.groups))
                os.setgid(user.gid)
                os.setuid(user.uid)
            os.umask(umask)
            try:
                res = ("ok", fn(*args))
            except OSError as e:
                res = ("err", e.errno, str(e))
            data = pickle.dumps(res)
            while data:
                data = data[os.write(w, data):]
        except BrokenPipeError:
            pass        # the parent gave up waiting (ChildTimeout)
        except BaseException:
            import traceback
            traceback.print_exc()
            status = 1
        finally:
            os._exit(status)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                raise ChildTimeout("%s as %s did not return within %ss" % (
                    getattr(fn, "__name__", fn), user or "root", timeout), pid)
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
    os.waitpid(pid, 0)
    if not chunks:
        raise RuntimeError("%s as %s died without an answer" % (fn, user))
    res = pickle.loads(b"".join(chunks))
    if res[0] == "err":
        raise OSError(res[1], res[2])
    return res[1]


def outcome(fn, *args):
    """fn(*args), or the errno name of the OSError it raises: a result two
    runs of one operation can be compared by."""
    try:
        return fn(*args)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def try_as(user, fn, *args, umask=0o022, timeout=20):
    """outcome() of fn(*args) run as user."""
    return outcome(lambda: run_as(user, fn, *args, umask=umask, timeout=timeout))


def reachable_tmpdir(prefix="vfsd-test-"):
    """tmpdir() that every user may search (mkdtemp makes it 0700); its
    parents must be searchable too, or other users get EACCES for reasons
    no test means."""
    d = tmpdir(prefix)
    os.chmod(d, 0o755)
    parent = os.path.dirname(d)
    while True:
        if not os.stat(parent).st_mode & 0o001:
            raise RuntimeError("%s is not searchable by other users: point TMPDIR "
                               "elsewhere for the permission tests" % parent)
        if parent == "/":
            return d
        parent = os.path.dirname(parent)


def tree_state(root, acls=False):
    """What a compare looks at in a tree: {relative path: (type, mode,
    uid, gid, content of small files or symlink target)}; with acls,
    also the tree's `getfacl -R` output under key 'acls'."""
    import stat as st
    state = {}

    def one(path):
        s = os.lstat(path)
        body = None
        if st.S_ISREG(s.st_mode) and s.st_size <= 4096:
            with open(path, "rb") as f:
                body = f.read()
        elif st.S_ISLNK(s.st_mode):
            body = os.readlink(path)
        return (st.filemode(s.st_mode), oct(st.S_IMODE(s.st_mode)), s.st_uid, s.st_gid, body)
    state["."] = one(root)
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            state[os.path.relpath(path, root)] = one(path)
    if acls:
        state["acls"] = getfacl(root, ".", recursive=True)
    return state


def getfacl(cwd, *paths, recursive=False):
    """getfacl's output for paths relative to cwd (so two trees compare)."""
    cmd = ["getfacl"] + (["-R"] if recursive else []) + list(paths)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True).stdout


class Side:
    """One place a compared scenario runs: `path` is where its operations
    go (a plain directory, or the same directory through the mount) and
    `disk` the directory that holds the files (trees are prepared there and
    the result read from there).  `extra` carries what a scenario needs
    besides (another path to the same files, say)."""

    def __init__(self, name, path, disk=None, **extra):
        self.name, self.path, self.disk = name, path, disk or path
        self.extra = extra

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def d(self, *parts):
        return os.path.join(self.disk, *parts)


def compare(test, sides, prepare, scenario, acls=False):
    """Run one scenario on each side and assert identical results.

    prepare(disk) makes the side's disk directory (which does not exist
    yet) and the starting tree in it, as root.  scenario(side)
    returns a list of outcomes (success values or errno names, see try_as).
    The outcomes and tree_state() of each side's disk afterwards must equal
    those of sides[0], the directory beneath."""
    results = []
    for side in sides:
        prepare(side.disk)
        out = scenario(side)
        results.append((side.name, out, tree_state(side.disk, acls)))
    ref = results[0]
    for name, out, state in results[1:]:
        test.assertEqual(ref[1], out, "outcomes differ: - %s, + %s" % (ref[0], name))
        test.assertEqual(ref[2], state, "the trees after the scenario differ: - %s, + %s"
                         % (ref[0], name))
    return results
