# SPDX-License-Identifier: GPL-2.0-or-later
"""Test hosts with networks of their own: a server namespace holding a
bridge, and one network namespace per "host", each joined to the bridge by
a veth pair with its own address.  Host i is 10.213.77.(10+i), the server
10.213.77.1; hosts reach each other through the bridge too.  Mounts are
not namespaced, so a vfsd started in a host namespace (NsVfsd) has its
mount visible to the test.

Links can be cut (`ip link set down`), slowed and made lossy.  Delay with
jitter uses tc netem where the kernel has it; kernels without
CONFIG_NET_SCH_NETEM get a shaping fallback, and the tests print which
one ran.  Used by the lock torture test and the guest migration tests."""
import os
import subprocess

import harness
from harness import Vfsd


def netns_unavailable():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "tc", "nft", "nsenter"):
        if subprocess.run(["sh", "-c", "command -v " + tool],
                          capture_output=True).returncode:
            return "%s is not installed (scripts/deps.sh --test)" % tool
    return None


class Net:
    """A server namespace with a bridge and one namespace per host."""

    _made = 0   # namespace names stay unique within one test process

    def __init__(self, hosts):
        Net._made += 1
        tag = "%x%d" % (os.getpid() & 0xffff, Net._made)
        self.srv = "vt%s-s" % tag
        self.hosts = ["vt%s-h%d" % (tag, i) for i in range(hosts)]
        self.server_addr = "10.213.77.1"
        self.created = []

    def host_addr(self, i):
        return "10.213.77.%d" % (10 + i)

    def ip(self, *args, ns=None, check=True):
        cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def setup(self):
        self.ip("netns", "add", self.srv)
        self.created.append(self.srv)
        self.ip("link", "set", "lo", "up", ns=self.srv)
        self.ip("link", "add", "br0", "type", "bridge", ns=self.srv)
        self.ip("addr", "add", self.server_addr + "/24", "dev", "br0", ns=self.srv)
        self.ip("link", "set", "br0", "up", ns=self.srv)
        for i, h in enumerate(self.hosts):
            self.ip("netns", "add", h)
            self.created.append(h)
            self.ip("link", "set", "lo", "up", ns=h)
            self.ip("link", "add", "eth0", "type", "veth", "peer", "name", "p%d" % i,
                    "netns", self.srv, ns=h)
            self.ip("addr", "add", self.host_addr(i) + "/24", "dev", "eth0", ns=h)
            self.ip("link", "set", "eth0", "up", ns=h)
            self.ip("link", "set", "p%d" % i, "master", "br0", ns=self.srv)
            self.ip("link", "set", "p%d" % i, "up", ns=self.srv)
        return self

    def teardown(self):
        for ns in reversed(self.created):
            self.ip("netns", "del", ns, check=False)
        self.created = []

    def cut(self, i, down):
        """A partition: host i's link to the bridge goes down (or up)."""
        self.ip("link", "set", "p%d" % i, "down" if down else "up", ns=self.srv)

    def netem(self):
        """Whether this kernel has tc netem (CONFIG_NET_SCH_NETEM); some
        test machines' kernels do not."""
        if not hasattr(self, "_netem"):
            r = subprocess.run(["tc", "-n", self.srv, "qdisc", "add", "dev", "p0", "root",
                                "netem", "delay", "1ms"], capture_output=True)
            self._netem = r.returncode == 0
            subprocess.run(["tc", "-n", self.srv, "qdisc", "del", "dev", "p0", "root"],
                           capture_output=True)
        return self._netem

    def slow(self, i, on):
        """A slow link both ways: netem delay 150 ms with 100 ms jitter
        where the kernel has netem, else a token bucket of 4 Mbit/s that
        queues up to 300 ms."""
        shape = (["netem", "delay", "150ms", "100ms"] if self.netem() else
                 ["tbf", "rate", "4mbit", "burst", "16kb", "latency", "300ms"])
        for ns, dev in ((self.hosts[i], "eth0"), (self.srv, "p%d" % i)):
            if on:
                subprocess.run(["tc", "-n", ns, "qdisc", "replace", "dev", dev, "root"]
                               + shape, check=True, capture_output=True)
            else:
                subprocess.run(["tc", "-n", ns, "qdisc", "del", "dev", dev, "root"],
                               capture_output=True)

    def isolate(self, i, on):
        """Cut host i off from the storage server (its address and the
        delay relay's) but not from the other hosts, both ways (nftables
        in the host's namespace); on=False heals it."""
        ns = self.hosts[i]
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet",
                        "vtiso"], capture_output=True)
        if on:
            addrs = "{ %s, %s }" % (self.server_addr, RELAY_ADDR)
            rules = ("table inet vtiso {\n chain out {\n  type filter hook output "
                     "priority 0; policy accept;\n  ip daddr %s drop\n }\n"
                     " chain in {\n  type filter hook input priority 0; policy accept;\n"
                     "  ip saddr %s drop\n }\n}\n" % (addrs, addrs))
            subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules,
                           text=True, check=True, capture_output=True)

    def lossy(self, i, pct):
        """Drop pct% of host i's outgoing packets (nftables); 0 ends it."""
        ns = self.hosts[i]
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet",
                        "vtloss"], capture_output=True)
        if pct:
            rules = ("table inet vtloss {\n chain out {\n  type filter hook output "
                     "priority 0; policy accept;\n  numgen random mod 100 < %d drop\n"
                     " }\n}\n" % pct)
            subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules,
                           text=True, check=True, capture_output=True)


