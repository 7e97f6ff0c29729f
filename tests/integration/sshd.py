# SPDX-License-Identifier: GPL-2.0-or-later
"""An OpenSSH server on 127.0.0.1 for the SFTP tests.

Everything lives in a fresh temporary directory: sshd_config, the host key,
a user key pair and its authorized_keys, the PID file, the server log and a
known_hosts file holding the host key.  The server is stopped (also when it
is SIGSTOPped) when the test ends, on failure too, through the harness's
cleanup list.  Nothing under ~/.ssh is read or written.

    with Sshd() as s:
        url = s.url("/srv/data")        # sftp://USER@127.0.0.1:PORT/srv/data?...
        s.pause(); s.resume()           # SIGSTOP/SIGCONT every sshd process
        s.restart()                     # same port and keys
        s.new_host_key()                # a different host key, restarted
"""
import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time

import harness

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


def _keygen(path, comment):
    for p in (path, path + ".pub"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", path], check=True, stdin=subprocess.DEVNULL)


def _children(pid):
    """Every process whose parent chain leads to pid."""
    parent = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may contain spaces and parentheses
        fields = stat[stat.rindex(")") + 2:].split()
        parent[int(entry)] = int(fields[1])
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


class Sshd:
    def __init__(self, user=None, port=None, addr="127.0.0.1", netns=None,
                 sftp_args="", subsystem=None):
        """addr/netns: listen on addr inside network namespace netns;
        sftp_args: options of internal-sftp (e.g. "-P setstat" refuses
        SETSTAT requests); subsystem: a command sshd runs for the sftp
        subsystem instead of internal-sftp (e.g. sftp_liar.py)."""
        self.addr = addr
        self.netns = netns
        self.sftp_args = sftp_args
        self.subsystem = subsystem
        self.user = user or getpass.getuser()
        self.port = port
        self.proc = None
        self.dir = None

    # -- set-up -----------------------------------------------------------

    def start(self):
        if self.dir is None:
            self.dir = harness.tmpdir("vfsd-sshd-")
            os.chmod(self.dir, 0o700)
            self.host_key = os.path.join(self.dir, "host_ed25519")
            self.identity = os.path.join(self.dir, "id_ed25519")
            self.known_hosts = os.path.join(self.dir, "known_hosts")
            self.authorized_keys = os.path.join(self.dir, "authorized_keys")
            self.config = os.path.join(self.dir, "sshd_config")
            self.pidfile = os.path.join(self.dir, "sshd.pid")
            self.logpath = os.path.join(self.dir, "sshd.log")
            _keygen(self.host_key, "vfsd-test-host")
            _keygen(self.identity, "vfsd-test-user")
            shutil.copy(self.identity + ".pub", self.authorized_keys)
            if self.port is None:
                self.port = harness.free_port()
            self._write_config()
            self.write_known_hosts()
            harness._cleanups.append(self.stop)
        # privilege separation needs this directory (Debian creates it at
        # boot only when the ssh service runs)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self._spawn()
        return self

    def _write_config(self):
        with open(self.config, "w") as f:
            f.write("\n".join([
                "Port %d" % self.port,
                "ListenAddress %s" % self.addr,
                "HostKey %s" % self.host_key,
                "PidFile %s" % self.pidfile,
                "AuthorizedKeysFile %s" % self.authorized_keys,
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",
                "UseDNS no",
                "MaxStartups 100",
                "MaxSessions 100",
                "MaxAuthTries 10",
                "LogLevel VERBOSE",
                ("Subsystem sftp " + (self.subsystem or
                                      "internal-sftp " + self.sftp_args)).rstrip(),
                ""]))

    def _spawn(self):
        log = open(self.logpath, "a")
        # -D: stay in the foreground, so self.proc is the listener;
        # -e: log to stderr (the log file)
        self.proc = subprocess.Popen(harness.netns_prefix(self.netns) +
                                     [SSHD, "-D", "-e", "-f", self.config],
                                     stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("sshd exited with %d:\n%s"
                                   % (self.proc.returncode, self.log()))
            if harness.port_open(self.addr, self.port, self.netns):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("sshd did not listen on port %d:\n%s"
                                   % (self.port, self.log()))
            time.sleep(0.05)

    # -- what clients need --------------------------------------------------

    def host_key_line(self):
        with open(self.host_key + ".pub") as f:
            kind, blob = f.read().split()[:2]
        return "[%s]:%d %s %s\n" % (self.addr, self.port, kind, blob)

    def write_known_hosts(self, path=None):
        path = path or self.known_hosts
        with open(path, "w") as f:
            f.write(self.host_key_line())
        return path

    def fingerprint(self):
        """The host key's fingerprint as OpenSSH prints it (SHA256:...)."""
        out = subprocess.run([SSH_KEYGEN, "-l", "-E", "sha256", "-f",
                              self.host_key + ".pub"],
                             capture_output=True, text=True, check=True).stdout
        return out.split()[1]

    def url(self, path="/", identity=None, known_hosts=None, **params):
        params.setdefault("identity", identity or self.identity)
        params.setdefault("known_hosts", known_hosts or self.known_hosts)
        query = "&".join("%s=%s" % kv for kv in params.items())
        return "sftp://%s@%s:%d%s?%s" % (self.user, self.addr, self.port, path, query)

    def log(self):
        with contextlib.suppress(OSError):
            with open(self.logpath, errors="backslashreplace") as f:
                return f.read()
        return ""

    # -- faults -------------------------------------------------------------

    def _all_pids(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        return [self.proc.pid] + _children(self.proc.pid)

    def pause(self):
        """SIGSTOP the listener and every session process: the server
        stops answering but its sockets stay open."""
        for pid in self._all_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self):
        for pid in self._all_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop(self):
        """Kill the server and its sessions (connections drop at once)."""
        if self.proc is None:
            return
        pids = self._all_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGCONT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.proc = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pidfile)

    def restart(self):
        self.stop()
        self._spawn()

    def new_host_key(self):
        """Replace the host key (known_hosts keeps the old one) and restart."""
        self.stop()
        _keygen(self.host_key, "vfsd-test-host-2")
        self._spawn()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
