# SPDX-License-Identifier: GPL-2.0-or-later
"""Servers for bench/bench_remote.sh: one OpenSSH sshd and one nfs-ganesha
on 127.0.0.1, started with the integration tests' Sshd and Ganesha classes
(tests/integration/sshd.py, ganesha.py), so ports, keys and the ganesha
config are made exactly as the tests make them.

    python3 bench/remote_servers.py [--sftp] [--nfs] <CONTROL >FACTS

Prints the facts the benchmark needs as shell assignments on stdout, then
SERVERS_READY=1, then waits until its stdin reaches end of file (the shell
closes its end of the pipe, or dies) and stops everything it started
through the harness's cleanup list: the servers, rpcbind if it started it,
their temporary directories and the exported / remote directories in
/dev/shm.  SIGTERM does the same.  Server files go under $TMPDIR.
"""
import os
import shlex
import signal
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
import harness  # noqa: E402
import ganesha  # noqa: E402
from ganesha import Ganesha  # noqa: E402
from sshd import Sshd  # noqa: E402


def fact(name, value):
    print("%s=%s" % (name, shlex.quote(str(value))), flush=True)


def main():
    want = set(a.lstrip("-") for a in sys.argv[1:]) or {"sftp", "nfs"}
    # the shell stops us by closing stdin; a Ctrl-C on the terminal must
    # not stop the servers under mounts the shell is still unmounting
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    step = "start"
    try:
        if "sftp" in want:
            step = "start sshd"
            s = Sshd().start()
            step = "make the SFTP remote directory in /dev/shm"
            remote = tempfile.mkdtemp(prefix="vfsd-bench-sftp-", dir="/dev/shm")
            harness._cleanups.append(
                lambda: harness.subprocess.run(["rm", "-rf", "--one-file-system", remote]))
            fact("SSH_PORT", s.port)
            fact("SSH_USER", s.user)
            fact("SSH_IDENTITY", s.identity)
            fact("SSH_KNOWN_HOSTS", s.known_hosts)
            fact("SSH_SERVER_DIR", s.dir)
            # the listener: every connection's processes run below it
            fact("SSHD_PID", s.proc.pid)
            fact("SSH_REMOTE", remote)
            fact("SFTP_URL", s.url(remote))
        if "nfs" in want:
            why = ganesha.available()
            if why:
                fact("NFS_SKIP", why)
            else:
                step = "start nfs-ganesha"
                g = Ganesha(export_parent="/dev/shm").start()
                fact("NFS_EXPORT", g.export)
                fact("NFS_PORT", g.nfs_port)
                fact("NFS_MNT_PORT", g.mnt_port)
                fact("NFS_SERVER_DIR", g.dir)
                fact("NFS3_URL", g.url(version=3))
                fact("NFS4_URL", g.url(version=4))
        fact("SERVERS_READY", 1)
        step = None
        sys.stdin.read()
    except Exception as e:
        if step is None:
            raise
        print("remote_servers.py: %s failed: %s" % (step, e), file=sys.stderr)
        sys.exit(1)
    finally:
        harness._run_cleanups()


if __name__ == "__main__":
    main()
