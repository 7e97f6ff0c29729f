# SPDX-License-Identifier: GPL-2.0-or-later
"""A booted guest writing through live migrations between two hosts with
networks of their own (suite 'guests').

Each "host" is a network namespace with its own vfsd (own --host-id) and
its own QEMU; the storage server (nfs-ganesha or sshd) lives in a third
namespace; migration streams go over TCP between the hosts' addresses.
The guest (tests/guest/) boots a Debian kernel whose init runs a
verifying writer on its virtio data disk, a qcow2 image on the vfsd
mount with cache=none: tagged 4 KiB blocks written all over the disk
with O_DIRECT, a flush every 64 writes, and the generation of every
acknowledged write kept in guest memory, which migrates with the guest.

The torture runs MIGRATIONS live migrations A->B->A... (default 6,
VFSD_GUEST_MIGRATIONS to change) while the writer runs, then has the
guest read back every block (zero verification errors allowed) and runs
`qemu-img check`; the delayed variants run VFSD_GUEST_DELAYED_MIGRATIONS
(default 3) on a disk of 8 MiB instead of 32.  It prints per migration
QEMU's downtime and total time, the longest gap between the writer's
heartbeats as the host saw them (the stall a user of the guest would see)
and the guest's own longest write and flush latency.  The delayed
variants put 2 ms +- 1 ms each way between the hosts and the storage: tc
netem where the kernel has it, else a relay in the server namespace
(netlab.DelayRelay), and say which.

The fault tests: the destination's vfsd is killed during a migration
(the migration does not leave the guest running on a host without its
storage; the guest goes on writing on the source with nothing lost); the
source is cut off from the storage during a migration (the guest's writes
pause, werror=stop, and after the link heals and the guest goes on,
nothing acknowledged is lost or torn)."""
import contextlib
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guest  # noqa: E402
import harness  # noqa: E402
import qemu  # noqa: E402
from harness import tmpdir  # noqa: E402
from netlab import Net, NsVfsd, DelayRelay, RELAY_ADDR, netns_unavailable  # noqa: E402

LEASE = 12
TIMEOUT = LEASE // 3
MIGRATIONS = int(os.environ.get("VFSD_GUEST_MIGRATIONS", "6"))
# with storage latency each migration and each pass over the disk take
# longer: fewer of them keep the suite's time (the count is printed)
DELAYED_MIGRATIONS = int(os.environ.get("VFSD_GUEST_DELAYED_MIGRATIONS", "3"))
SEED = int(os.environ.get("VFSD_GUEST_SEED", "14"))
DISK = "32M"
# a smaller disk for the delayed variants: each of the writer's passes over
# it (the test waits for a whole one) goes at the delayed storage's pace
DELAYED_DISK = "8M"
PORT = 4444


