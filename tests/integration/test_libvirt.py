# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt (Debian 12: 9.0) on vfsd's image store, with two "hosts".

An NFSv3 server (nfs-ganesha) runs in a server network namespace; hosts A
and B are network namespaces of their own, each with a vfsd (--host-id
hostA/hostB) on the export and a private libvirtd (libvirt.py) that sees
its host's vfsd mount at /var/lib/libvirt/vfsd, the same path on both, as
a real deployment would mount it.  Proven through virsh:

- a `dir` pool on the mount on each host, the same directory: a volume
  made on A is listed on B;
- vol-create-as (qcow2, and raw) and vol-clone: the clone holds the data
  and stays sparse, and qemu-img reads it;
- a domain (cache='none', io='native') defined and started on A; the same
  disk started in a domain on B is refused by vfsd's cross-host image lock;
- migration without --unsafe is refused (libvirt 9.0 does not know the
  mount is shared); `virsh migrate --live --unsafe` A -> B -> A with the
  migration stream on a TCP connection between the hosts' addresses, the
  domain running on one side and shut off / gone on the other after each,
  the image lock following the domain, and the image clean at the end.

That domain has no OS (it sits in the firmware).  The last test boots
the test guest (tests/guest/, guest.py) in a domain on A: a kernel and
initramfs whose verifying writer writes a qcow2 volume of the pool
(cache='none', error_policy='stop') while virsh migrates it live A -> B
-> A ... GUEST_MIGRATIONS times (VFSD_LIBVIRT_MIGRATIONS, default 4).
Its serial console is a UNIX socket QEMU listens on in each host's
libvirtd namespace; the test joins the destination's as each migration
starts.  After each: the domain runs on exactly one host, the writer's
heartbeats go on, no error lines; it prints how long virsh migrate took
and the longest gap between heartbeats.  At the end the writer covers the
disk, reads every block back (no error allowed), and `qemu-img check` is
clean."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guest  # noqa: E402
import harness  # noqa: E402
import libvirt  # noqa: E402
import qemu  # noqa: E402
from netlab import Net, NsVfsd, netns_unavailable  # noqa: E402

LEASE = 12              # lock_lease; the NFS timeout is at most a third
MiB = 1 << 20
ROOT = "/var/lib/libvirt/vfsd"  # each host's vfsd mount, inside its libvirtd
POOL = "vfsd"
POOL_DIR = ROOT + "/vm/pool"
GUEST_MIGRATIONS = int(os.environ.get("VFSD_LIBVIRT_MIGRATIONS", "4"))
SEED = 9
BOOT = "/var/lib/libvirt/boot"  # the test guest's kernel and initrd on each host
# the booted domain's serial console: inside each libvirtd's namespace, so
# one socket per host (Libvirtd.host_path: the file as the test sees it)
CONSOLE = "/run/libvirt/qemu/writer.console"
# lines of the writer that mean something went wrong (tests/guest/writer.c)
TROUBLE = ("ERR", "FATAL", "BAD")


def port_in(netns):
    """A TCP port free right now in network namespace netns."""
    r = subprocess.run(harness.netns_prefix(netns) + [
        sys.executable, "-c",
        "import socket; s = socket.socket(); s.bind(('', 0)); print(s.getsockname()[1])"],
        capture_output=True, text=True, check=True, timeout=30)
    return int(r.stdout)


class StreamCounter:
    """Counts, in network namespace netns, the bytes that arrive from
    src_addr at TCP port `port` (an nftables counter)."""

    def __init__(self, netns, src_addr, port):
        self.netns = netns
        rules = ("table inet vfsdmig {\n chain in {\n  type filter hook input priority 0; "
                 "policy accept;\n  ip saddr %s tcp dport %d counter\n }\n}\n"
                 % (src_addr, port))
        subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=rules,
                       text=True, check=True, capture_output=True, timeout=30)

    def bytes(self):
        r = subprocess.run(["ip", "netns", "exec", self.netns, "nft", "-j", "list", "table",
                            "inet", "vfsdmig"], capture_output=True, text=True, check=True,
                           timeout=30)
        for item in json.loads(r.stdout)["nftables"]:
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    return expr["counter"]["bytes"]
        raise AssertionError("no counter in " + r.stdout)

    def close(self):
        subprocess.run(["ip", "netns", "exec", self.netns, "nft", "delete", "table", "inet",
                        "vfsdmig"], capture_output=True, timeout=30)


