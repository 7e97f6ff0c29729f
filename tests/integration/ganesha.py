# SPDX-License-Identifier: GPL-2.0-or-later
"""An nfs-ganesha server on 127.0.0.1 for the NFS tests.

Everything lives in a fresh temporary directory: the generated
ganesha.conf, the exported directory, the PID file and the server log.
The server listens on 127.0.0.1 only, with NFS and MOUNT ports picked at
run time (so several servers and the machine's own NFS setup do not
collide), NLM and RQUOTA off.  It exports one directory with FSAL VFS,
`Squash = No_Root_Squash`, NFSv3 and NFSv4, under the same path in the
NFSv4 pseudo filesystem, and `Graceless = true` so that a restarted server
serves at once instead of holding a 90-second grace period.

rpcbind is started if none runs (ganesha registers its programs there and
complains loudly otherwise; vfsd itself never asks it, the URLs carry the
ports) and stopped again at the end if this module started it.  The server
is stopped (also when it is SIGSTOPped) when the test ends, on failure too,
through the harness's cleanup list.  ganesha's log has harmless dbus and
Kerberos warnings.

    with Ganesha() as g:
        url = g.url(version=3)          # nfs://127.0.0.1/EXPORT?nfsport=..
        g.export                        # the exported directory
        g.pause(); g.resume()           # SIGSTOP/SIGCONT the server
        g.restart()                     # same ports and export
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import harness

GANESHA = shutil.which("ganesha.nfsd") or "/usr/bin/ganesha.nfsd"
RPCBIND = shutil.which("rpcbind") or "/usr/sbin/rpcbind"

_rpcbind = []    # the rpcbind process this module started, if any


def available():
    """None if the tests can run here, else the reason they cannot."""
    if not os.path.exists(GANESHA):
        return "nfs-ganesha is not installed (apt install nfs-ganesha nfs-ganesha-vfs)"
    if not any(os.path.exists(os.path.join(d, "libfsalvfs.so"))
               for d in ("/usr/lib/x86_64-linux-gnu/ganesha", "/usr/lib/ganesha",
                         "/usr/lib64/ganesha", "/usr/lib/aarch64-linux-gnu/ganesha")):
        return "FSAL VFS is not installed (apt install nfs-ganesha-vfs)"
    if os.geteuid() != 0:
        return "nfs-ganesha needs root"
    return None


def _port_open(port, timeout=1.0):
    with socket.socket() as s:
        s.settimeout(timeout)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ensure_rpcbind():
    if _port_open(111) or _rpcbind or not os.path.exists(RPCBIND):
        return      # without rpcbind ganesha still serves its fixed ports
    # -f: stay in the foreground, so that we hold its pid and stop exactly
    # the process we started; -w: warm start from saved registrations
    proc = subprocess.Popen([RPCBIND, "-f", "-w"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _rpcbind.append(proc)
    # first registered, so it runs last: after every server is gone
    harness._cleanups.insert(0, _stop_rpcbind)
    with contextlib.suppress(TimeoutError):
        harness.wait_for(lambda: _port_open(111), 10, "rpcbind")


def _stop_rpcbind():
    while _rpcbind:
        proc = _rpcbind.pop()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Ganesha:
    """export_parent: where the exported directory is made (default: next
    to the config, under $TMPDIR); benchmarks pass /dev/shm so that the
    server's disk does not set the pace."""

    def __init__(self, nfs_port=None, mnt_port=None, export_parent=None,
                 addr="127.0.0.1", netns=None, max_write=None):
        """addr/netns: listen on addr inside network namespace netns (the
        lock torture test puts the server on its own address).  max_write:
        the export's largest WRITE in bytes (the server's default if None;
        libnfs takes no less than 8 KiB over NFSv3)."""
        self.addr = addr
        self.max_write = max_write
        self.netns = netns
        self.nfs_port = nfs_port
        self.mnt_port = mnt_port
        self.export_parent = export_parent
        self.proc = None
        self.dir = None

    # -- set-up -----------------------------------------------------------

    def start(self):
        if self.dir is None:
            self.dir = harness.tmpdir("vfsd-ganesha-")
            if self.export_parent:
                self.export = tempfile.mkdtemp(prefix="vfsd-export-",
                                               dir=self.export_parent)
                harness._cleanups.append(
                    lambda: shutil.rmtree(self.export, ignore_errors=True))
            else:
                self.export = os.path.join(self.dir, "export")
                os.mkdir(self.export)
            os.chmod(self.export, 0o777)
            self.config = os.path.join(self.dir, "ganesha.conf")
            self.pidfile = os.path.join(self.dir, "ganesha.pid")
            self.logpath = os.path.join(self.dir, "ganesha.log")
            self.recovery = os.path.join(self.dir, "recovery")
            os.mkdir(self.recovery)
            if self.nfs_port is None:
                self.nfs_port = harness.free_port()
            if self.mnt_port is None:
                self.mnt_port = harness.free_port()
                while self.mnt_port == self.nfs_port:
                    self.mnt_port = harness.free_port()
            self._write_config()
            harness._cleanups.append(self.stop)
        _ensure_rpcbind()
        self._spawn()
        return self

    def _write_config(self):
        with open(self.config, "w") as f:
            f.write("""\
NFS_CORE_PARAM {
    Bind_addr = %(addr)s;
    NFS_Port = %(nfs)d;
    MNT_Port = %(mnt)d;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Protocols = 3, 4;
}
NFSV4 {
    Graceless = true;
    RecoveryRoot = "%(recovery)s";
    # owners as numbers: libnfs 4.0 parses only numeric owner strings
    # and would show root-owned files as 65534
    Allow_Numeric_Owners = true;
    Only_Numeric_Owners = true;
}
NFS_KRB5 {
    Active_krb5 = false;
}
EXPORT {
    Export_Id = 1;
    Path = "%(export)s";
    Pseudo = "%(export)s";
    Access_Type = RW;
    Squash = No_Root_Squash;
    Protocols = 3, 4;
    Transports = TCP;
    SecType = sys;
    # ganesha caches attributes for 60 s by default: a change made in the
    # directory behind its back would show the old size meanwhile
    Attr_Expiration_Time = 0;
%(max_write)s    FSAL {
        Name = VFS;
    }
}
""" % {"nfs": self.nfs_port, "mnt": self.mnt_port, "export": self.export,
       "recovery": self.recovery, "addr": self.addr,
       "max_write": "    MaxWrite = %d;\n" % self.max_write if self.max_write else ""})

    def _spawn(self):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pidfile)
        # -F: foreground, so self.proc is the server itself
        self.proc = subprocess.Popen(harness.netns_prefix(self.netns) +
                                     [GANESHA, "-F", "-f", self.config, "-L", self.logpath,
                                      "-p", self.pidfile],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("ganesha.nfsd exited with %d:\n%s"
                                   % (self.proc.returncode, self.log()[-4000:]))
            if "NFS SERVER INITIALIZED" in self.log() and \
                    harness.port_open(self.addr, self.nfs_port, self.netns) and \
                    harness.port_open(self.addr, self.mnt_port, self.netns):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("ganesha did not listen on ports %d/%d:\n%s"
                                   % (self.nfs_port, self.mnt_port, self.log()[-4000:]))
            time.sleep(0.05)

    # -- what clients need --------------------------------------------------

    def url(self, path="", version=3, **params):
        """nfs:// URL of the export (or of `path` below it)."""
        q = {"version": version, "nfsport": self.nfs_port}
        if version == 3:
            q["mountport"] = self.mnt_port
        q.update(params)
        query = "&".join("%s=%s" % kv for kv in q.items())
        return "nfs://%s%s%s?%s" % (self.addr, self.export, path, query)

    def log(self):
        with contextlib.suppress(OSError):
            with open(self.logpath, errors="backslashreplace") as f:
                return f.read()
        return ""

    # -- faults -------------------------------------------------------------

    def pause(self):
        """SIGSTOP the server: it stops answering, its sockets stay open.
        Returns once every thread has stopped: kill() returns before the
        group stop reaches them all, and a thread still running would
        answer a request sent right after."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP)
            harness.wait_for(lambda: self._all_stopped(self.proc.pid), 10,
                             "ganesha to stop")

    @staticmethod
    def _all_stopped(pid):
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except FileNotFoundError:
            return True
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                    # the state follows the parenthesised command name
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, IndexError):
                continue
            if state not in ("T", "t", "Z", "X"):
                return False
        return True

    def resume(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self):
        """Kill the server (connections drop at once), stopped or not."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
            os.kill(self.proc.pid, signal.SIGCONT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.proc = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pidfile)

    def restart(self):
        """A server crash and restart: same ports, same export, new write
        verifier (ganesha derives it from its start time)."""
        self.stop()
        # ganesha's epoch is in seconds: make sure the new one differs
        time.sleep(1.1)
        self._spawn()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class PerClass:
    """Mixin for a TestCase class whose tests share one server: started
    before the first (cls.ganesha), stopped after the last."""

    @classmethod
    def setUpClass(cls):
        cls.ganesha = Ganesha().start()

    @classmethod
    def tearDownClass(cls):
        cls.ganesha.stop()