class Cluster:
    """Two hosts (A = 0, B = 1), a storage server, a vfsd per host on one
    shared mount /vm, and a fresh qcow2 image on it."""

    def __init__(self, tc, backend, delay=False, lease=LEASE, timeout=TIMEOUT, disk=DISK):
        try:
            guest.files()
        except guest.Unavailable as e:
            tc.skipTest(str(e))
        why = netns_unavailable()
        if why:
            tc.skipTest(why)
        self.tc = tc
        self.net = Net(2).setup()
        tc.addCleanup(self.net.teardown)
        self.delay_how = None
        env = None
        if backend == "nfs3":
            import ganesha
            why = ganesha.available()
            if why:
                tc.skipTest(why)
            g = ganesha.Ganesha(addr=self.net.server_addr, netns=self.net.srv).start()
            tc.addCleanup(g.stop)
            url = g.url(version=3, timeout=timeout)
            ports = (g.nfs_port, g.mnt_port)
            self.server_dir = g.export
        else:
            import sshd
            if not os.path.exists(sshd.SSHD):
                tc.skipTest("openssh-server is not installed (scripts/deps.sh --test)")
            s = sshd.Sshd(addr=self.net.server_addr, netns=self.net.srv).start()
            tc.addCleanup(s.stop)
            self.server_dir = tmpdir()
            env = dict(os.environ, HOME=s.dir)
            env.pop("SSH_AUTH_SOCK", None)
            ports = (s.port,)
            if delay:
                # the relay's address must be known as the server's too
                line = s.host_key_line()
                with open(s.known_hosts, "a") as f:
                    f.write(line.replace("[%s]" % s.addr, "[%s]" % RELAY_ADDR))
            url = s.url(self.server_dir, timeout=timeout)
        if delay:
            self.delay_how = self.slow_storage(ports)
            url = url.replace(self.net.server_addr, RELAY_ADDR, 1)
        cfg = "[vfsd]\nlock_lease = %d\n[mount /vm]\nurl = %s\n" % (lease, url)
        self.vfsd = []
        for i, name in enumerate(("hostA", "hostB")):
            debug = ["--log-level", "debug"] if os.environ.get("VFSD_GUEST_DEBUG") else []
            v = NsVfsd(self.net.hosts[i], config_text=cfg, args=["--host-id", name] + debug,
                       env=env).start()
            tc.addCleanup(v.stop)
            self.vfsd.append(v)
        self.work = tmpdir()
        self.image = [v.path("vm", "guest.qcow2") for v in self.vfsd]
        r = subprocess.run([qemu.QEMU_IMG, "create", "-f", "qcow2", self.image[0], disk],
                           capture_output=True, text=True, timeout=120)
        tc.assertEqual(r.returncode, 0, r.stderr)
        self.count = 0

    def slow_storage(self, ports):
        """2 ms +- 1 ms each way between every host and the storage."""
        if self.net.netem():
            for i in range(2):
                for ns, dev in ((self.net.hosts[i], "eth0"), (self.net.srv, "p%d" % i)):
                    subprocess.run(["tc", "-n", ns, "qdisc", "replace", "dev", dev, "root",
                                    "netem", "delay", "2ms", "1ms"], check=True,
                                   capture_output=True)
            # netem on the veths delays host-to-host traffic as well; the
            # relay below would not, which is closer to the wish,
            # but netem is the real thing where it exists
            return "tc netem delay 2ms 1ms on every host's link (both ways)"
        # tc's own words for the report, asked in the server namespace
        # (a netem that did take there goes with the namespace)
        r = subprocess.run(["tc", "-n", self.net.srv, "qdisc", "add", "dev", "lo", "root",
                            "netem", "delay", "1ms"], capture_output=True, text=True)
        relay = DelayRelay(self.net, ports, delay_ms=2, jitter_ms=1, seed=SEED).start()
        self.tc.addCleanup(relay.stop)
        return ("this kernel has no netem (tc: %s): a userspace relay in the server "
                "namespace delays every chunk 2 ms +- 1 ms each way"
                % (r.stderr.strip() or "refused"))

    def guest(self, host, incoming=False, werror="stop"):
        self.count += 1
        name = "%s%d" % ("AB"[host], self.count)
        uri = "tcp:%s:%d" % (self.net.host_addr(host), PORT + self.count)
        g = guest.Guest(self.image[host], self.work, name, netns=self.net.hosts[host],
                        incoming=uri if incoming else None, werror=werror)
        self.tc.addCleanup(g.stop)
        g.uri = uri
        g.host = host
        return g.start()

    def diag(self):
        """Each vfsd's counters and the end of its log, for a failure."""
        out = []
        for v in self.vfsd:
            try:
                st = v.stats("/vm")
                out.append("%s: in_flight %s, errors %s, ops write %s fsync %s"
                           % (v.mnt, st.get("in_flight"), st.get("errors"),
                              st["ops"].get("write"), st["ops"].get("fsync")))
            except Exception as e:  # noqa: BLE001 - a report, best effort
                out.append("%s: no stats (%s)" % (v.mnt, e))
            out.append(v.log()[-1500:])
        return "\n".join(out)

    def check_image(self, leaks_ok=False):
        """qemu-img check: clean, or with leaked clusters only when a writer
        was cut off in the middle of an allocation (its refcount update
        landed, its L2 update was refused: space lost, no data harmed;
        exit status 3)."""
        r = subprocess.run([qemu.QEMU_IMG, "check", self.image[0]], capture_output=True,
                           text=True, timeout=300)
        if leaks_ok and r.returncode == 3:
            print("qemu-img check: " + r.stdout.strip().splitlines()[0], flush=True)
            return
        self.tc.assertEqual(r.returncode, 0, "qemu-img check: " + r.stdout + r.stderr)
        self.tc.assertIn("No errors were found", r.stdout)


