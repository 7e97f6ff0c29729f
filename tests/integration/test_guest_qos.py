# SPDX-License-Identifier: GPL-2.0-or-later
"""A write limit that follows a booted guest across a live migration
(issue 17; suite 'guests').

Two guests (tests/guest/: four threads writing 4 KiB O_DIRECT blocks all
over a 32 MiB qcow2 data disk, cache=none) run on host A of
test_guest_migration's Cluster, each on its own image on the shared NFSv3
or SFTP mount.  Their write rates are measured twice over each window:
from vfsd's own per-file counters (`vfsctl --json files`: the bytes QEMU
wrote to the image through that host's vfsd, qcow2 metadata included,
which is what a limit charges) and, independently of vfsd, from QEMU's
blockstats of the guest's disk (wr_bytes: what the guest wrote; a little
less, since it leaves out qcow2's own writes).  Both are printed, and the
limit is checked against both.

  1. both guests unlimited: each writes far above the limit to come;
  2. root sets user.vfsd.qos.bps_wr on one image through host A's mount
     while it runs (stored with the image: a sidecar .vfsd-qos/NAME beside
     it, as NFS and SFTP keep no extended attributes): over WINDOW
     seconds its rate is within the limit (+10%) and near it, while the
     neighbour goes on far above it;
  3. the limited guest migrates live to host B, whose vfsd nobody told
     anything: B's `vfsctl qos show` had no rule before, has the stored
     one once B's QEMU (waiting for the guest) opened the image; the
     limit is lowered through A's mount after that, before the guest
     moves, and B holds the guest to the lowered one (QEMU opens the
     image again when it takes the guest over, and vfsd reads the stored
     limits at each open);
  4. the limit is halved through B's mount: from one second after the
     change the rate is within the new one, and host A reads the new
     value from the image's store;
  5. the limit is cleared through B's mount: the guest speeds up again
     (the limit, not the guest's own pace, held it);
  6. both guests read back every block they wrote: zero verification
     errors; `qemu-img check` of both images is clean."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guest  # noqa: E402
import harness  # noqa: E402
import qemu  # noqa: E402
from harness import vfsctl  # noqa: E402
from test_guest_migration import Cluster, DISK, SEED  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20
# low enough for two guests under TCG on a loaded 2-core machine, which
# write 4-8 MiB/s each unlimited (printed: "unlimited")
LIMIT = int(os.environ.get("VFSD_GUEST_QOS_LIMIT", str(512 * KiB)))
WINDOW = float(os.environ.get("VFSD_GUEST_QOS_WINDOW", "6"))
SLACK = 1.10


class Meter:
    """Samples one guest's bytes written: vfsd's counters for its image on
    the host it runs on, and QEMU's blockstats of its disk."""

    def __init__(self, cl, g, name):
        self.cl, self.g, self.name = cl, g, name

    def sample(self):
        v = self.cl.vfsd[self.g.host]
        files = json.loads(vfsctl(v, "--json", "files", v.path("vm", self.name)).stdout)
        mine = [f for f in files if f["path"] == "/vm/" + self.name]
        vfsd_bytes = sum(f["write_bytes"] for f in mine)
        held = sum(f["held_ms"] for f in mine)
        limited = any(f["limited"] for f in mine)
        qemu_bytes = sum(b["stats"]["wr_bytes"] for b in self.g.qmp.cmd("query-blockstats")
                         if b.get("device") == "drive0")
        return {"t": time.monotonic(), "vfsd": vfsd_bytes, "qemu": qemu_bytes,
                "held_ms": held, "limited": limited, "open": len(mine)}


def rates(meters, seconds):
    """Each meter's write rates over `seconds` from now: a dict per meter
    with vfsd and qemu (bytes/s), held_ms (time vfsd held its requests
    back in the window) and limited (a limit applies to its open)."""
    first = [m.sample() for m in meters]
    time.sleep(seconds)
    out = []
    for m, a in zip(meters, first):
        b = m.sample()
        took = b["t"] - a["t"]
        out.append({"vfsd": (b["vfsd"] - a["vfsd"]) / took,
                    "qemu": (b["qemu"] - a["qemu"]) / took,
                    "held_ms": b["held_ms"] - a["held_ms"], "limited": b["limited"],
                    "seconds": took})
    return out


