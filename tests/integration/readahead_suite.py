# SPDX-License-Identifier: GPL-2.0-or-later
"""Read-ahead of sequential page-cache readers (vfsd/router_ra.c), the
checks every network backend shares.  A class mixes ReadAheadChecks in
with cls.v (the daemon), cls.back (the server's directory behind
PREFIX, written directly) and PREFIX (a mount with the default
readahead budget, 16 MiB)."""
import errno
import mmap
import os
import random
import time

import harness

MIB = 1 << 20
# where the patches of the coherence checks go: past the 8 MiB a reader
# has read, inside what was read ahead of it, not page-aligned
PATCH_AT = 12 * MIB + 10


def patch_on_server(back, data, patch):
    """Write patch at PATCH_AT into the server's file `back` directly (as
    another host would), and into the model `data`."""
    with open(back, "r+b") as f:
        f.seek(PATCH_AT)
        f.write(patch)
    data[PATCH_AT:PATCH_AT + len(patch)] = patch


def check_reader_when_server_stops(test, v, prefix, back, server, timeout,
                                   other=None):
    """A sequential reader on `prefix` (timeout `timeout`) has segments read
    ahead of it when `server` stops (SIGSTOP: server.pause()): each of its
    reads answers within twice the timeout (a segment's read, then its
    own), with the right bytes or EIO/ETIMEDOUT, and its close does not
    wait for the reads under way.  With `other` = (PREFIX, DIR), a mount
    of another server: its reader meanwhile reads the file right, in less
    than the timeout, partly from what was read ahead.  Once the server is
    back a new reader gets the file right, and nothing stays held."""
    data = os.urandom(48 * MIB)
    dirs = [back] + ([other[1]] if other else [])
    for d in dirs:
        with open(os.path.join(d, "big"), "wb") as f:
            f.write(data)
        test.addCleanup(os.unlink, os.path.join(d, "big"))

    def read_all(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            return b"".join(os.pread(fd, MIB, off) for off in range(0, len(data), MIB))
        finally:
            os.close(fd)

    fd = os.open(v.path(prefix, "big"), os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    for off in range(0, 8 * MIB, MIB):
        test.assertEqual(os.pread(fd, MIB, off), data[off:off + MIB])
    test.assertGreater(v.stats(prefix)["readahead"]["held"], 0)
    server.pause()
    test.addCleanup(server.resume)
    failed, slowest = None, 0.0
    for off in range(8 * MIB, len(data), MIB):
        took, res = harness.timed(os.pread, fd, MIB, off)
        slowest = max(slowest, took)
        if isinstance(res, OSError):
            test.assertIn(res.errno, (errno.EIO, errno.ETIMEDOUT), res)
            failed = off
            break
        test.assertEqual(res, data[off:off + MIB], "bytes at %d" % off)
    test.assertIsNotNone(failed, "every read answered with the server stopped")
    test.assertLess(slowest, 2 * timeout + 2)
    if other:
        before = v.stats(other[0])["readahead"]["served"]
        took, got = harness.timed(read_all, v.path(other[0], "big"))
        test.assertEqual(got, data)
        test.assertLess(took, timeout)
        test.assertGreater(v.stats(other[0])["readahead"]["served"], before)
    took, _ = harness.timed(os.close, fd)
    test.assertLess(took, 1.0)
    server.resume()

    def reads_right():
        try:
            return read_all(v.path(prefix, "big")) == data
        except OSError as e:
            test.assertIn(e.errno, (errno.EIO, errno.ETIMEDOUT))
            return False
    harness.wait_for(reads_right, 60, "a reader after the server came back")
    harness.wait_for(lambda: v.stats(prefix)["readahead"]["held"] == 0, 10,
                     "what was read ahead to be freed")


class ReadAheadChecks:
    PREFIX = None

    def server_file(self, name, mib):
        """A file of `mib` MiB of random bytes written on the server:
        (its bytes as a bytearray, its path on the server)."""
        data = bytearray(os.urandom(mib * MIB))
        path = os.path.join(self.back, name)
        with open(path, "wb") as f:
            f.write(data)
        self.addCleanup(os.unlink, path)
        return data, path

    def ra_stats(self, prefix):
        return self.v.stats(prefix)["readahead"]

    def wait_nothing_held(self):
        """Until no read-ahead of an earlier test is held or being read
        on PREFIX (its reads would count in this one's figures)."""
        harness.wait_for(lambda: self.ra_stats(self.PREFIX)["held"] == 0, 10,
                         "earlier read-ahead to be freed")

    def open_cold(self, path, flags=os.O_RDONLY):
        fd = os.open(path, flags)
        self.addCleanup(os.close, fd)
        # nothing of it in the page cache: every read reaches vfsd
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return fd

    def read_on(self, fd, data, start, end):
        """Read [start, end) in 1 MiB reads and compare with data."""
        for off in range(start, end, MIB):
            got = os.pread(fd, MIB, off)
            if got != bytes(data[off:off + MIB]):
                self.fail("bytes at %d differ (read %d)" % (off, len(got)))

    def read_mapped(self, m, data, start, end):
        """Compare [start, end) of mapping m with data.  Page faults ask
        for no attributes first, as read(2) does: what reaches vfsd for
        them is answered from what was read ahead unless a change dropped
        it.  (Python's mmap() itself asks, with an fstat: map first.)"""
        for off in range(start, end, MIB):
            got = m[off:min(off + MIB, end)]
            if got != bytes(data[off:min(off + MIB, end)]):
                self.fail("mapped bytes at %d differ" % off)

    def reader_at_8mib(self, path, data):
        """A reader that has read the first 8 MiB of path sequentially,
        with what follows read ahead of it: its descriptor, and a mapping
        of it made then (before any change)."""
        fd = self.open_cold(path)
        self.read_on(fd, data, 0, 8 * MIB)
        self.assertGreater(self.ra_stats(self.PREFIX)["held"], 0)
        m = mmap.mmap(fd, len(data), prot=mmap.PROT_READ)
        self.addCleanup(m.close)
        return fd, m

    def check_sequential(self, prefix, name):
        data, _ = self.server_file(name, 24)
        before = self.ra_stats(prefix)
        self.assertEqual(before["budget"], 16 * MIB)
        fd = os.open(self.v.path(prefix, name), os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            self.read_on(fd, data, 0, len(data))
            self.assertEqual(os.pread(fd, 4096, len(data)), b"")
        finally:
            os.close(fd)
        after = self.ra_stats(prefix)
        served = after["served"] - before["served"]
        # the first reads find nothing ahead; most of the rest do
        self.assertGreaterEqual(served, 12 * MIB, after)
        self.assertGreaterEqual(after["read"] - before["read"], served)
        # a closed file holds nothing
        harness.wait_for(lambda: self.ra_stats(prefix)["held"] == 0, 10,
                         "read-ahead of a closed file to be freed")

    def test_sequential(self):
        self.check_sequential(self.PREFIX, "seq")

    def test_sequential_hint_reads_each_byte_once(self):
        """A reader that says POSIX_FADV_SEQUENTIAL (as fio does) has the
        kernel keep twice its window in flight, on several threads, so
        its requests reach vfsd out of order and far behind the furthest
        one: the server still sends each byte about once, and what was
        read ahead is answered, not dropped."""
        data, _ = self.server_file("hint", 64)
        before = self.v.stats(self.PREFIX)
        fd = self.open_cold(self.v.path(self.PREFIX, "hint"), os.O_RDWR)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        # as fast as the kernel allows: compared once all is read
        got = bytearray(len(data))
        view = memoryview(got)
        for off in range(0, len(data), MIB):
            self.assertEqual(os.preadv(fd, [view[off:off + MIB]], off), MIB)
        self.assertTrue(got == data, "the bytes read differ")
        after = self.v.stats(self.PREFIX)
        ra = {k: after["readahead"][k] - before["readahead"][k]
              for k in ("read", "served", "dropped")}
        fetched = after["bytes_read"] - before["bytes_read"]
        self.assertGreaterEqual(ra["served"], len(data) // 2, ra)
        self.assertLessEqual(ra["dropped"], len(data) // 20, ra)
        self.assertLessEqual(fetched, len(data) * 11 // 10, (fetched, ra))

    def test_requests_out_of_order_are_one_stream(self):
        """The kernel's readahead requests reach vfsd on several threads,
        so with POSIX_FADV_SEQUENTIAL (two of its 2 MiB windows in
        flight) one may come up to 3 MiB ahead of those before it, or
        behind the furthest by as much.  Sent here one at a time, in a
        seeded order shuffled within each 4 MiB (the kernel reads only
        what is asked with POSIX_FADV_RANDOM): no request counts as a
        seek, so nothing read ahead is dropped and each byte is fetched
        once."""
        data, _ = self.server_file("shuffled", 64)
        self.wait_nothing_held()
        before = self.v.stats(self.PREFIX)
        fd = self.open_cold(self.v.path(self.PREFIX, "shuffled"))
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        rnd = random.Random(17)
        order = [0, 1, 2, 3]
        for group in range(4, len(data) // MIB, 4):
            blocks = list(range(group, group + 4))
            rnd.shuffle(blocks)
            order += blocks
        for block in order:
            off = block * MIB
            if os.pread(fd, MIB, off) != data[off:off + MIB]:
                self.fail("bytes at %d differ (order %s)" % (off, order))
        after = self.v.stats(self.PREFIX)
        ra = {k: after["readahead"][k] - before["readahead"][k]
              for k in ("read", "served", "dropped")}
        fetched = after["bytes_read"] - before["bytes_read"]
        self.assertEqual(ra["dropped"], 0, (ra, order))
        # the first three reads come before any window
        self.assertGreaterEqual(ra["served"], len(data) - 3 * MIB, ra)
        self.assertEqual(fetched, len(data), (fetched, ra, order))

    def test_stat_while_reading_keeps_what_was_read_ahead(self):
        """A file opened while nothing was read ahead anywhere, then read
        sequentially: an fstat half-way (an attribute request, the open
        file's attributes are never cached on a shared mount) finds the
        file as it was at the open, so what was read ahead stays and
        serves the rest."""
        data, _ = self.server_file("statted", 24)
        self.wait_nothing_held()
        before = self.v.stats(self.PREFIX)
        fd = self.open_cold(self.v.path(self.PREFIX, "statted"))
        self.read_on(fd, data, 0, 8 * MIB)
        self.assertGreater(self.ra_stats(self.PREFIX)["held"], 0)
        self.assertEqual(os.fstat(fd).st_size, len(data))
        self.read_on(fd, data, 8 * MIB, len(data))
        after = self.v.stats(self.PREFIX)
        ra = {k: after["readahead"][k] - before["readahead"][k]
              for k in ("read", "served", "dropped")}
        self.assertEqual(ra["dropped"], 0, ra)
        self.assertLessEqual(after["bytes_read"] - before["bytes_read"],
                             len(data) * 11 // 10, ra)

    def check_skipper(self, name, stride):
        """A reader that read 8 MiB in order (a window open), then reads 4
        KiB every `stride` bytes, each read within reach of the one before:
        the segments it asked for little of close the window, so the
        server sends little more than the window held when it began to
        skip, not the file."""
        data, _ = self.server_file(name, 72)
        self.wait_nothing_held()
        before = self.v.stats(self.PREFIX)
        self.assertEqual(before["readahead"]["budget"], 16 * MIB)
        fd = self.open_cold(self.v.path(self.PREFIX, name))
        # the kernel reads just what is asked
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        self.read_on(fd, data, 0, 8 * MIB)
        self.assertGreater(self.ra_stats(self.PREFIX)["held"], 0)
        for off in range(8 * MIB + stride, len(data) - 4096, stride):
            self.assertEqual(os.pread(fd, 4096, off), data[off:off + 4096])
        # closed: nothing held while the file is still open
        self.wait_nothing_held()
        after = self.v.stats(self.PREFIX)
        fetched = after["bytes_read"] - before["bytes_read"]
        self.assertGreater(after["readahead"]["dropped"],
                           before["readahead"]["dropped"])
        # 8 MiB read, a window of 8 MiB ahead of it, and what was queued
        # before the first skipped segment fell behind; the file is 72
        self.assertLessEqual(fetched, 28 * MIB, (fetched, after["readahead"]))

    def test_reader_that_skips_closes_the_window(self):
        self.check_skipper("skips", 3 * MIB)

    def test_reader_of_a_little_of_each_segment_closes_the_window(self):
        self.check_skipper("sips", MIB)

    def test_reads_off_the_segment_grid_drop_nothing(self):
        """A sequential reader whose reads straddle the 1 MiB segments (its
        first read was 16 KiB): each segment is asked for whole, two reads
        each, so nothing read ahead is dropped and each byte is fetched
        about once."""
        data, _ = self.server_file("offgrid", 48)
        self.wait_nothing_held()
        before = self.v.stats(self.PREFIX)
        fd = self.open_cold(self.v.path(self.PREFIX, "offgrid"))
        self.assertEqual(os.pread(fd, 16384, 0), data[:16384])
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        for off in range(16384, len(data), MIB):
            if os.pread(fd, MIB, off) != data[off:off + MIB]:
                self.fail("bytes at %d differ" % off)
        after = self.v.stats(self.PREFIX)
        ra = {k: after["readahead"][k] - before["readahead"][k]
              for k in ("read", "served", "dropped")}
        fetched = after["bytes_read"] - before["bytes_read"]
        self.assertGreaterEqual(ra["served"], len(data) // 2, ra)
        self.assertLessEqual(ra["dropped"], MIB, ra)
        self.assertLessEqual(fetched, len(data) * 11 // 10, (fetched, ra))

    def test_nothing_read_ahead_past_the_size(self):
        """The kernel reads a file no further than the size it was told,
        so nothing past it is read ahead: a sequential reader of a file
        that ends inside a segment, and not on a page, has each of its
        megabytes read once and no READ sent past its end, also when it
        reads the file a second time (its last request, whole pages,
        ended past the size).  Before, the window ran on, an empty READ
        for each segment past the end, until one came back short."""
        size = 12 * MIB + MIB // 2 + 100
        data = os.urandom(size)
        path = os.path.join(self.back, "sized")
        with open(path, "wb") as f:
            f.write(data)
        self.addCleanup(os.unlink, path)
        self.wait_nothing_held()
        before = self.v.stats(self.PREFIX)
        fd = os.open(self.v.path(self.PREFIX, "sized"), os.O_RDONLY)
        try:
            # one request at a time, as asked: every one reaches vfsd
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
            for _ in range(2):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                self.read_on(fd, data, 0, size)
                self.assertEqual(os.pread(fd, MIB, size), b"")
        finally:
            os.close(fd)
        self.wait_nothing_held()
        after = self.v.stats(self.PREFIX)
        ra = {k: after["readahead"][k] - before["readahead"][k]
              for k in ("read", "served", "dropped")}
        reads = after["ops"]["read"] - before["ops"]["read"]
        fetched = after["bytes_read"] - before["bytes_read"]
        self.assertLessEqual(fetched, 2 * size * 11 // 10, ra)
        # 13 a pass (the first three reads and 10 segments read ahead);
        # a megabyte read twice (a segment refused as too old on a slow
        # machine) may add one
        refetched = (fetched - 2 * size + MIB - 1) // MIB
        self.assertLessEqual(reads, 26 + refetched, (fetched, ra))

    def test_segments_ahead_of_a_stopped_reader_are_read(self):
        """What is queued ahead of a reader is read by the worker threads
        while the reader does something else, not left for the reader to
        read itself when it comes to it (each queued segment must wake a
        worker): once a reader stops, everything held for it was read."""
        data, _ = self.server_file("stopped", 24)
        self.wait_nothing_held()
        before = self.ra_stats(self.PREFIX)
        fd = self.open_cold(self.v.path(self.PREFIX, "stopped"))
        # the kernel asks exactly what is read: segments are answered
        # whole, and freed once answered
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        self.read_on(fd, data, 0, 8 * MIB)
        st = {}

        def all_read():
            st.update(self.ra_stats(self.PREFIX))
            unserved = sum((st[k] - before[k]) * (1 if k == "read" else -1)
                           for k in ("read", "served", "dropped"))
            return st["held"] >= 2 * MIB and unserved == st["held"]
        try:
            harness.wait_for(all_read, 10, "what is held to be read")
        except TimeoutError:
            self.fail("segments queued ahead of a stopped reader were "
                      "not read: %s since %s" % (st, before))
        self.read_on(fd, data, 8 * MIB, len(data))

    def test_short_reader_is_sent_little_ahead(self):
        """A reader of a little in small requests (a file's header, `head
        -c`): the window grows with the bytes it read, not with its
        number of requests, so it is sent two segments ahead at most,
        not the 8 MiB its five requests used to open."""
        data, _ = self.server_file("head", 16)
        self.wait_nothing_held()
        before = self.v.stats(self.PREFIX)
        fd = os.open(self.v.path(self.PREFIX, "head"), os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
            for off in range(0, 5 * 128 * 1024, 128 * 1024):
                self.assertEqual(os.pread(fd, 128 * 1024, off),
                                 data[off:off + 128 * 1024])
            # open long enough for all that was queued to be read
            time.sleep(1)
        finally:
            os.close(fd)
        self.wait_nothing_held()
        after = self.v.stats(self.PREFIX)
        fetched = after["bytes_read"] - before["bytes_read"]
        # 384 KiB read before the window opened, then three segments:
        # exactly what the window sends (two at the third read, one
        # more at the fourth)
        self.assertLessEqual(fetched, 384 * 1024 + 3 * MIB,
                             (fetched, after["readahead"]))

    def test_write_through_another_open_is_seen(self):
        """A reader half-way through a file, with its next megabytes read
        ahead, then a write through another open, of part of a page the
        kernel does not hold: the reader sees the write through a
        mapping, whose faults ask for no attributes (the write itself
        drops what was read ahead)."""
        data, _ = self.server_file("w", 24)
        path = self.v.path(self.PREFIX, "w")
        _, m = self.reader_at_8mib(path, data)
        patch = b"written through another open" * 3
        wfd = os.open(path, os.O_WRONLY)
        try:
            self.assertEqual(os.pwrite(wfd, patch, PATCH_AT), len(patch))
        finally:
            os.close(wfd)
        data[PATCH_AT:PATCH_AT + len(patch)] = patch
        self.read_mapped(m, data, 8 * MIB, len(data))