def report(title, rows):
    lines = ["", title,
             "  #  from->to  downtime_ms  total_ms  stall_ms  guest_max_write_ms  "
             "guest_max_flush_ms  writes"]
    for i, m in enumerate(rows, 1):
        lines.append("%3d  %s->%s  %11d  %8d  %8.0f  %18.1f  %18.1f  %6d"
                     % (i, m["from"], m["to"], m["downtime_ms"], m["total_ms"], m["stall_ms"],
                        m["max_write_ms"], m["max_flush_ms"], m["writes"]))
    if rows:
        lines.append("  max  downtime %d ms, stall %.0f ms, guest write %.1f ms"
                     % (max(m["downtime_ms"] for m in rows), max(m["stall_ms"] for m in rows),
                        max(m["max_write_ms"] for m in rows)))
    print("\n".join(lines), flush=True)


class GuestVerifier(harness.TestCase):
    """The verifier must be able to fail: a guest on a raw image in a plain
    directory, paused while the test changes its disk beneath it."""

    BLOCK = 4096

    def raw_image(self, mib):
        """A work directory and a sparse raw image of `mib` MiB in it;
        the test skips where no guest can be built."""
        try:
            guest.files()
        except guest.Unavailable as e:
            self.skipTest(str(e))
        work = tmpdir()
        image = os.path.join(work, "disk.raw")
        with open(image, "wb") as f:
            f.truncate(mib << 20)
        return work, image

    def test_detects_lost_and_torn_writes(self):
        # the image is a local file: a guest that never takes a completion
        # (guest.GuestLostRequest) is no fault of the verifier's
        guest.once_more_on_hypervisor_fault(self, self.lost_and_torn_once)

    def lost_and_torn_once(self):
        work, image = self.raw_image(16)
        g = guest.Guest(image, work, "V", fmt="raw")
        self.addCleanup(g.stop)
        g.start().boot(SEED)
        blocks = int(guest.kv(g.console.wait("READY", 1))["blocks"])
        # a stream would overwrite the blocks the writer keeps a record of
        refused = g.command("stream 1", "ERR")
        self.assertIn("overwrite", refused)
        # one whole pass over the disk, so every block has a generation
        g.wait_pass(2, 120)
        paused = g.command("pause", "PAUSED")
        with open(image, "rb") as f:
            old = f.read(self.BLOCK)             # block 0 as it is now
        # block 0 opens every pass, and a pause completes every write
        # begun: it holds the generation of the last pass begun, which
        # on a fast host may already be past the one waited for
        gen0 = (int(guest.kv(paused)["writes"]) - 1) // blocks + 1
        g.command("start %d" % SEED, "STARTED")
        g.wait_pass(gen0 + 1, 120)
        g.command("pause", "PAUSED")
        g.qmp.cmd("stop")
        fd = os.open(image, os.O_WRONLY)
        try:
            os.pwrite(fd, old, 0)                            # a lost write
            os.pwrite(fd, b"\xff" * 512, 5 * self.BLOCK + 1024)  # a torn block
            os.fsync(fd)
        finally:
            os.close(fd)
        g.qmp.cmd("cont")
        v = g.verify()
        self.assertFalse(v["ok"], "the verifier missed a lost and a torn write: " + v["line"])
        # what the disk did is no fault of the guest's memory
        self.assertEqual(v["record"], "consistent", v["line"])
        self.assertEqual(int(v["bad"] and len(v["bad"])), 2, "\n".join(v["bad"]))
        self.assertIn("block=0 ", v["bad"][0])
        self.assertIn("found=ours", v["bad"][0])
        self.assertIn("block=5 ", v["bad"][1])
        self.assertIn("torn", v["bad"][1])


    def test_stream(self):
        """`stream` writes 1 MiB chunks in order over the disk, eight in
        flight, answers its rate, and leaves the writer refusing to start
        (its verify would take the chunks for foreign blocks)."""
        mib = 16
        work, image = self.raw_image(mib)
        g = guest.Guest(image, work, "S", fmt="raw")
        self.addCleanup(g.stop)
        g.start()
        g.console.wait("READY", 120, what="the writer to start")
        line = g.command("stream 2", ("STREAM", "ERR"), timeout=300)
        self.assertTrue(line.startswith("STREAM"), line)
        f = guest.kv(line)
        self.assertEqual(f["errors"], "0", f)
        self.assertEqual(f["threads"], "8", f)
        writes = int(f["writes"])
        self.assertGreater(writes, 0, f)
        self.assertEqual(int(f["bytes"]), writes << 20, f)
        self.assertGreater(float(f["mib_s"]), 0, f)
        # chunk by chunk from the start of the disk, wrapping around
        with open(image, "rb") as img:
            for c in range(min(writes, mib)):
                chunk = img.read(1 << 20)
                self.assertNotEqual(chunk.count(0), len(chunk),
                                    "chunk %d of %d written is zeros" % (c, writes))
        self.assertIn("overwrote", g.command("start %d" % SEED, "ERR"))
        self.assertIn("not started", g.command("verify", "ERR"))