def rules_on(v):
    return json.loads(vfsctl(v, "--json", "qos", "show").stdout)


class GuestQos(harness.TestCase):
    def row(self, phase, host, who, r, limit):
        print("%-26s %s  %-10s %8.0f KiB/s %8.0f KiB/s %8s %7d ms over %.1f s"
              % (phase, host, who, r["vfsd"] / KiB, r["qemu"] / KiB,
                 "%d KiB/s" % (limit / KiB) if limit else "-", r["held_ms"], r["seconds"]),
              flush=True)

    def assert_within(self, what, r, limit):
        for src in ("vfsd", "qemu"):
            self.assertLessEqual(r[src], SLACK * limit,
                                 "%s: %s measures %.0f B/s against a limit of %d"
                                 % (what, src, r[src], limit))
        # held to the limit, not idle: near it, and held back by vfsd
        self.assertGreater(r["vfsd"], 0.7 * limit, what + ": far below its limit")
        self.assertTrue(r["limited"], what + ": vfsd applies no limit to it")
        self.assertGreater(r["held_ms"], 0, what + ": vfsd never held it back")

    def scenario(self, backend):
        """scenario_once(); once more from the start when the guest's memory
        lost its record (guest.GuestMemoryLost) or the
        hypervisor failed beneath it (guest.once_more_on_hypervisor_fault)."""
        guest.once_more_on_hypervisor_fault(
            self, lambda: self.scenario_once(backend))

    def scenario_once(self, backend):
        cl = Cluster(self, backend)
        a, b = cl.vfsd
        name, other = "guest.qcow2", "other.qcow2"
        img_a, img_b = a.path("vm", name), b.path("vm", name)
        r = subprocess.run([qemu.QEMU_IMG, "create", "-f", "qcow2", a.path("vm", other), DISK],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        g = cl.guest(0).boot(SEED)
        n = guest.Guest(a.path("vm", other), cl.work, "N", netns=cl.net.hosts[0])
        self.addCleanup(n.stop)
        n.host = 0
        n.start().boot(SEED + 1)
        lim, neigh = Meter(cl, g, name), Meter(cl, n, other)
        print("\n%s, %s; limit %d KiB/s\n%-26s %-13s %14s %14s %8s %s"
              % (backend, qemu.accel(), LIMIT // KiB, "phase", "host guest", "vfsd counters",
                 "QEMU stats", "limit", "held back by vfsd"), flush=True)

        # 1. unlimited (the first pass over each disk allocates its
        # clusters: let it end)
        g.wait_pass(2, 120)
        n.wait_pass(2, 120)
        free = rates([lim, neigh], WINDOW / 2)
        self.row("unlimited", "A", "guest", free[0], None)
        self.row("unlimited", "A", "neighbour", free[1], None)
        for r in free:
            self.assertGreater(r["vfsd"], 2 * LIMIT,
                               "the guests write too slowly on this machine to show a "
                               "limit of %d B/s (VFSD_GUEST_QOS_LIMIT)" % LIMIT)
        self.assertEqual(rules_on(b), [], "host B has rules before anyone set one")

        # 2. a limit on one image, set through A's mount while it runs
        os.setxattr(img_a, "user.vfsd.qos.bps_wr", b"%d" % LIMIT)
        time.sleep(1)
        held = rates([lim, neigh], WINDOW)
        self.row("limited on A", "A", "guest", held[0], LIMIT)
        self.row("limited on A", "A", "neighbour", held[1], None)
        self.assert_within("the limited guest on A", held[0], LIMIT)
        self.assertFalse(held[1]["limited"], "the neighbour's image has a limit")
        self.assertGreater(held[1]["vfsd"], 2 * LIMIT, "the neighbour is held to the limit")
        self.assertGreater(held[1]["qemu"], 2 * LIMIT, "the neighbour is held to the limit")
        # stored beside the image, not in B's memory
        self.assertEqual(rules_on(b), [], "host B has rules before the guest came")

        # 3. live migration to B; nobody sets anything on B.  B's QEMU
        # opens the image when it starts, waiting for the guest: B reads
        # the stored limit then; A lowers it after that
        dst = cl.guest(1, incoming=True)
        harness.wait_for(lambda: [r["limits"] for r in rules_on(b)] == [{"bps_wr": LIMIT}], 10,
                         "host B to read the stored limit at its QEMU's open")
        moved = LIMIT * 3 // 4
        os.setxattr(img_a, "user.vfsd.qos.bps_wr", b"%d" % moved)
        m = guest.migrate(g, dst, dst.uri, diag=cl.diag)
        errs = [e["data"] for e in g.qmp.events + dst.qmp.events
                if e["event"] == "BLOCK_IO_ERROR"]
        self.assertEqual(errs, [], "I/O errors around the migration")
        print("migrated A->B: downtime %d ms, total %d ms, longest heartbeat gap %.0f ms"
              % (m["downtime_ms"], m["total_ms"], m["stall_ms"]), flush=True)
        g.stop()
        g = dst
        lim = Meter(cl, g, name)
        shown = [r for r in rules_on(b) if r["path"] == "/vm/" + name]
        print("host B's rule: %s" % vfsctl(b, "qos", "show").stdout.strip(), flush=True)
        self.assertEqual(len(shown), 1, "host B shows no rule for the image")
        self.assertEqual(shown[0]["origin"], "xattr")
        self.assertEqual(shown[0]["limits"], {"bps_wr": moved},
                         "host B holds the guest to the limit it read before A lowered it")
        self.assertGreaterEqual(shown[0]["open_files"], 1)
        on_b = rates([lim, neigh], WINDOW)
        self.row("after migration", "B", "guest", on_b[0], moved)
        self.row("after migration", "A", "neighbour", on_b[1], None)
        self.assert_within("the migrated guest on B", on_b[0], moved)
        self.assertGreater(on_b[1]["vfsd"], 2 * LIMIT, "the neighbour is held to the limit")

        # 4. the limit halved through B's mount: from a second on
        lower = moved // 2
        os.setxattr(img_b, "user.vfsd.qos.bps_wr", b"%d" % lower)
        time.sleep(1)
        changed = rates([lim], WINDOW / 2)[0]
        self.row("halved on B", "B", "guest", changed, lower)
        self.assert_within("the guest on B after the change", changed, lower)
        shown = [r for r in rules_on(b) if r["path"] == "/vm/" + name]
        self.assertEqual(shown[0]["limits"], {"bps_wr": lower})
        # stored with the image again: host A reads B's change
        harness.wait_for(lambda: os.getxattr(img_a, "user.vfsd.qos.bps_wr") == b"%d" % lower,
                         5, "host A to read the limit changed on B")

        # 5. cleared through B's mount: the guest goes faster again
        vfsctl(b, "qos", "clear", img_b)
        time.sleep(1)
        cleared = rates([lim], WINDOW / 2)[0]
        self.row("cleared on B", "B", "guest", cleared, None)
        self.assertFalse(cleared["limited"])
        self.assertGreater(cleared["vfsd"], 2 * LIMIT, "the guest stays slow without a limit")

        # 6. nothing lost, nothing torn
        for who, x in (("guest", g), ("neighbour", n)):
            v = x.verify()
            guest.check_verdict(v, "of the %s at the end" % who)
            self.assertEqual(int(v["write_errors"]), 0, v["line"])
            print("%s verdict: %s" % (who, v["line"]), flush=True)
        g.stop()
        n.stop()
        cl.check_image()
        r = subprocess.run([qemu.QEMU_IMG, "check", a.path("vm", other)], capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(r.returncode, 0, "qemu-img check: " + r.stdout + r.stderr)

    def test_nfs3(self):
        self.scenario("nfs3")

    def test_sftp(self):
        self.scenario("sftp")


if __name__ == "__main__":
    harness.main()
