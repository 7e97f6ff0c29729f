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
