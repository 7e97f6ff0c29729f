# SPDX-License-Identifier: GPL-2.0-or-later
"""The booted test guest: a Debian kernel with an initramfs whose init runs
a verifying writer on its virtio data disk (tests/guest/: writer.c says
what it writes and how it checks), under QEMU with QMP and its serial
console on UNIX sockets, optionally inside a test host's network
namespace.

    files()                     (kernel, initrd), built once and cached by
                                tests/guest/build-guest.py; raises
                                Unavailable with the reason
    g = Guest(image, workdir, "A", netns=..., incoming=...).start()
    g.console.wait("READY")     lines the guest printed, with host times
    g.command("start 7")        one console command
    g.verify()                  the writer's VERDICT line, parsed
    Console(path)               the same protocol on any guest's console
                                socket (a guest libvirt runs, say)
    migrate(src, dst, uri)      live migration, with downtime and stall

A guest started without `incoming` is started paused, its console joined,
then run, so nothing it prints is lost."""
import contextlib
import os
import re
import socket
import subprocess
import threading
import time

import harness
import qemu

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "..", "guest", "build-guest.py")
CACHE = os.environ.get("VFSD_GUEST_CACHE", "/var/cache/vfsd-test-guest")


class Unavailable(Exception):
    pass


_files = None


def files():
    global _files
    if _files is None:
        if not (qemu.QEMU and qemu.QEMU_IMG):
            raise Unavailable("qemu-system-x86_64/qemu-img not installed "
                              "(scripts/deps.sh --test installs them)")
        r = subprocess.run(["python3", BUILD, "--cache", CACHE], capture_output=True,
                           text=True, timeout=600)
        if r.returncode:
            raise Unavailable("the test guest could not be built: " + r.stderr.strip())
        kernel, initrd = r.stdout.split()
        _files = (kernel, initrd)
    return _files


def kv(line):
    """key=value pairs of one writer line as a dict of str."""
    return dict(re.findall(r"(\w+)=(\S+)", line))


# The guest kernel's own report of a crash: of its CPU state or memory,
# which only the hypervisor beneath holds (the kernel and its initramfs
# are loaded by QEMU from files outside vfsd; the disk on vfsd holds the
# writer's blocks only).  "Attempted to kill init" is left out: the writer
# is init, and its end is the test's business.
KERNEL_CRASH = re.compile(r"Kernel panic - not syncing: (?!Attempted to kill init)"
                          r"|BUG: unable to handle|BUG: kernel NULL pointer"
                          r"|general protection fault|invalid opcode: ")


# Seconds after which a writer command not taken is sent again
# (Console.command).
RESEND_AFTER = 30
# The commands that may be sent twice: the writer's second answer is
# harmless (randread and stream run long beside the heartbeats).
RESENDABLE = ("verify", "pause", "stats", "start")


class GuestKernelCrashed(AssertionError):
    """The guest's kernel crashed (its console says so): a fault of the
    hypervisor's CPU or memory, e.g. memory lost in a TCG migration."""