def locked_by(path):
    try:
        return os.getxattr(path, "user.vfsd.image.locked_by").decode()
    except OSError:
        return ""


class LibvirtHosts(harness.TestCase):
    """Two hosts, each with its vfsd on one NFSv3 export and its own
    libvirtd, a `dir` pool on the mount on both; the tests are in the
    subclasses, each of which gets hosts of its own."""
    @classmethod
    def setUpClass(cls):
        import ganesha
        why = (libvirt.libvirt_unavailable() or netns_unavailable() or ganesha.available()
               or (None if qemu.QEMU_IMG and qemu.QEMU_IO else
                   "qemu-img/qemu-io are not installed (scripts/deps.sh --test)"))
        cls.why = why
        if why:
            return      # each test says why it is skipped
        cls.net = Net(2).setup()
        cls.addClassCleanup(cls.net.teardown)
        g = ganesha.Ganesha(addr=cls.net.server_addr, netns=cls.net.srv).start()
        cls.addClassCleanup(g.stop)
        cfg = ("[vfsd]\nlock_lease = %d\n[mount /vm]\nurl = %s\n"
               % (LEASE, g.url(version=3, timeout=LEASE // 3)))
        cls.vfsd, cls.lv = [], []
        for i, host in enumerate(("hostA", "hostB")):
            v = NsVfsd(cls.net.hosts[i], config_text=cfg, args=["--host-id", host]).start()
            cls.addClassCleanup(v.stop)
            cls.vfsd.append(v)
        os.makedirs(cls.vfsd[0].path("vm", "pool"))
        for i, host in enumerate(("A", "B")):
            t = time.monotonic()
            lv = libvirt.Libvirtd(cls.net.hosts[i], binds={ROOT: cls.vfsd[i].mnt},
                                  name=host).start()
            cls.addClassCleanup(lv.stop)
            print("libvirtd on host %s (%s) answers after %.1fs"
                  % (host, cls.net.host_addr(i), time.monotonic() - t))
            cls.lv.append(lv)
        # 1. the same directory on the shared store, a pool on each host
        for lv in cls.lv:
            lv.virsh("pool-define-as", POOL, "dir", "--target", POOL_DIR)
            lv.virsh("pool-start", POOL)

    def setUp(self):
        if self.why:
            self.skipTest(self.why)

    def outside(self, i, name):
        """Volume `name` through host i's mount, from the test."""
        return self.vfsd[i].path("vm", "pool", name)

    def volumes(self, lv):
        """The pool's volume names (virsh 9.0's vol-list has no --name)."""
        return [line.split()[0] for line in lv.virsh("vol-list", POOL).stdout.splitlines()
                if line.strip()]

    def wait_volumes(self, lv, names):
        """Refresh lv's pool until it lists exactly `names`: a listing
        made on one host shows another host's changes within the mount's
        cache_ttl (1 s by default, docs/nfs.md)."""
        t = time.monotonic()

        def listed():
            lv.virsh("pool-refresh", POOL)
            return sorted(self.volumes(lv)) == sorted(names)
        harness.wait_for(listed, 5, "%s's pool to list %s (it lists %s)"
                         % (lv.name, names, self.volumes(lv)), interval=0.2)
        return time.monotonic() - t

    def qemu_io(self, path, *cmds):
        args = [qemu.QEMU_IO, "-f", "qcow2"]
        for c in cmds:
            args += ["-c", c]
        r = subprocess.run(args + [path], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("fail", r.stdout.lower(), r.stdout)

    # -- 1 and 2: pools and volumes -------------------------------------------

    def migrate(self, i_src, i_dst, dom):
        """virsh migrate --live --unsafe from host i_src to host i_dst, the
        stream on a TCP connection between the hosts' addresses; asserts
        that it carried the guest's memory."""
        src, dst = self.lv[i_src], self.lv[i_dst]
        port = port_in(self.net.hosts[i_dst])
        stream = StreamCounter(self.net.hosts[i_dst], self.net.host_addr(i_src), port)
        self.addCleanup(stream.close)
        t = time.monotonic()
        src.virsh("migrate", "--live", "--unsafe", dom, dst.uri,
                  "--migrateuri", "tcp://%s:%d" % (self.net.host_addr(i_dst), port))
        got = stream.bytes()
        print("migrated %s -> %s in %.1fs: %d KiB from %s to %s:%d"
              % (src.name, dst.name, time.monotonic() - t, got // 1024,
                 self.net.host_addr(i_src), self.net.host_addr(i_dst), port))
        # mostly zero pages, sent as a few bytes each; the firmware's and
        # option ROMs' pages are the bulk
        self.assertGreater(got, 256 * 1024, "the migration stream did not take that way")
        stream.close()

    def assert_runs_on(self, i, dom, other_state):
        lv, other = self.lv[i], self.lv[1 - i]
        self.assertEqual(lv.domstate(dom), "running", lv.qemu_log(dom))
        self.assertEqual(other.domstate(dom), other_state)
        # its QEMU runs in that host's network namespace
        ns = os.stat("/run/netns/" + self.net.hosts[i]).st_ino
        self.assertEqual(os.stat("/proc/%d/ns/net" % lv.qemu_pid(dom)).st_ino, ns)
        # and the image lock is that host's alone
        host, gone = ("hostA", "hostB") if i == 0 else ("hostB", "hostA")
        disk = self.outside(i, "guest.qcow2")
        harness.wait_for(lambda: host in locked_by(disk) and gone not in locked_by(disk),
                         LEASE, "the lock on the image to be %s's alone (it is: %r)"
                         % (host, locked_by(disk)))

    def states(self, dom):
        """`virsh domstate --reason` on each host, for messages."""
        return "; ".join("%s: %s" % (lv.name, (lv.virsh("domstate", "--reason", dom, check=False)
                                               .stdout.strip() or "no such domain"))
                         for lv in self.lv)

    def forget(self, dom, vol):
        """Destroy and undefine dom wherever it is, delete its volume
        (cleanup: nothing is left for the other tests' pool listings)."""
        for lv in self.lv:
            if lv.domstate(dom) is not None:
                lv.virsh("destroy", dom, check=False)
                lv.virsh("undefine", dom, check=False)
        self.lv[0].virsh("vol-delete", vol, "--pool", POOL, check=False)

    def join_console(self, i, virsh=None, timeout=120):
        """The writer domain's console on host i; virsh: a running virsh
        whose failure means the console will not come."""
        path = self.lv[i].host_path(CONSOLE)
        if virsh:
            harness.wait_for(lambda: os.path.exists(path) or virsh.poll() is not None,
                             timeout, "%s's console socket %s" % (self.lv[i].name, path))
            if not os.path.exists(path):
                out, err = virsh.communicate()
                raise AssertionError("virsh failed (%d) before %s's console came: %s%s\n%s"
                                     % (virsh.returncode, self.lv[i].name, out, err,
                                        self.lv[i].qemu_log("writer")))
        con = guest.Console(path, timeout)
        self.addCleanup(con.close)
        return con

    def assert_no_trouble(self, con, t0, what):
        bad = [line for _, line in con.since(t0) if line.startswith(TROUBLE)]
        self.assertEqual(bad, [], "the writer reported trouble %s" % what)

    def start_writer(self):
        """The test guest as domain `writer` on host A, its data disk a
        qcow2 volume in the pool, started paused, its console joined, then
        run and writing: (console, seconds from virsh start to writing)."""
        try:
            kernel, initrd = guest.files()
        except guest.Unavailable as e:
            self.skipTest(str(e))
        # the same paths on both hosts (the destination's QEMU loads them too)
        for lv in self.lv:
            os.makedirs(lv.host_path(BOOT), exist_ok=True)
            shutil.copy(kernel, lv.host_path(BOOT + "/vmlinuz"))
            shutil.copy(initrd, lv.host_path(BOOT + "/initrd.gz"))
        a = self.lv[0]
        a.virsh("vol-create-as", POOL, "writer.qcow2", "32M", "--format", "qcow2")
        self.addCleanup(self.forget, "writer", "writer.qcow2")
        xml = os.path.join(harness.tmpdir(), "writer.xml")
        with open(xml, "w") as f:
            f.write(libvirt.domain_xml(
                "writer", POOL_DIR + "/writer.qcow2", kernel=BOOT + "/vmlinuz",
                initrd=BOOT + "/initrd.gz", cmdline="console=ttyS0 quiet panic=-1",
                serial=CONSOLE, disk_io="native", error_policy="stop"))
        a.virsh("define", xml)
        # started paused and its console joined first: nothing printed is lost
        t = time.monotonic()
        a.virsh("start", "--paused", "writer")
        con = self.join_console(0)
        a.virsh("resume", "writer")
        con.boot(SEED)
        return con, time.monotonic() - t


class Libvirt(LibvirtHosts):
    def test_volumes(self):
        a, b = self.lv
        a.virsh("vol-create-as", POOL, "disk.qcow2", "64M", "--format", "qcow2")
        # a pattern 32 MiB in, to see it in the clone
        self.qemu_io(self.outside(0, "disk.qcow2"), "write -P 0x5a 32M 1M")
        a.virsh("vol-clone", "disk.qcow2", "clone.qcow2", "--pool", POOL)

        # B's pool is the same directory: it lists what A made
        took = self.wait_volumes(b, ["disk.qcow2", "clone.qcow2"])
        print("B's pool lists A's volumes after %.1fs" % took)
        info = b.virsh("vol-info", "clone.qcow2", "--pool", POOL, "--bytes").stdout
        self.assertRegex(info, r"Capacity:\s+%d bytes" % (64 * MiB))

        # the clone is a qcow2 of 64 MiB holding the pattern, and only the
        # clusters written take space: not a full copy of the virtual disk
        clone = self.outside(1, "clone.qcow2")
        r = subprocess.run([qemu.QEMU_IMG, "info", "--output=json", clone],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        meta = json.loads(r.stdout)
        self.assertEqual((meta["format"], meta["virtual-size"]), ("qcow2", 64 * MiB))
        self.qemu_io(clone, "read -P 0x5a 32M 1M", "read -P 0 0 32M")
        st = os.stat(clone)
        du = subprocess.run(["du", "-k", clone], capture_output=True, text=True,
                            check=True).stdout.split()[0]
        print("clone: apparent size %d bytes, %d KiB allocated (du -k: %s)"
              % (st.st_size, st.st_blocks // 2, du))
        self.assertLess(st.st_blocks * 512, 4 * MiB, "the clone is not sparse")
        self.assertGreater(st.st_blocks * 512, MiB, "st_blocks does not count the data")
        self.assertEqual(int(du), st.st_blocks // 2)

        # a raw volume: the clone is a 64 MiB file with holes where the
        # source has them (libvirt copies it itself, skipping zeroes)
        a.virsh("vol-create-as", POOL, "disk.raw", "64M", "--allocation", "0",
                "--format", "raw")
        with open(self.outside(0, "disk.raw"), "r+b") as f:
            f.seek(32 * MiB)
            f.write(b"\x5a" * MiB)
        a.virsh("vol-clone", "disk.raw", "clone.raw", "--pool", POOL)
        src, clone = self.outside(0, "disk.raw"), self.outside(1, "clone.raw")
        st = os.stat(clone)
        print("raw clone: apparent size %d bytes, %d KiB allocated (source: %d KiB)"
              % (st.st_size, st.st_blocks // 2, os.stat(src).st_blocks // 2))
        self.assertEqual(st.st_size, 64 * MiB)
        self.assertLess(st.st_blocks * 512, 4 * MiB, "the raw clone is not sparse")
        r = subprocess.run(["cmp", src, clone], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # deleted on B, gone from A's pool
        names = ["clone.qcow2", "disk.qcow2", "clone.raw", "disk.raw"]
        self.wait_volumes(b, names)
        for name in names:
            b.virsh("vol-delete", name, "--pool", POOL)
        self.wait_volumes(a, [])

    # -- 3, 4 and 5: a domain, its lock, migration ----------------------------

    def test_domain_lock_and_migration(self):
        a, b = self.lv
        work = harness.tmpdir()
        a.virsh("vol-create-as", POOL, "guest.qcow2", "64M", "--format", "qcow2")
        disk = POOL_DIR + "/guest.qcow2"

        # 3. defined and started on A
        xml = os.path.join(work, "vm.xml")
        with open(xml, "w") as f:
            f.write(libvirt.domain_xml("vm", disk, disk_io="native"))
        a.virsh("define", xml)
        a.virsh("start", "vm")
        self.assert_runs_on(0, "vm", None)

        # 4. the same disk in a domain on B: refused by A's lock
        intruder = os.path.join(work, "intruder.xml")
        with open(intruder, "w") as f:
            f.write(libvirt.domain_xml("intruder", disk))
        b.virsh("define", intruder)
        r = b.virsh("start", "intruder", check=False)
        print("starting the disk on B as well: virsh says:\n  " + r.stderr.strip())
        self.assertNotEqual(r.returncode, 0, "B started a domain on A's disk")
        self.assertIn('Failed to get "write" lock', r.stderr)
        self.assertEqual(b.domstate("intruder"), "shut off")
        b.virsh("undefine", "intruder")
        self.assertEqual(a.domstate("vm"), "running")

        # 5. libvirt 9.0 does not know vfsd is shared storage
        r = a.virsh("migrate", "--live", "vm", b.uri, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Migration without shared storage is unsafe", r.stderr)
        self.assertEqual(a.domstate("vm"), "running")

        # ... and with --unsafe, there and back
        self.migrate(0, 1, "vm")
        self.assert_runs_on(1, "vm", "shut off")
        self.migrate(1, 0, "vm")
        self.assert_runs_on(0, "vm", None)

        a.virsh("destroy", "vm")
        self.assertEqual(a.domstate("vm"), "shut off")
        r = subprocess.run([qemu.QEMU_IMG, "check", self.outside(1, "guest.qcow2")],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        a.virsh("undefine", "vm")
        a.virsh("vol-delete", "guest.qcow2", "--pool", POOL)


    # -- 6: a booted guest writing through migrations --------------------------

    def test_guest_writes_through_migrations(self):
        # QEMU under TCG may lose some of the guest's memory in a
        # migration (guest.GuestMemoryLost, guest.GuestKernelCrashed): the
        # whole scenario once more then
        guest.once_more_on_hypervisor_fault(self, self.writes_through_migrations_once)

    def writes_through_migrations_once(self):
        con, took = self.start_writer()
        print("\nthe writer runs on A %.1fs after virsh start" % took)
        t_start = time.monotonic()
        time.sleep(3)

        here = 0
        for n in range(1, GUEST_MIGRATIONS + 1):
            there = 1 - here
            src, dst = self.lv[here], self.lv[there]
            con.stats()     # resets the writer's maxima
            writes = int(guest.kv(con.wait("HB", 10, con.mark()))["writes"])
            port = port_in(self.net.hosts[there])
            t0 = time.monotonic()
            virsh = subprocess.Popen(
                src.virsh_cmd("migrate", "--live", "--unsafe", "writer", dst.uri,
                              "--migrateuri", "tcp://%s:%d" % (self.net.host_addr(there), port)),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
            try:
                # the destination's QEMU listens from the start of the migration
                new = self.join_console(there, virsh)
                out, err = virsh.communicate(timeout=300)
            finally:
                if virsh.poll() is None:
                    virsh.kill()
                    virsh.wait()
            took = time.monotonic() - t0
            self.assertEqual(virsh.returncode, 0, "virsh migrate %s -> %s: %s%s\n%s"
                             % (src.name, dst.name, out, err, dst.qemu_log("writer")))
            # running on exactly one host
            self.assertEqual(dst.domstate("writer"), "running", self.states("writer"))
            self.assertIn(src.domstate("writer"), ("shut off", None), self.states("writer"))
            # the writer goes on there
            mark = new.mark()
            line = new.wait("HB", 60, mark, what="heartbeats on %s after migration %d"
                            % (dst.name, n))
            time.sleep(1.5)
            t1 = time.monotonic()
            st = new.stats()
            gap = guest.longest_gap([con, new], t0, t1)
            self.assertGreater(int(guest.kv(line)["writes"]), writes,
                               "the writer wrote nothing across migration %d" % n)
            self.assert_no_trouble(con, t0, "on %s during migration %d" % (src.name, n))
            self.assert_no_trouble(new, t0, "on %s after migration %d" % (dst.name, n))
            self.assertEqual(int(st["write_errors"]) + int(st["flush_errors"]), 0, st)
            print("migration %d %s -> %s: virsh migrate %.1fs, longest heartbeat gap %.0f ms, "
                  "guest's longest write %s ms, flush %s ms"
                  % (n, src.name, dst.name, took, 1000 * gap, st["max_write_ms"],
                     st["max_flush_ms"]))
            con.close()
            con, here = new, there
        print("%d live migrations under libvirt while the guest wrote (%s)"
              % (GUEST_MIGRATIONS, libvirt.domain_type()))

        # every block written at least once, then read back
        try:
            con.wait_pass(2, 240, "the libvirt domain")
        except TimeoutError as e:
            raise AssertionError("%s; domain: %s; last lines:\n%s"
                                 % (e, self.states("writer"), con.text()[-1500:]))
        v = con.verify()
        guest.check_verdict(v, "at the end")
        self.assertEqual(int(v["unwritten"]), 0, "the writer did not cover the disk: " + v["line"])
        self.assert_no_trouble(con, t_start, "at the end")
        print("guest verdict: %s (%.0fs of writing)" % (v["line"], time.monotonic() - t_start))

        lv = self.lv[here]
        lv.virsh("destroy", "writer")
        con.close()
        r = subprocess.run([qemu.QEMU_IMG, "check", self.outside(0, "writer.qcow2")],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("No errors were found", r.stdout)


class LibvirtFaults(LibvirtHosts):
    def test_destination_vfsd_dies_during_migration(self):
        """B's vfsd is killed while libvirt migrates the writing guest
        A -> B: `virsh migrate` fails, the domain runs on A again (libvirt
        resumes the source when the destination cannot start), and the
        guest's data is whole."""
        con, _ = self.start_writer()
        time.sleep(3)
        src, dst = self.lv
        # a slow memory copy, to act in the middle of it
        src.virsh("migrate-setspeed", "writer", "2")
        port = port_in(self.net.hosts[1])
        virsh = subprocess.Popen(
            src.virsh_cmd("migrate", "--live", "--unsafe", "writer", dst.uri,
                          "--migrateuri", "tcp://%s:%d" % (self.net.host_addr(1), port)),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        try:
            harness.wait_for(lambda: dst.domstate("writer") is not None or
                             virsh.poll() is not None, 60,
                             "the incoming domain on B")
            time.sleep(1)
            self.assertIsNone(virsh.poll(), "the migration ended before the fault")
            self.vfsd[1].kill(signal.SIGKILL)
            self.vfsd[1].proc.wait()
            src.virsh("migrate-setspeed", "writer", "8796093022207")
            out, err = virsh.communicate(timeout=300)
        finally:
            if virsh.poll() is None:
                virsh.kill()
                virsh.wait()
        print("\nvirsh migrate exited %d: %s" % (virsh.returncode, err.strip()))
        self.assertNotEqual(virsh.returncode, 0, "the migration to a host without its "
                            "storage succeeded: " + self.states("writer"))
        harness.wait_for(lambda: src.domstate("writer") == "running", 60,
                         "the domain to run on A again (%s)" % self.states("writer"))
        self.assertNotEqual(dst.domstate("writer"), "running", self.states("writer"))
        mark = con.mark()
        line = con.wait("HB", 60, mark, what="heartbeats on A after the failed migration")
        time.sleep(2)
        st = con.stats()
        self.assertEqual(int(st["write_errors"]) + int(st["flush_errors"]), 0, st)
        con.wait_pass(2, 240, "the libvirt domain")
        v = con.verify()
        self.assertTrue(v["ok"], "verification errors: %s\n%s" % (v["line"], "\n".join(v["bad"])))
        print("domain state %s; guest verdict: %s (last heartbeat before it: %s)"
              % (self.states("writer"), v["line"], line))
        src.virsh("destroy", "writer")
        con.close()
        r = subprocess.run([qemu.QEMU_IMG, "check", self.outside(0, "writer.qcow2")],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    harness.main()
