# SPDX-License-Identifier: GPL-2.0-or-later
"""The image store's proof: two vfsd instances ("host A" and "host B") on one
shared backend; a VM whose disk lives on A's mount is live-migrated to a
QEMU on B; cross-host image locks keep a second writer out; a dead host's
locks expire with their lease, not before."""
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ganesha  # noqa: E402
import harness  # noqa: E402
import qemu  # noqa: E402
from harness import Vfsd, tmpdir  # noqa: E402

LEASE = 12
MiB = 1 << 20


def qemu_img(*args):
    return subprocess.run([qemu.QEMU_IMG] + list(args), capture_output=True, text=True,
                          timeout=300)


class MigrationBase:
    """Subclasses provide backend_url() and may override setUpClass."""

    def setUp(self):
        if not (qemu.QEMU and qemu.QEMU_IMG):
            self.skipTest("qemu-system-x86_64/qemu-img not installed "
                          "(scripts/deps.sh --test installs them)")
        super().setUp()
        url = self.backend_url()
        cfg = ("[vfsd]\nlock_lease = %d\n[mount /vm]\nurl = %s\n" % (LEASE, url))
        env = self.vfsd_env()
        self.a = Vfsd(config_text=cfg, args=["--host-id", "hostA"], env=env).start()
        self.addCleanup(self.a.stop)
        self.b = Vfsd(config_text=cfg, args=["--host-id", "hostB"], env=env).start()
        self.addCleanup(self.b.stop)
        self.work = tmpdir()
        self.name = "disk-%s.qcow2" % self._testMethodName
        self.img_a = self.a.path("vm", self.name)
        self.img_b = self.b.path("vm", self.name)
        r = qemu_img("create", "-f", "qcow2", self.img_a, "64M")
        self.assertEqual(r.returncode, 0, r.stderr)

    def vfsd_env(self):
        return None

    def vm(self, image, name, incoming=None):
        vm = qemu.VM(image, self.work, name, incoming=incoming)
        self.addCleanup(vm.stop)
        return vm.start()

    def test_live_migration(self):
        src = self.vm(self.img_a, "A")
        src.qemu_io("write -P 0xab 0 1M")
        # the image is in use on A: B may not open it for writing
        refused, why = qemu.run_fails_to_lock(self.img_b, self.work, "B-intruder")
        self.assertTrue(refused, "a second writer on host B was not refused: " + why)
        # hosts see each other's locks
        holders = os.getxattr(self.img_b, "user.vfsd.image.locked_by").decode()
        self.assertIn("hostA", holders)

        mig = os.path.join(self.work, "mig.sock")
        dst = self.vm(self.img_b, "B", incoming="unix:" + mig)
        src.qmp.cmd("migrate", uri="unix:" + mig)
        deadline = time.monotonic() + 240
        while True:
            st = src.qmp.cmd("query-migrate").get("status")
            if st == "completed":
                break
            self.assertNotIn(st, ("failed", "cancelled"), src.output())
            self.assertLess(time.monotonic(), deadline, "migration did not finish")
            time.sleep(0.2)
        harness.wait_for(lambda: dst.qmp.cmd("query-status")["status"] == "running", 60,
                         "the migrated VM to run on B")
        # B reads what A wrote, then writes its own
        dst.qemu_io("read -P 0xab 0 1M")
        dst.qemu_io("write -P 0xcd 1M 1M")
        dst.qemu_io("flush")
        src.stop()
        dst.stop()

        for mount in (self.img_a, self.img_b):
            r = qemu_img("check", mount)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("No errors were found", r.stdout)
            r = subprocess.run([qemu.QEMU_IO, "-r", "-f", "qcow2", "-c", "read -P 0xab 0 1M",
                                "-c", "read -P 0xcd 1M 1M", mount],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("failed", r.stdout.lower(), r.stdout)

    def test_dead_host_releases_after_lease(self):
        src = self.vm(self.img_a, "A")
        src.qemu_io("write -P 0x11 0 64k")
        self.a.kill(signal.SIGKILL)
        self.a.proc.wait()
        killed = time.monotonic()
        refused, why = qemu.run_fails_to_lock(self.img_b, self.work, "B-early")
        self.assertLess(time.monotonic() - killed, LEASE, "too slow to test 'before'")
        self.assertTrue(refused, "B took the image before A's lease ran out: " + why)
        time.sleep(LEASE + 2)
        vm = self.vm(self.img_b, "B-late")
        vm.qemu_io("read -P 0x11 0 64k")
        src.stop()


class SharedLocalMigration(MigrationBase, harness.TestCase):
    """A directory on shared storage (here: one directory both hosts see)."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tmpdir()

    def backend_url(self):
        return "file://%s?shared=yes" % self.dir


class Nfs3Migration(MigrationBase, ganesha.PerClass, harness.TestCase):
    """Both hosts reach one nfs-ganesha export over NFSv3."""

    def backend_url(self):
        return self.ganesha.url(version=3, timeout=4)


class SftpMigration(MigrationBase, harness.TestCase):
    """Both hosts reach one OpenSSH server (sshd on loopback)."""

    @classmethod
    def setUpClass(cls):
        from sshd import Sshd
        cls.sshd = Sshd().start()
        cls.remote = tmpdir()

    @classmethod
    def tearDownClass(cls):
        cls.sshd.stop()

    def vfsd_env(self):
        env = dict(os.environ, HOME=self.sshd.dir)
        env.pop("SSH_AUTH_SOCK", None)
        return env

    def backend_url(self):
        return self.sshd.url(self.remote, timeout=4)


if __name__ == "__main__":
    harness.main()