class Console:
    """The guest's serial console: a reader thread keeps every line with
    the host's monotonic time it arrived."""

    def __init__(self, path, timeout=60):
        def connected():
            # absent, or bound and not listening yet: try again
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                return False
            self.sock = sock
            return True
        harness.wait_for(connected, timeout, "console socket " + path, interval=0.05)
        self.lines = []         # (monotonic time, text)
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            *whole, buf = buf.split(b"\n")
            now = time.monotonic()
            with self.cond:
                for raw in whole:
                    self.lines.append((now, raw.decode("utf-8", "replace").strip("\r")))
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def send(self, text):
        self.sock.sendall(text.encode() + b"\n")

    def mark(self):
        with self.cond:
            return len(self.lines)

    def wait(self, prefix, timeout, since=0, what=None):
        """The first line from index `since` on that starts with prefix."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, line in self.lines[since:]:
                    if line.startswith(prefix):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    tail = "\n".join(line for _, line in self.lines[-15:])
                    msg = ("guest: no '%s' line (%s) within %ds; last lines:\n%s"
                           % (prefix, what or "console", timeout, tail))
                    raise (GuestKernelCrashed if self._crashed(since) else AssertionError)(msg)
                self.cond.wait(min(left, 1.0))

    def _crashed(self, since=0):
        """The first line from index `since` on in which the guest's kernel
        reports a crash of its own (KERNEL_CRASH), or None (cond held)."""
        return next((line for _, line in self.lines[since:] if KERNEL_CRASH.search(line)), None)

    def from_mark(self, mark):
        """The lines from index `mark` (of mark()) on."""
        with self.cond:
            return [line for _, line in self.lines[mark:]]

    def since(self, t0, prefix=""):
        with self.cond:
            return [(t, line) for t, line in self.lines if t >= t0 and line.startswith(prefix)]

    def text(self):
        with self.cond:
            return "\n".join(line for _, line in self.lines)

    # -- the writer's protocol (tests/guest/writer.c) -------------------------

    def command(self, text, reply, timeout=120):
        """Send one writer command; its answer line (starting with reply).
        A command of RESENDABLE the writer never took (its heartbeats go
        on RESEND_AFTER seconds later, where pause and verify stop them
        and start and stats answer at once) is sent once more: under TCG
        a line typed on the serial console was seen lost (the writer
        wrote on, gen 9 to 10, for the whole 300 s of a verify)."""
        since = self.mark()
        sent = time.monotonic()
        self.send(text)
        what = "answer to '%s'" % text
        if timeout <= RESEND_AFTER or text.split()[0] not in RESENDABLE:
            return self.wait(reply, timeout, since, what=what)
        try:
            return self.wait(reply, RESEND_AFTER, since, what=what)
        except GuestKernelCrashed:
            raise
        except AssertionError:
            if self.closed:
                raise
            if not self.since(sent + 5, "HB"):
                # taken: the writer works on it (a verify of the whole
                # disk under TCG may take longer), its heartbeats stopped
                return self.wait(reply, timeout - RESEND_AFTER, since, what=what)
        print("\nguest: '%s' not taken (the writer writes on): sent once more" % text,
              flush=True)
        self.send(text)
        return self.wait(reply, timeout - RESEND_AFTER, since, what=what)

    def boot(self, seed, timeout=120):
        """Wait for the writer to be ready, start it with `seed`."""
        self.wait("READY", timeout, what="the writer to start")
        self.command("start %d" % seed, "STARTED")

    def last_gen(self):
        """The generation in the writer's last heartbeat (0: none yet)."""
        for _, line in reversed(self.since(0, "HB")):
            return int(kv(line).get("gen", 0))
        return 0

    def wait_pass(self, gen, timeout, name="the guest"):
        """Wait for the writer to reach generation `gen` (gen 2 means every
        block has been written at least once)."""
        try:
            harness.wait_for(lambda: self.last_gen() >= gen, timeout,
                             "the writer of %s to reach generation %d" % (name, gen),
                             interval=0.5)
        except TimeoutError as e:
            with self.cond:
                tail = "\n".join(line for _, line in self.lines[-15:])
                crashed = self._crashed()
            raise (GuestKernelCrashed if crashed else AssertionError)(
                "%s; last lines:\n%s" % (e, tail)) from None

    def verify(self, timeout=300):
        """The VERDICT line's fields, with 'ok' True when the writer found
        every block as it last wrote it; the BAD lines before it in 'bad'."""
        since = self.mark()
        t0 = time.monotonic()
        line = self.command("verify", "VERDICT", timeout)
        print("\nguest: verify took %.1f s" % (time.monotonic() - t0), flush=True)
        fields = kv(line)
        fields["ok"] = line.split()[1] == "ok"
        fields["line"] = line
        fields["bad"] = [ln for ln in self.from_mark(since) if ln.startswith("BAD")]
        return fields

    def stats(self):
        return kv(self.command("stats", "STATS"))

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