class GuestMigration(harness.TestCase):
    def torture(self, backend, delay=False):
        """torture_once(); once more, from the start, when the guest's own
        memory lost its record of some writes (guest.GuestMemoryLost) or the
        hypervisor failed beneath it (guest.once_more_on_hypervisor_fault)."""
        guest.once_more_on_hypervisor_fault(
            self, lambda: self.torture_once(backend, delay))

    def torture_once(self, backend, delay=False):
        cl = Cluster(self, backend, delay=delay, disk=DELAYED_DISK if delay else DISK)
        if cl.delay_how:
            print("\nstorage delay: " + cl.delay_how, flush=True)
        g = cl.guest(0).boot(SEED)
        time.sleep(3)
        rows = []
        count = DELAYED_MIGRATIONS if delay else MIGRATIONS
        for n in range(count):
            dst = cl.guest(1 - g.host, incoming=True)
            m = guest.migrate(g, dst, dst.uri, diag=cl.diag)
            m["from"], m["to"] = g.name, dst.name
            rows.append(m)
            # werror=stop: an I/O error never reaches the guest, it pauses
            # the VM and QEMU says so with an event
            errs = [e["data"] for e in g.qmp.events + dst.qmp.events
                    if e["event"] == "BLOCK_IO_ERROR"]
            self.assertEqual(errs, [], "I/O errors around migration %d" % (n + 1))
            g.stop()
            g = dst
            if n + 1 == count // 2:
                # halfway: a loss in the early migrations could be
                # overwritten (and hidden) by later passes
                v = g.verify()
                guest.check_verdict(v, "after %d migrations" % (n + 1))
                print("after %d migrations: %s" % (n + 1, v["line"]), flush=True)
        report("%s%s: %d live migrations while the guest writes (%s)"
               % (backend, " with storage delay" if delay else "", len(rows), qemu.accel()),
               rows)
        g.wait_pass(2, 300)
        v = g.verify()
        guest.check_verdict(v, "at the end")
        self.assertGreater(int(v["writes"]), 0)
        self.assertEqual(int(v["unwritten"]), 0, "the writer did not cover the disk: " + v["line"])
        print("guest verdict: " + v["line"], flush=True)
        g.stop()
        cl.check_image()

    def test_nfs3(self):
        self.torture("nfs3")

    def test_sftp(self):
        self.torture("sftp")

    def test_nfs3_delayed(self):
        self.torture("nfs3", delay=True)

    def test_sftp_delayed(self):
        self.torture("sftp", delay=True)


