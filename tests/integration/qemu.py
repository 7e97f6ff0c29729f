# SPDX-License-Identifier: GPL-2.0-or-later
"""QEMU for the image-store tests: a VM started with QMP on a UNIX socket,
driven through QMP, always stopped at the end."""
import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time

import harness

QEMU = shutil.which("qemu-system-x86_64")
QEMU_IMG = shutil.which("qemu-img")
QEMU_IO = shutil.which("qemu-io")


_accel = None
# a kernel's first console line under TCG comes within a second or two
KVM_PROBE_S = 20


def accel():
    """KVM when it runs a guest here, else TCG.  /dev/kvm may be there and
    run nothing: the KVM of a nested hypervisor (seen on CI's VMs) let
    QEMU 7.2 start and never ran the guest's first instruction (no console
    line in minutes), or QEMU aborted setting the CPU's MSRs.  So the first
    call boots the test guest's kernel under KVM and waits for its first
    console line; the answer is kept for the machine's boot in the guest
    cache, so that each test process does not probe again."""
    global _accel
    if _accel is None:
        _accel = _probe_accel()
    return _accel


def _probe_accel():
    if not QEMU or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    import guest  # here: guest imports this module
    try:
        kernel, initrd = guest.files()
    except guest.Unavailable:
        return "tcg"
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot = f.read().strip()
    memo = os.path.join(guest.CACHE, "accel-" + boot)
    with contextlib.suppress(OSError):
        with open(memo) as f:
            return f.read().strip()
    p = subprocess.Popen(
        [QEMU, "-machine", "q35,accel=kvm", "-m", "128", "-nodefaults",
         "-display", "none", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
         "-append", "console=ttyS0 panic=-1", "-serial", "stdio"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = b""
    deadline = time.monotonic() + KVM_PROBE_S
    try:
        while b"Linux version" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([p.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(p.stdout.fileno(), 4096)
                if not chunk:
                    break   # QEMU ended
                seen += chunk
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
    found = "kvm" if b"Linux version" in seen else "tcg"
    if found == "tcg":
        print("qemu: /dev/kvm ran no guest (no console line in %d s; %s): TCG"
              % (KVM_PROBE_S, seen[-200:].decode(errors="replace").strip() or "no output"),
              file=sys.stderr, flush=True)
    with contextlib.suppress(OSError):
        with open(memo + ".tmp", "w") as f:
            f.write(found)
        os.replace(memo + ".tmp", memo)
    return found


class QMP:
    def __init__(self, path, timeout=60):
        self.events = []    # asynchronous events seen so far, oldest first
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        harness.wait_for(lambda: os.path.exists(path), timeout, "QMP socket " + path)
        try:
            self.sock.connect(path)
            self.f = self.sock.makefile("rw")
            self._read()  # greeting
            self.cmd("qmp_capabilities")
        except (OSError, ConnectionError):
            self.close()
            raise

    def _read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise ConnectionError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg
            self.events.append(msg)

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        reply = self._read()
        if "error" in reply:
            raise RuntimeError("QMP %s: %s" % (name, reply["error"]))
        return reply["return"]

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def close(self):
        with contextlib.suppress(OSError, AttributeError):
            self.f.close()
        with contextlib.suppress(OSError):
            self.sock.close()


class VM:
    """qemu-system-x86_64 with one virtio disk `drive0` on `image`."""

    def __init__(self, image, workdir, name, incoming=None, fmt="qcow2"):
        self.name = name
        self.qmp_path = os.path.join(workdir, name + ".qmp")
        self.log_path = os.path.join(workdir, name + ".log")
        self.cmd = [
            QEMU, "-name", name, "-machine", "q35,accel=" + accel(), "-m", "128",
            "-nodefaults", "-display", "none", "-serial", "none",
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
            "-drive", "file=%s,format=%s,if=none,id=drive0,cache=none,aio=threads"
            % (image, fmt),
            "-device", "virtio-blk-pci,drive=drive0",
        ]
        if incoming:
            self.cmd += ["-incoming", incoming]
        self.proc = None
        self.qmp = None

    def start(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        harness._cleanups.append(self.stop)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("QEMU %s exited %d: %s"
                                   % (self.name, self.proc.returncode, self.output()))
            return all(os.path.exists(p) for p in self.sockets())
        harness.wait_for(up, 60, "QEMU %s to start" % self.name)

        def monitor():
            # bound but not yet listening (a loaded host) refuses too:
            # try again while QEMU lives
            try:
                self.qmp = QMP(self.qmp_path)
                return True
            except ConnectionRefusedError:
                return False
        try:
            harness.wait_for(lambda: monitor() or self.proc.poll() is not None, 60,
                             "QEMU %s's monitor" % self.name)
        except TimeoutError:
            pass
        if self.qmp is None:
            # the socket is made before the drives are opened: QEMU that
            # failed on its drive leaves it behind; say why it went
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            raise RuntimeError("QEMU %s's monitor refused the connection (exit status %s): %s"
                               % (self.name, self.proc.poll(), self.output()))
        self.started()
        return self

    def sockets(self):
        """The UNIX sockets QEMU makes that start() waits for."""
        return [self.qmp_path]

    def started(self):
        """Called once QMP is connected (subclasses join more here)."""

    def status(self):
        return self.qmp.cmd("query-status")["status"]

    def state(self):
        """status(), or 'exited' (with QEMU's last words) for a QEMU that
        is gone."""
        try:
            if self.proc.poll() is None:
                return self.status()
        except (OSError, ConnectionError):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        return "exited(%s): %s" % (self.proc.poll(), self.output().strip()[-600:])

    def output(self):
        with contextlib.suppress(OSError):
            with open(self.log_path, errors="backslashreplace") as f:
                return f.read()
        return ""

    def qemu_io(self, command):
        out = self.qmp.hmp('qemu-io drive0 "%s"' % command)
        if "failed" in out.lower() or "error" in out.lower():
            raise AssertionError("qemu-io %s: %s" % (command, out))
        return out

    def stop(self):
        if self.proc is None:
            return
        if self.qmp:
            with contextlib.suppress(Exception):
                self.qmp.cmd("quit")
            self.qmp.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.proc = None


def run_fails_to_lock(image, workdir, name):
    """Start a VM with `image` writable; True if QEMU refused for the lock."""
    vm = VM(image, workdir, name)
    proc = subprocess.run(vm.cmd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    if proc.returncode == 0:
        return False, proc.stderr
    return "lock" in proc.stderr, proc.stderr