class Guest(qemu.VM):
    """qemu-system-x86_64 booting the test guest with `image` (qcow2) as its
    data disk, cache=none.  werror/rerror: QEMU's policy on I/O errors
    ('stop' pauses the guest until `cont`, 'report' hands EIO to it).
    Its serial console is joined once QMP is up."""

    def __init__(self, image, workdir, name, netns=None, incoming=None, werror="stop",
                 fmt="qcow2", memory=128):
        kernel, initrd = files()
        self.name = name
        self.netns = netns
        self.incoming = incoming
        self.qmp_path = os.path.join(workdir, name + ".qmp")
        self.con_path = os.path.join(workdir, name + ".console")
        self.log_path = os.path.join(workdir, name + ".log")
        for p in (self.qmp_path, self.con_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        self.cmd = harness.netns_prefix(netns) + [
            qemu.QEMU, "-name", name, "-machine", "q35,accel=" + qemu.accel(),
            "-m", str(memory), "-nodefaults", "-display", "none", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd,
            "-append", "console=ttyS0 quiet panic=-1",
            "-chardev", "socket,id=con0,path=%s,server=on,wait=off" % self.con_path,
            "-serial", "chardev:con0",
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
            "-drive", "file=%s,format=%s,if=none,id=drive0,cache=none,aio=threads,"
            "werror=%s,rerror=%s" % (image, fmt, werror, werror),
            "-device", "virtio-blk-pci,drive=drive0",
        ]
        self.cmd += ["-incoming", incoming] if incoming else ["-S"]
        self.proc = None
        self.qmp = None
        self.console = None

    def sockets(self):
        return [self.qmp_path, self.con_path]

    def started(self):
        self.console = Console(self.con_path)
        if not self.incoming:
            self.qmp.cmd("cont")

    def command(self, text, reply, timeout=120):
        try:
            return self.console.command(text, reply, timeout)
        except OSError as e:
            # the console's socket closes when QEMU goes: say how it went
            raise self.gone("sending '%s' to the console: %s" % (text, e)) from None

    def gone(self, what):
        """GuestDied for a QEMU killed by a signal (a crash of the
        hypervisor, with its last words), else an AssertionError."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        rc = self.proc.poll()
        msg = "%s: QEMU %s %s; its output:\n%s" % (
            what, self.name, "still runs" if rc is None else "exited with status %s" % rc,
            self.output()[-2000:])
        return GuestDied(msg) if rc is not None and rc < 0 else AssertionError(msg)

    def boot(self, seed, timeout=120):
        self.console.boot(seed, timeout)
        return self

    def wait_pass(self, gen, timeout):
        """Console.wait_pass(); GuestLostRequest when the writer waits on a
        write QEMU has completed into the guest's used ring (lost_request)."""
        t0 = time.monotonic()
        try:
            self.console.wait_pass(gen, timeout, self.name)
        except AssertionError as e:
            msg = "%s\n%s" % (e, self.why_stalled())
            lost = lost_request(self, self, t0, completed_here=True)
            if lost:
                raise GuestLostRequest("%s\n%s" % (lost, msg)) from None
            raise AssertionError(msg) from None

    def why_stalled(self):
        """What QEMU and the writer say of a guest whose writer stopped:
        its run state (an I/O error under werror=stop pauses it), the
        block I/O errors QEMU reported, its block counters and the
        writer's oldest write in flight."""
        return "state %s; %s; virtio: %s" % (self.state(), io_report(self),
                                             queues_text(virtio_queues(self)))

    def verify(self, timeout=300):
        """Console.verify(); a failure says what QEMU and the writer say
        (why_stalled), and GuestLostRequest when the verifier waits on a
        read QEMU completed into the guest's used ring (lost_request)."""
        t0 = time.monotonic()
        try:
            return self.console.verify(timeout)
        except AssertionError as e:
            if isinstance(e, GuestKernelCrashed):
                raise
            msg = "%s\n%s" % (e, self.why_stalled())
            lost = lost_request(self, self, t0, completed_here=True)
            if lost:
                raise GuestLostRequest("%s\n%s" % (lost, msg)) from None
            raise AssertionError(msg) from None

    def stats(self):
        return kv(self.command("stats", "STATS"))

    def stop(self):
        super().stop()
        if self.console:
            self.console.close()


def io_report(g):
    """Best effort, for a failure: QEMU's block I/O error events, its block
    counters and the writer's own stats line (oldest write in flight)."""
    out = ""
    with contextlib.suppress(Exception):
        errs = [e["data"] for e in g.qmp.events if e["event"] == "BLOCK_IO_ERROR"]
        if errs:
            out += "BLOCK_IO_ERROR events: %s; " % errs[-3:]
    with contextlib.suppress(Exception):
        for b in g.qmp.cmd("query-blockstats"):
            s = b.get("stats", {})
            out += "%s: wr_operations %s, flush_operations %s, failed_wr %s; " % (
                b.get("device") or b.get("node-name"), s.get("wr_operations"),
                s.get("flush_operations"), s.get("failed_wr_operations"))
    with contextlib.suppress(Exception):
        out += "writer: " + g.console.command("stats", "STATS", timeout=5)
    return out


def virtio_queues(g):
    """Best effort: each virtqueue of g's virtio devices as QEMU holds it
    (the next avail index it will take, the used index it last wrote,
    requests it holds) beside the avail and used indices in the guest's
    own memory. A dict per queue."""
    out = []
    with contextlib.suppress(Exception):
        for dev in g.qmp.cmd("x-query-virtio"):
            st = g.qmp.cmd("x-query-virtio-status", path=dev["path"])
            for q in range(int(st["num-vqs"])):
                qs = g.qmp.cmd("x-query-virtio-queue-status", path=dev["path"], queue=q)
                row = {"dev": dev["name"], "queue": q, "last_avail": qs["last-avail-idx"],
                       "used": qs["used-idx"], "inuse": qs["inuse"]}
                # struct vring_avail and vring_used both start with le16
                # flags, le16 idx
                for ring, key in (("vring-avail", "mem_avail"), ("vring-used", "mem_used")):
                    if qs[ring]:
                        txt = g.qmp.hmp("xp /1hx 0x%x" % (qs[ring] + 2))
                        m = re.search(r":\s*0x([0-9a-f]+)", txt)
                        if m:
                            row[key] = int(m.group(1), 16)
                out.append(row)
    return out


def queues_text(rows):
    return "; ".join("%s q%d: QEMU last_avail %s used %s inuse %s, guest memory avail %s used %s"
                     % (r["dev"], r["queue"], r["last_avail"], r["used"], r["inuse"],
                        r.get("mem_avail", "?"), r.get("mem_used", "?")) for r in rows)


class GuestLostRequest(AssertionError):
    """A guest that waits on a disk request its hypervisor holds no trace
    of: not in any queue, not in flight, no error."""


class GuestDied(AssertionError):
    """QEMU was killed by a signal (it crashed) while the test ran."""


class GuestMemoryLost(AssertionError):
    """The writer's own record disagrees with itself after a migration."""


def _record_behind(line):
    """Whether a BAD line is a block whose acknowledged write the disk
    holds the writer's next generation of: "expect=G state=1 found=ours
    gen=G+1"."""
    m = re.search(r"expect=(\d+) state=1 found=ours gen=(\d+)", line)
    return bool(m) and int(m.group(2)) == int(m.group(1)) + 1


def check_verdict(v, what):
    """Fail on a verification error; GuestMemoryLost when the guest's
    memory, not the disk, lost something in a migration (QEMU's):
    - the writer's record is inconsistent in itself (the acknowledgements
      its blocks count differ from its total, both updated under one
      lock) and every bad block is one it has no record of writing yet
      holds its data;
    - or every bad block (all of them listed) holds the writer's next
      generation of the one its record acknowledged: data only this
      writer makes, written after that acknowledgement, whose own
      acknowledgement the record lacks (its pages, the total's with them,
      came back older).  A disk loses, tears or returns old data; it
      cannot hold a generation the writer had not yet begun."""
    if v["ok"]:
        return
    msg = "verification errors %s: %s\n%s" % (what, v["line"], "\n".join(v["bad"]))
    clean = v["bad"] and int(v.get("ioerr", 0)) == 0
    if (clean and v.get("record") == "inconsistent"
            and all("state=0 found=ours" in b for b in v["bad"])):
        raise GuestMemoryLost(msg)
    counted = re.search(r"\bbad=(\d+)", v["line"])
    if (clean and counted and int(counted.group(1)) == len(v["bad"])
            and all(_record_behind(b) for b in v["bad"])):
        raise GuestMemoryLost(msg)
    raise AssertionError(msg)


def once_more_on_hypervisor_fault(test, run):
    """run(); when it fails by a fault of the hypervisor beneath the test
    (GuestLostRequest, GuestDied, GuestKernelCrashed, GuestMemoryLost),
    print it, run the test's cleanups and run() once more: a second fault
    fails the test like any other error, and the print shows the rate."""
    try:
        return run()
    except (GuestLostRequest, GuestDied, GuestKernelCrashed, GuestMemoryLost) as e:
        print("\nthe hypervisor failed beneath the test (not a storage fault; running the "
              "scenario once more):\n%s" % e, flush=True)
        test.doCleanups()
        return run()


# How long a write the guest waits on, with QEMU holding none, takes to
# count as lost (completed_here): far past any write's time on a slow host.
LOST_AFTER_S = 30


def lost_request(src, dst, stall_since, completed_here=False):
    """Why a migrated guest's writer stopped, when the storage beneath is
    cleared of it: GuestLostRequest when the writer waits on a write
    submitted before the migration began (stall_since, monotonic) while
    the destination QEMU neither ran a write nor holds one (every virtqueue
    with nothing in use, nothing new in the guest's avail ring, everything
    it used written to the guest's used ring) and neither end reported a
    block I/O error: the request or its completion was lost between QEMU
    and the guest's memory. A storage fault cannot look like this: a
    write vfsd never answers keeps the source's drain, and so the
    migration, from ending; one it fails is an error event with
    werror=stop and is retried on the destination.
    completed_here: one QEMU without a migration (src is dst), whose
    writes did run: the same quiet queues mean it wrote the completion
    into the guest's used ring and the guest never took it (a lost
    interrupt). None otherwise."""
    try:
        errs = [e for g in (src, dst) for e in g.qmp.events if e["event"] == "BLOCK_IO_ERROR"]
        writes = sum(int(b.get("stats", {}).get("wr_operations", 0))
                     for b in dst.qmp.cmd("query-blockstats"))
        st = dst.stats()
        oldest = float(st.get("oldest_inflight_ms", 0))
    except Exception:       # noqa: BLE001 - a guest that cannot say is no proof
        return None
    rows = virtio_queues(dst)
    quiet = rows and all(r["inuse"] == 0 and r.get("mem_avail") == r["last_avail"] % 65536
                         and r.get("mem_used") == r["used"] % 65536 for r in rows)
    if errs or not quiet:
        return None
    if completed_here:
        # a write waited on that long while QEMU holds none: any write
        # stalled during the wait counts, not only one older than it
        if oldest / 1000 < LOST_AFTER_S:
            return None
        return GuestLostRequest(
            "the guest waits on a write it submitted %.1f s ago that QEMU has completed "
            "into the guest's used ring (nothing in use, no I/O error; %s): the guest "
            "never took the completion" % (oldest / 1000, queues_text(rows)))
    if writes or oldest / 1000 < time.monotonic() - stall_since:
        return None
    return GuestLostRequest(
        "the guest waits on a write it submitted %.1f s ago, before the migration, that the "
        "destination QEMU never received (%d writes there, no I/O error on either end; %s)"
        % (oldest / 1000, writes, queues_text(rows)))


def wait_migration(src, timeout=300):
    """Poll the source's query-migrate to an end: its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        info = src.qmp.cmd("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            return info
        if time.monotonic() > deadline:
            raise AssertionError("migration of %s did not end within %ds: %s"
                                 % (src.name, timeout, info))
        time.sleep(0.1)


def longest_gap(consoles, t0, t1, prefix="HB"):
    """The longest time without a writer heartbeat between t0 and t1 as seen
    from the host, over the consoles of both ends of a migration: what the
    guest's service looks like from outside, downtime included."""
    times = sorted([t0] + [t for c in consoles for t, _ in c.since(t0, prefix) if t <= t1]
                   + [t1])
    return max(b - a for a, b in zip(times, times[1:]))


def migrate(src, dst, uri, timeout=300, settle=1.5, diag=None):
    """Live-migrate src to dst (started with -incoming uri): returns a dict
    with QEMU's downtime and total time (ms), the guest's longest write
    stall as the host saw it (ms) and its own longest write latency.
    diag(): more to say when the guest does not go on (vfsd's view)."""
    t0 = time.monotonic()
    src.stats()     # resets the writer's maxima
    src.qmp.cmd("migrate", uri=uri)
    info = wait_migration(src, timeout)
    if info.get("status") != "completed":
        raise AssertionError("migration %s -> %s %s: %s\n%s"
                             % (src.name, dst.name, info.get("status"),
                                info.get("error-desc", ""), src.output() + dst.output()))
    try:
        harness.wait_for(lambda: dst.state() == "running", 60,
                         "the migrated guest to run on " + dst.name)
    except TimeoutError:
        raise AssertionError("the migrated guest does not run on %s: %s; source %s\n%s%s"
                             % (dst.name, dst.state(), src.state(), dst.output()[-2000:],
                                "\n" + diag() if diag else ""))
    since = dst.console.mark()
    try:
        dst.console.wait("HB", 60, since, what="heartbeats after the migration")
    except AssertionError as e:
        msg = ("%s\ndestination %s (%s), source %s; source's last lines:\n%s\n%s\n"
               "destination virtio: %s; source virtio: %s"
               % (e, dst.name, dst.state(), src.state(),
                  "\n".join(src.console.from_mark(0)[-5:]), io_report(dst),
                  queues_text(virtio_queues(dst)), queues_text(virtio_queues(src)))
               + ("\n" + diag() if diag else ""))
        if isinstance(e, GuestKernelCrashed):
            raise GuestKernelCrashed(msg) from None
        lost = lost_request(src, dst, t0)
        if lost:
            raise GuestLostRequest("%s\n%s" % (lost, msg)) from None
        raise AssertionError(msg) from None
    time.sleep(settle)
    t1 = time.monotonic()
    st = dst.stats()
    return {"downtime_ms": info.get("downtime", -1), "total_ms": info.get("total-time", -1),
            "stall_ms": 1000 * longest_gap([src.console, dst.console], t0, t1),
            "max_write_ms": float(st["max_write_ms"]),
            "max_flush_ms": float(st["max_flush_ms"]),
            "writes": int(st["writes"]), "errors": int(st["write_errors"])
            + int(st["flush_errors"])}