class NsVfsd(Vfsd):
    """vfsd run inside a network namespace (its mount stays visible here)."""

    def __init__(self, netns, **kw):
        super().__init__(**kw)
        self.netns = netns

    def command(self):
        return harness.netns_prefix(self.netns) + super().command()


RELAY_ADDR = "10.213.77.2"


class DelayRelay:
    """Delay with jitter between the hosts and the server where the kernel
    has no netem: a TCP relay in the server namespace listening on
    RELAY_ADDR (a second address on the bridge) at the given ports and
    forwarding to the server's address at the same ports.  Each chunk read
    is sent on after delay +- jitter (uniform), never before the chunk
    ahead of it (TCP keeps order), both ways: a connection's round trip
    gains 2 * delay on average.  Clients use RELAY_ADDR instead of the
    server's address.

    It runs as a child process (this file, `relay` mode) inside the server
    namespace; stop() ends it."""

    def __init__(self, net, ports, delay_ms, jitter_ms, seed=1):
        self.net, self.ports = net, list(ports)
        self.delay_ms, self.jitter_ms, self.seed = delay_ms, jitter_ms, seed
        self.proc = None

    def start(self):
        self.net.ip("addr", "add", RELAY_ADDR + "/24", "dev", "br0", ns=self.net.srv,
                    check=False)
        cmd = harness.netns_prefix(self.net.srv) + [
            "python3", os.path.abspath(__file__), "relay", RELAY_ADDR, self.net.server_addr,
            str(self.delay_ms), str(self.jitter_ms), str(self.seed)] + [
            str(p) for p in self.ports]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     text=True)
        harness._cleanups.append(self.stop)
        line = self.proc.stdout.readline()
        if not line.startswith("listening"):
            self.stop()
            raise RuntimeError("delay relay did not start: %r" % line)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
        self.proc = None


def _relay_main(listen, target, delay_ms, jitter_ms, seed, ports):
    import random
    import socket
    import threading
    import time

    rng = random.Random(seed)
    rng_lock = threading.Lock()

    def pump(src, dst):
        """src -> dst, each chunk held until its due time; the thread
        that sends (it ends last)."""
        q, cond = [], threading.Condition()
        done = []

        def reader():
            last_due = 0.0
            while True:
                try:
                    data = src.recv(262144)
                except OSError:
                    data = b""
                with rng_lock:
                    d = (delay_ms + rng.uniform(-jitter_ms, jitter_ms)) / 1000.0
                due = max(time.monotonic() + max(d, 0.0), last_due)
                last_due = due
                with cond:
                    q.append((due, data))
                    cond.notify()
                if not data:
                    return

        def writer():
            while True:
                with cond:
                    while not q:
                        cond.wait()
                    due, data = q.pop(0)
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    done.append(1)
                    return
                try:
                    dst.sendall(data)
                except OSError:
                    try:
                        src.shutdown(socket.SHUT_RD)
                    except OSError:
                        pass
                    return
        threading.Thread(target=reader, daemon=True).start()
        w = threading.Thread(target=writer, daemon=True)
        w.start()
        return w

    def close_when_done(c, s, writers):
        """Both directions ended: the sockets go (a connection a client
        dropped must not stay open here, nor its descriptors)."""
        for w in writers:
            w.join()
        for sk in (c, s):
            try:
                sk.close()
            except OSError:
                pass

    def serve(lsock, port):
        while True:
            c, _ = lsock.accept()
            try:
                s = socket.create_connection((target, port), timeout=10)
                s.settimeout(None)
            except OSError:
                c.close()
                continue
            for sk in (c, s):
                sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            writers = [pump(c, s), pump(s, c)]
            threading.Thread(target=close_when_done, args=(c, s, writers),
                             daemon=True).start()

    for port in ports:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((listen, port))
        ls.listen(64)
        threading.Thread(target=serve, args=(ls, port), daemon=True).start()
    print("listening", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    import sys
    if len(sys.argv) >= 7 and sys.argv[1] == "relay":
        _relay_main(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]),
                    int(sys.argv[6]), [int(p) for p in sys.argv[7:]])
