# SPDX-License-Identifier: GPL-2.0-or-later
"""Test harness: runs vfsd on a temporary mount point and cleans up.

Every process and mount a test starts is registered here and torn down in
reverse order when the test ends, also on failure, and at interpreter exit
as a last resort.  Servers listen on 127.0.0.1 only, on ports picked at
run time.
"""
import atexit
import contextlib
import json
import os
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


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what, interval=0.05):
    """Poll pred() until it is true; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].replace("\\040", " ")
            if mp == path:
                return True
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
                 mnt=None, start_timeout=60):
        self.mounts = list(mounts)
        self.config_text = config_text
        self.args = list(args)
        self.env = env
        self.mnt = mnt
        self.start_timeout = start_timeout
        self.proc = None
        self.logfile = None
        self.killed = False

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
                                     stdin=subprocess.DEVNULL)
        _cleanups.append(self.stop)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("vfsd exited with %d:\n%s" % (self.proc.returncode, self.log()))
            return is_mounted(self.mnt)
        wait_for(up, self.start_timeout, "vfsd to mount " + self.mnt)
        # the first access waits for FUSE INIT; make sure it answers
        os.stat(self.mnt)
        return self

    def log(self):
        with contextlib.suppress(OSError):
            with open(self.logpath) as f:
                return f.read()
        return ""

    def stop(self):
        if self.proc is None:
            return
        fusermount_u(self.mnt)
        hung = False
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hung = True
            self.proc.kill()
            self.proc.wait()
            fusermount_u(self.mnt)
        self.logfile.close()
        rc, self.proc = self.proc.returncode, None
        # a clean unmount ends vfsd with 0; anything else (a sanitizer
        # report, a crash, a hang) fails the test that owned it
        if not self.killed and (hung or rc != 0):
            raise AssertionError("vfsd %s (status %s); its log:\n%s" % (
                "hung on unmount" if hung else "exited badly", rc, self.log()))

    def kill(self, sig=signal.SIGKILL):
        """Send sig; stop() then accepts any exit status."""
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            self.killed = True
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


def main():
    import sys
    # -v shows each test and every skip with its reason
    prog = unittest.main(module="__main__", argv=[sys.argv[0], "-v"] + sys.argv[1:],
                         exit=False)
    res = prog.result
    skipped = len(res.skipped)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    passed = res.testsRun - failed - skipped
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    _run_cleanups()
    sys.exit(0 if res.wasSuccessful() and res.testsRun > 0 else 1)


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
