# SPDX-License-Identifier: GPL-2.0-or-later
"""The SFTP engine (issue 15) against a server that lies or stalls, and
under concurrency: sshd runs sftp_liar.py, which passes packets to and
from OpenSSH's sftp-server and changes them as its mode file says.  vfsd
must answer every call within the mount's timeout, with an errno or with
the right data, and never give one caller another's.
"""
import contextlib
import errno
import mmap
import os
import random
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Vfsd, tmpdir  # noqa: E402
from posix_suite import read_file, write_file  # noqa: E402
from sshd import Sshd  # noqa: E402
from test_sftp import have_sshd, vfsd_env  # noqa: E402

LIAR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sftp_liar.py")


def in_thread(fn, *args):
    """Run fn(*args) in a thread: (thread, box), box[0] its result or
    OSError once done."""
    box = []

    def run():
        t0 = time.monotonic()
        try:
            res = fn(*args)
        except OSError as e:
            res = e
        box.append(res)
        box.append(time.monotonic() - t0)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def run_workers(test, fn, n, timeout):
    """fn(0) .. fn(n-1) in n threads at once; fails test if one has not
    ended after timeout seconds."""
    threads = [threading.Thread(target=fn, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        test.assertFalse(t.is_alive(), "a worker hung")


@unittest.skipUnless(have_sshd() and os.path.exists("/usr/lib/openssh/sftp-server"),
                     "needs OpenSSH's sshd and sftp-server")
class SftpHostile(harness.TestCase):
    def setUp(self):
        self.dir = tmpdir("vfsd-liar-")
        self.mode_file = os.path.join(self.dir, "mode")
        self.set_mode("pass")
        self.sshd = Sshd(subsystem="%s %s %s" % (sys.executable, LIAR,
                                                 self.mode_file)).start()
        self.addCleanup(self.sshd.stop)
        self.remote = tmpdir("vfsd-remote-")

    def set_mode(self, m):
        with open(self.mode_file + ".tmp", "w") as f:
            f.write(m)
        os.rename(self.mode_file + ".tmp", self.mode_file)
        time.sleep(0.2)  # the liar looks at it every 50 ms

    def mount(self, **params):
        params.setdefault("cache_ttl", 0)
        v = Vfsd([("/ssh", self.sshd.url(self.remote, **params))],
                 env=vfsd_env(self.sshd.dir)).start()
        self.addCleanup(v.stop)
        return v

    def test_endless_listing_ends_within_the_timeout(self):
        """A server that answers every READDIR with one more name and
        never with EOF: the listing must fail within the mount's timeout
        (not hold a FUSE thread, and grow, forever)."""
        timeout = 6
        v = self.mount(timeout=timeout)
        os.mkdir(os.path.join(self.remote, "d"))
        self.set_mode("endless_readdir")
        t, box = in_thread(os.listdir, v.path("ssh/d"))
        t.join(timeout * 4)
        self.set_mode("pass")
        self.assertFalse(t.is_alive(), "a listing hung on an endless server")
        self.assertIsInstance(box[0], OSError)
        self.assertIn(box[0].errno, (errno.EIO, errno.ETIMEDOUT))
        self.assertLess(box[1], timeout + 1.5)

    def test_replies_in_one_byte_writes(self):
        v = self.mount(timeout=10)
        self.set_mode("split")
        data = os.urandom((300 << 10) + 17)
        write_file(v.path("ssh/f"), data)
        self.assertEqual(read_file(v.path("ssh/f")), data)
        self.assertEqual(read_file(os.path.join(self.remote, "f")), data)
        self.assertEqual(sorted(os.listdir(v.path("ssh"))), ["f"])

    def test_unanswered_read_times_out_and_recovers(self):
        timeout = 8
        v = self.mount(timeout=timeout)
        write_file(os.path.join(self.remote, "f"), b"r" * 8192)
        fd = os.open(v.path("ssh/f"), os.O_RDONLY | os.O_DIRECT)
        self.addCleanup(os.close, fd)
        buf = mmap.mmap(-1, 4096)
        self.assertEqual(os.preadv(fd, [buf], 0), 4096)
        self.set_mode("hold:5")  # SSH_FXP_READ
        t, box = in_thread(os.preadv, fd, [buf], 4096)
        t.join(timeout * 4)
        self.assertFalse(t.is_alive(), "a read hung on an unanswered READ")
        self.assertIsInstance(box[0], OSError)
        self.assertIn(box[0].errno, (errno.EIO, errno.ETIMEDOUT))
        self.assertLess(box[1], timeout + 1.5)
        self.set_mode("pass")

        def works():
            try:
                return os.preadv(fd, [buf], 0) == 4096 and buf[:4] == b"rrrr"
            except OSError as e:
                self.assertIn(e.errno, (errno.EIO, errno.ETIMEDOUT))
                return False
        harness.wait_for(works, 30, "reads after the server answers again")

    def test_lies_fail_calls_and_the_mount_recovers(self):
        """Each kind of broken reply fails the call that got it with EIO
        (never a crash, a hang, or data from the lie), within the
        timeout; once the server tells the truth again the mount works."""
        # (generous: each new session starts a Python interpreter)
        timeout = 8
        v = self.mount(timeout=timeout)
        data = os.urandom(100000)
        write_file(os.path.join(self.remote, "f"), data)
        os.mkdir(os.path.join(self.remote, "d"))
        write_file(os.path.join(self.remote, "d", "x"), b"x")
        buf = mmap.mmap(-1, 65536)
        self.addCleanup(buf.close)

        def read():
            fd = os.open(v.path("ssh/f"), os.O_RDONLY | os.O_DIRECT)
            try:
                n = os.preadv(fd, [buf], 0)
                return buf[:n]
            finally:
                os.close(fd)

        def listing():
            return sorted(os.listdir(v.path("ssh/d")))
        # (kind, call); a lie the call does not meet is passed over
        cases = [("dup", read), ("unknown_id", read), ("long_data", read),
                 ("status_ok", read), ("big_handle", read),
                 ("empty_handle", read), ("length_past", read),
                 ("name_count", listing), ("cut", read)]
        for kind, call in cases:
            with self.subTest(kind=kind):
                self.set_mode("lie:" + kind)
                t, box = in_thread(call)
                t.join(timeout * 4)
                self.assertFalse(t.is_alive(), "hung")
                self.set_mode("pass")
                res, secs = box
                if not isinstance(res, OSError):
                    # a duplicate may come after the call had its answer
                    self.assertIn(kind, ("dup",))
                    self.assertEqual(res, data[:65536])
                else:
                    # (ETIMEDOUT: waited for the session the previous
                    # lie cost, on a slow machine)
                    self.assertIn(res.errno, (errno.EIO, errno.ETIMEDOUT))
                self.assertLess(secs, timeout + 1.5)

                def works():
                    try:
                        return read() == data[:65536] and listing() == ["x"]
                    except OSError as e:
                        self.assertIn(e.errno, (errno.EIO, errno.ETIMEDOUT))
                        return False
                harness.wait_for(works, 30, "the mount to work again")

    def test_abandoned_request_leaves_callers_driving(self):
        """A READ answered after its caller gave up (the mount's timeout
        passed while the server answered others) completes later as the
        engine's alone.  Counting it out must not break the count of
        such requests: the loop would then be woken after every call a
        caller drove itself, each a hand-off the engine avoids (chan.c).
        Measured on the loop thread's wake-ups over calls of one
        thread, before and after."""
        v = self.mount(timeout=2, connections=1)
        write_file(os.path.join(self.remote, "f"), b"r" * 8192)
        write_file(os.path.join(self.remote, "s"), b"s")
        fd = os.open(v.path("ssh/f"), os.O_RDONLY | os.O_DIRECT)
        self.addCleanup(os.close, fd)
        buf = mmap.mmap(-1, 4096)
        self.addCleanup(buf.close)
        self.assertEqual(os.preadv(fd, [buf], 0), 4096)

        def loop_wakeups():
            n = 0
            for tid in os.listdir("/proc/%d/task" % v.proc.pid):
                with contextlib.suppress(OSError):
                    with open("/proc/%d/task/%s/comm" % (v.proc.pid, tid)) as f:
                        if f.read().strip() != "sftp-chan":
                            continue
                    with open("/proc/%d/task/%s/status" % (v.proc.pid, tid)) as f:
                        for line in f:
                            if line.startswith("voluntary_ctxt_switches:"):
                                n += int(line.split()[1])
            return n

        def wakeups_over_calls():
            before = loop_wakeups()
            for _ in range(200):
                os.stat(v.path("ssh/s"))
            return loop_wakeups() - before
        self.assertLess(wakeups_over_calls(), 50)
        # READ replies 3 s late; stats answered meanwhile make the
        # READ's miss of its 2 s no dead server: it is abandoned
        self.set_mode("delay:5:3")
        stop = threading.Event()

        def stats():
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    os.stat(v.path("ssh/s"))
                time.sleep(0.05)
        t = threading.Thread(target=stats)
        t.start()
        with self.assertRaises(OSError) as cm:
            os.preadv(fd, [buf], 0)
        stop.set()
        t.join()
        self.assertIn(cm.exception.errno, (errno.EIO, errno.ETIMEDOUT))
        self.set_mode("pass")
        time.sleep(2)  # the late reply came and completed it
        self.assertEqual(v.mount_info("/ssh")["state"], "connected")
        self.assertLess(wakeups_over_calls(), 50)

    def test_keepalives_go_while_a_caller_waits(self):
        """A lone call whose reply is slow (well within the timeout) is
        waited for by its caller driving the channel itself: keepalives
        fall due meanwhile and must still go out (chan.c), as they did
        when the loop alone waited."""
        relay = SlowRelay(self.sshd.port, 1 << 30)
        self.addCleanup(relay.close)
        kh = os.path.join(self.sshd.dir, "known_hosts_relay")
        with open(kh, "w") as f:
            f.write(self.sshd.host_key_line().replace(":%d " % self.sshd.port,
                                                      ":%d " % relay.port))
        url = ("sftp://%s@127.0.0.1:%d%s?identity=%s&known_hosts=%s&timeout=10"
               "&keepalive=1&cache_ttl=0&connections=1"
               % (self.sshd.user, relay.port, self.remote, self.sshd.identity, kh))
        v = Vfsd([("/ssh", url)], env=vfsd_env(self.sshd.dir)).start()
        self.addCleanup(v.stop)
        write_file(os.path.join(self.remote, "f"), b"r" * 8192)
        fd = os.open(v.path("ssh/f"), os.O_RDONLY | os.O_DIRECT)
        self.addCleanup(os.close, fd)
        buf = mmap.mmap(-1, 4096)
        self.addCleanup(buf.close)
        self.assertEqual(os.preadv(fd, [buf], 0), 4096)
        self.set_mode("delay:5:4")  # READ replies 4 s late
        late = mmap.mmap(-1, 4096)  # (the thread's, left open if it hangs)
        t, box = in_thread(os.preadv, fd, [late], 4096)
        time.sleep(0.5)
        sent = relay.up_bytes
        time.sleep(2.5)
        self.assertGreater(relay.up_bytes, sent, "nothing sent in 2.5 s")
        t.join(20)
        self.set_mode("pass")
        self.assertEqual(box[0], 4096)
        self.assertEqual(late[:4], b"rrrr")

    def test_threads_on_one_session_get_their_own_data(self):
        """16 threads of O_DIRECT reads and writes of their own blocks of
        one file, on one session: every read sees what that thread wrote
        last, nothing else."""
        v = self.mount(timeout=20, connections=1)
        bs, per = 64 << 10, 8
        size = 16 * per * bs
        write_file(os.path.join(self.remote, "img"), b"\0" * size)
        fd = os.open(v.path("ssh/img"), os.O_RDWR | os.O_DIRECT)
        self.addCleanup(os.close, fd)
        errors = []

        def worker(tid):
            rnd = random.Random(tid)
            wbuf, rbuf = mmap.mmap(-1, bs), mmap.mmap(-1, bs)
            last = {}
            try:
                for i in range(60):
                    blk = tid * per + rnd.randrange(per)
                    if rnd.random() < 0.5:
                        pat = bytes([tid]) + os.urandom(15)
                        wbuf.seek(0)
                        wbuf.write(pat * (bs // 16))
                        self.assertEqual(os.pwritev(fd, [wbuf], blk * bs), bs)
                        last[blk] = pat * (bs // 16)
                    else:
                        self.assertEqual(os.preadv(fd, [rbuf], blk * bs), bs)
                        want = last.get(blk, b"\0" * bs)
                        if rbuf[:] != want:
                            errors.append((tid, blk, rbuf[:16], want[:16]))
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append((tid, repr(e)))
        run_workers(self, worker, 16, 120)
        self.assertEqual(errors, [])


@unittest.skipUnless(have_sshd(), "needs OpenSSH's sshd")
class SftpStalls(harness.TestCase):
    """A real sshd that stops for a while, shorter than the timeout."""

    def setUp(self):
        self.sshd = Sshd().start()
        self.addCleanup(self.sshd.stop)
        self.remote = tmpdir("vfsd-remote-")

    def test_writes_go_on_after_a_stop_shorter_than_the_timeout(self):
        """Writes in flight while the server is stopped for less than
        the timeout, keepalives falling due meanwhile: once the server
        goes on, so do the writes, none failed."""
        v = Vfsd([("/ssh", self.sshd.url(self.remote, timeout=20, keepalive=2,
                                          cache_ttl=0))],
                 env=vfsd_env(self.sshd.dir)).start()
        self.addCleanup(v.stop)
        write_file(os.path.join(self.remote, "disk"), b"")
        fd = os.open(v.path("ssh/disk"), os.O_RDWR | os.O_DIRECT)
        self.addCleanup(os.close, fd)
        buf = mmap.mmap(-1, 1 << 20)
        buf.write(b"\x5a" * (1 << 20))
        done, failed = [], []
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.is_set():
                try:
                    os.pwritev(fd, [buf], (i % 64) << 20)
                    done.append(time.monotonic())
                except OSError as e:
                    failed.append(e.errno)
                    return
                i += 1
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        harness.wait_for(lambda: len(done) > 4, 30, "writes to flow")
        self.sshd.pause()
        time.sleep(5)  # > keepalive: one falls due on a full socket
        self.sshd.resume()
        resumed = time.monotonic()
        harness.wait_for(lambda: failed or (done and done[-1] > resumed + 1), 25,
                         "writes to go on after the server did")
        stop.set()
        t.join(30)
        self.assertEqual(failed, [])
        first = min(d for d in done if d > resumed)
        self.assertLess(first - resumed, 3.0)


    def test_threads_on_one_session_are_answered_promptly(self):
        """16 threads of O_DIRECT reads and writes (4 KiB to 1 MiB: a
        pipeline of several requests) and stats, on one session of a
        server that answers at once: no call waits long.  A caller that
        drives the channel and stops while others wait must leave their
        replies to the loop, which must then read them (not its idle
        timer, 2 s later: a kick of the loop read by the next caller
        that drove once went unanswered)."""
        v = Vfsd([("/ssh", self.sshd.url(self.remote, timeout=20, cache_ttl=0,
                                          connections=1))],
                 env=vfsd_env(self.sshd.dir)).start()
        self.addCleanup(v.stop)
        write_file(os.path.join(self.remote, "img"), b"\0" * (16 << 20))
        for i in range(16):
            write_file(os.path.join(self.remote, "s%d" % i), b"s")
        fd = os.open(v.path("ssh/img"), os.O_RDWR | os.O_DIRECT)
        self.addCleanup(os.close, fd)
        end = time.monotonic() + 8
        slow, errors = [], []

        def worker(tid):
            rnd = random.Random(tid)
            buf = mmap.mmap(-1, 1 << 20)
            while time.monotonic() < end:
                n = rnd.choice([4096, 65536, 1 << 20])
                off = rnd.randrange(16) << 20
                op = rnd.random()
                t0 = time.monotonic()
                try:
                    if op < 0.3:
                        os.preadv(fd, [memoryview(buf)[:n]], off)
                    elif op < 0.6:
                        os.pwritev(fd, [memoryview(buf)[:n]], off)
                    else:
                        os.stat(v.path("ssh/s%d" % tid))
                except OSError as e:
                    errors.append((tid, e.errno))
                took = time.monotonic() - t0
                if took > 1.5:
                    slow.append((tid, op < 0.6 and n, round(took, 2)))
        run_workers(self, worker, 16, 60)
        self.assertEqual(errors, [])
        self.assertEqual(slow, [])



class SlowRelay:
    """A TCP relay to sshd that passes what the client sends at `rate`
    bytes a second through a small receive buffer (a slow uplink: the
    client's socket fills long before the SSH window does)."""

    def __init__(self, target_port, rate):
        self.target_port = target_port
        self.rate = rate
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.closed = False
        self.socks = []
        self.up_bytes = 0  # what the client sent so far
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target_port))
            self.socks += [c, s]
            threading.Thread(target=self.pump, args=(c, s, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(s, c, False), daemon=True).start()

    def pump(self, src, dst, slow):
        try:
            while True:
                data = src.recv(4096 if slow else 65536)
                if not data:
                    break
                dst.sendall(data)
                if slow:
                    self.up_bytes += len(data)
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self):
        self.closed = True
        self.lsock.close()
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@unittest.skipUnless(have_sshd(), "needs OpenSSH's sshd")
class SftpSlowLink(harness.TestCase):
    def test_queued_calls_on_a_slow_link_do_not_fail_the_mount(self):
        """A link slower than the calls put on it: the server answers
        steadily, but calls queue on the shared session longer than the
        timeout.  That is no dead server: the mount must not go down, and
        calls the server got to in time must not fail with the ones that
        waited too long."""
        sshd = Sshd().start()
        self.addCleanup(sshd.stop)
        relay = SlowRelay(sshd.port, 1 << 20)
        self.addCleanup(relay.close)
        remote = tmpdir("vfsd-remote-")
        kh = os.path.join(sshd.dir, "known_hosts_relay")
        with open(kh, "w") as f:
            f.write(sshd.host_key_line().replace(":%d " % sshd.port, ":%d " % relay.port))
        url = ("sftp://%s@127.0.0.1:%d%s?identity=%s&known_hosts=%s&timeout=3"
               "&cache_ttl=0&connections=1" % (sshd.user, relay.port, remote,
                                               sshd.identity, kh))
        v = Vfsd([("/ssh", url)], env=vfsd_env(sshd.dir)).start()
        self.addCleanup(v.stop)
        fds = []
        for i in range(8):
            write_file(os.path.join(remote, "disk%d" % i), b"")
            fds.append(os.open(v.path("ssh/disk%d" % i), os.O_RDWR | os.O_DIRECT))
            self.addCleanup(os.close, fds[-1])
        results = {}

        def writer(tid):
            buf = mmap.mmap(-1, 1 << 20)
            buf.write(bytes([tid + 1]) * (1 << 20))
            t0 = time.monotonic()
            try:
                os.pwritev(fds[tid], [buf], 0)
                results[tid] = ("ok", time.monotonic() - t0)
            except OSError as e:
                results[tid] = (e.errno, time.monotonic() - t0)
        run_workers(self, writer, 8, 60)
        self.assertEqual(len(results), 8)
        for tid, (res, secs) in results.items():
            self.assertIn(res, ("ok", errno.ETIMEDOUT, errno.EIO), tid)
            self.assertLess(secs, 3 + 1.5, tid)
        # the calls the server got to in time succeeded (which thread
        # came first is the scheduler's)
        self.assertIn("ok", [res for res, _ in results.values()], results)
        # the server answered all along: no outage, and the next call
        # goes through at once
        self.assertNotIn("down", v.log())
        self.assertNotIn("did not answer", v.log())
        self.assertEqual(v.mount_info("/ssh")["state"], "connected")
        t0 = time.monotonic()
        buf = mmap.mmap(-1, 4096)
        buf.write(b"z" * 4096)
        self.assertEqual(os.pwritev(fds[0], [buf], 0), 4096)
        self.assertLess(time.monotonic() - t0, 2)

if __name__ == "__main__":
    harness.main()