class GuestMigrationFaults(harness.TestCase):
    @staticmethod
    def stays_running(g, seconds=2.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if g.state() != "running":
                return False
            time.sleep(0.2)
        return True

    def migrating(self, cl):
        """The writing guest on A in the middle of a slow migration to B
        (a memory copy long enough to act during it): (source,
        destination)."""
        g = cl.guest(0).boot(SEED)
        time.sleep(2)
        dst = cl.guest(1, incoming=True)
        g.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 2 << 20})
        g.qmp.cmd("migrate", uri=dst.uri)
        harness.wait_for(lambda: g.qmp.cmd("query-migrate").get("status") == "active", 30,
                         "the migration to start")
        return g, dst

    def test_destination_vfsd_killed(self):
        self.destination_vfsd_killed("nfs3")

    def test_destination_vfsd_killed_sftp(self):
        self.destination_vfsd_killed("sftp")

    def destination_vfsd_killed(self, backend):
        cl = Cluster(self, backend)
        g, dst = self.migrating(cl)
        time.sleep(1)
        cl.vfsd[1].kill(signal.SIGKILL)
        cl.vfsd[1].proc.wait()
        g.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
        info = guest.wait_migration(g)
        # Whatever QEMU's migration said, the destination must not run the
        # guest without its storage; a management (libvirt does this)
        # resumes the source when the destination cannot go on.
        time.sleep(2)
        dst_status = dst.state()
        print("\nmigration %s; destination %s" % (info.get("status"), dst_status), flush=True)
        self.assertNotEqual(dst_status, "running",
                            "the destination runs the guest without its vfsd:\n"
                            + dst.output())
        dst.stop()
        src_status = g.status()
        if src_status != "running":
            g.qmp.cmd("cont")
        harness.wait_for(lambda: g.status() == "running", 60, "the source to run again")
        since = g.console.mark()
        g.console.wait("HB", 60, since, what="the writer to go on on the source")
        time.sleep(3)
        v = g.verify()
        self.assertTrue(v["ok"], "verification errors: %s\n%s" % (v["line"], "\n".join(v["bad"])))
        st = g.stats()
        self.assertEqual(int(st["write_errors"]) + int(st["flush_errors"]), 0, st)
        print("source was %s; guest verdict: %s" % (src_status, v["line"]), flush=True)
        g.stop()
        cl.check_image()

    def test_source_cut_from_storage(self):
        self.source_cut_from_storage("nfs3")

    def test_source_cut_from_storage_sftp(self):
        self.source_cut_from_storage("sftp")

    def source_cut_from_storage(self, backend):
        # a short request timeout, so the guest's writes fail into
        # werror=stop within the cut, and a lease long enough that the
        # source keeps its lock through it (the lock's validity is 2/3 of
        # the lease from the last renewal sent)
        lease, timeout = 30, 2
        cl = Cluster(self, backend, lease=lease, timeout=timeout)
        g, dst = self.migrating(cl)
        cut = time.monotonic()
        cl.net.isolate(0, True)
        # the guest's writes stall, then fail into werror=stop within the
        # mount's timeout; the migration itself (host to host) goes on
        harness.wait_for(lambda: g.state() == "io-error", 4 * timeout,
                         "the guest to pause on its failed writes")
        paused = time.monotonic() - cut
        g.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
        info = guest.wait_migration(g)
        statuses = (g.state(), dst.state())
        print("\nguest paused %.1f s into the cut; migration %s after %.1f s; source %s, "
              "destination %s" % (paused, info.get("status"), time.monotonic() - cut,
                                  *statuses), flush=True)
        cl.net.isolate(0, False)
        healed = time.monotonic() - cut
        # within the validity left after a renewal just before the cut
        self.assertLess(healed, lease / 3, "the cut lasted too long for this test's lease")
        if info.get("status") == "completed":
            # the guest moved while paused on its failed writes: they are
            # retried on the destination, through the other host's vfsd
            g.stop()
            g = dst
        else:
            dst.stop()
        harness.wait_for(lambda: g.state() != "finish-migrate", 60, "the guest to settle")
        # what a management that resumes guests paused on I/O errors once
        # the storage is back does (oVirt's auto_resume): `cont` until the
        # guest stays running; vfsd answers EIO at once for a few seconds
        # after a mount went down (its reconnect backoff), and each EIO
        # pauses the guest again
        resumed, tries = time.monotonic() + 60, 0
        while g.state() != "running" or not self.stays_running(g):
            if time.monotonic() > resumed:
                errs = [e["data"]["reason"] for e in g.qmp.events
                        if e["event"] == "BLOCK_IO_ERROR"]
                raise AssertionError("the guest stays %s on %s after the link healed (%d "
                                     "resumes; I/O errors %s); vfsd:\n%s"
                                     % (g.state(), g.name, tries, errs[-3:],
                                        cl.vfsd[g.host].log()[-3000:]))
            if g.state() != "running":
                tries += 1
                g.qmp.cmd("cont")
                time.sleep(0.5)
        print("resumed %.1f s after the heal, after %d `cont`"
              % (time.monotonic() - cut - healed, tries), flush=True)
        since = g.console.mark()
        g.console.wait("HB", 120, since, what="the writer to go on")
        time.sleep(2)
        v = g.verify()
        print("healed after %.1f s; guest on %s; verdict: %s" % (healed, g.name, v["line"]),
              flush=True)
        self.assertTrue(v["ok"], "verification errors: %s\n%s" % (v["line"], "\n".join(v["bad"])))
        g.stop()
        cl.check_image()

    def test_source_cut_past_lease(self):
        self.source_cut_past_lease("nfs3")

    def test_source_cut_past_lease_sftp(self):
        self.source_cut_past_lease("sftp")

    def source_cut_past_lease(self, backend):
        """The source stays cut off from the storage during a migration for
        longer than its lease: the other host may take the image then, and
        not before; nothing the source's guest does after that (resumed
        when its link is back) lands on the disk."""
        cl = Cluster(self, backend)
        g, dst = self.migrating(cl)
        cut = time.monotonic()
        cl.net.isolate(0, True)
        harness.wait_for(lambda: g.state() == "io-error", 4 * TIMEOUT,
                         "the guest to pause on its failed writes")
        # A's last lease record, written before the cut: nobody may take
        # the image before the server's clock says it expired (the server
        # runs on this machine: its clock is ours)
        records = os.path.join(cl.server_dir, ".vfsd-locks", "guest.qcow2")
        last = max(os.stat(os.path.join(records, n)).st_mtime for n in os.listdir(records)
                   if n.startswith("hostA.") and n.endswith(".lease"))
        g.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
        info = guest.wait_migration(g)
        print("\nmigration %s; source %s" % (info.get("status"), g.state()), flush=True)
        self.assertNotEqual(info.get("status"), "completed",
                            "the migration completed although the source could not "
                            "flush its disk")
        dst.stop()
        # host B takes the image: refused while A's lease may be live
        # (its last renewal was at most LEASE/3 before the cut)
        work = tmpdir()
        for attempt in range(1000):
            vm = qemu.VM(cl.image[1], work, "B-taker%d" % attempt)
            try:
                vm.start()
                break
            except (RuntimeError, ConnectionError) as e:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    vm.proc.wait(timeout=10)
                why = vm.output()
                vm.stop()
                self.assertIn("lock", why, "B's QEMU failed for another reason: %s %s"
                              % (e, why))
                self.assertLess(time.monotonic() - cut, 3 * LEASE,
                                "B never got the image of the cut-off host")
                time.sleep(1)
        self.addCleanup(vm.stop)
        took, expired = time.monotonic() - cut, time.time() - last
        print("B took the image %.1f s into the cut, %.1f s after A's last lease record "
              "(lease %d s)" % (took, expired, LEASE), flush=True)
        self.assertGreaterEqual(took, LEASE - LEASE / 3,
                                "B was granted the image while A's lease could be live")
        self.assertGreater(expired, LEASE + 1,
                           "B was granted the image before A's last record expired")
        vm.qemu_io("write -P 0x5a 0 %s" % DISK)
        vm.qemu_io("flush")
        # A's link comes back; its guest is resumed again and again, as an
        # auto-resuming management would: every write it retries must fail
        cl.net.isolate(0, False)
        end = time.monotonic() + 3 * TIMEOUT
        resumes = 0
        while time.monotonic() < end:
            if g.state() != "running":
                with contextlib.suppress(RuntimeError):
                    g.qmp.cmd("cont")
                    resumes += 1
            time.sleep(0.5)
        errs = [e["data"]["reason"] for e in g.qmp.events if e["event"] == "BLOCK_IO_ERROR"]
        print("A resumed %d times after the heal; its guest is %s (last I/O error: %s)"
              % (resumes, g.state(), errs[-1] if errs else None), flush=True)
        self.assertGreater(resumes, 0)
        vm.qemu_io("read -P 0x5a 0 %s" % DISK)    # fails on any block A wrote
        g.stop()
        vm.stop()
        cl.check_image(leaks_ok=True)


if __name__ == "__main__":
    harness.main()
