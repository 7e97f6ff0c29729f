# SPDX-License-Identifier: GPL-2.0-or-later
"""A TCP relay on 127.0.0.1 that passes every byte on `delay` seconds
after it came, both ways, keeping the stream pipelined: a server far
away (and, through this Python relay, one slower than its writers).

    r = DelayRelay(g.nfs_port, 0.005)
    url = g.url(version=3, nfsport=r.port)

Threads in this process; stop() (or the harness's cleanups) closes the
listener and every relayed connection.
"""
import collections
import contextlib
import socket
import threading
import time

import harness


class DelayRelay:
    def __init__(self, target_port, delay, target_addr="127.0.0.1"):
        self.target = (target_addr, target_port)
        self.delay = delay
        self.socks = []
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        harness._cleanups.append(self.stop)
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        for s in [self.ls] + self.socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
                s = socket.create_connection(self.target)
            except OSError:
                return
            self.socks += [c, s]
            for x in (c, s):
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pipe(c, s)
            self._pipe(s, c)

    def _pipe(self, a, b):
        q = collections.deque()
        cv = threading.Condition()

        def rd():
            while True:
                try:
                    d = a.recv(1 << 20)
                except OSError:
                    d = b""
                with cv:
                    q.append((time.monotonic() + self.delay, d))
                    cv.notify()
                if not d:
                    return

        def wr():
            while True:
                with cv:
                    while not q:
                        cv.wait()
                    t, d = q.popleft()
                wait = t - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                try:
                    if not d:
                        b.shutdown(socket.SHUT_WR)
                        return
                    b.sendall(d)
                except OSError:
                    return
        threading.Thread(target=rd, daemon=True).start()
        threading.Thread(target=wr, daemon=True).start()
