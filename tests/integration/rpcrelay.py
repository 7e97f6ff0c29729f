# SPDX-License-Identifier: GPL-2.0-or-later
"""A TCP relay on 127.0.0.1 in front of an ONC RPC server (ganesha's NFS
port) that swallows the calls of chosen procedures: they are never passed
on and never answered, as by a server that stops answering just those.
Everything else goes through unchanged, both ways.  For failures a real
server cannot be made to show on demand (a PATHCONF that times out while
the MOUNT, LOOKUP and GETATTR before it were answered).

    with RpcRelay(g.nfs_port, drop={(100003, 3, 20)}) as r:
        url = g.url(version=3, nfsport=r.port)
        r.dropped                   # how many calls were swallowed

Threads in this process; stop() (or the harness's cleanups) closes the
listener and every relayed connection.
"""
import contextlib
import socket
import struct
import threading

import harness

NFS_PROGRAM = 100003
NFSPROC3_PATHCONF = 20


class RpcRelay:
    def __init__(self, target_port, drop, target_addr="127.0.0.1"):
        """drop: a set of (program, version, procedure) whose calls are
        swallowed."""
        self.target = (target_addr, target_port)
        self.drop = set(drop)
        self.dropped = 0
        self._socks = []
        self._lock = threading.Lock()
        self._ls = None
        self.port = None

    def start(self):
        self._ls = socket.socket()
        self._ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._ls.bind(("127.0.0.1", 0))
        self._ls.listen(16)
        self.port = self._ls.getsockname()[1]
        harness._cleanups.append(self.stop)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        with self._lock:
            socks, self._socks = self._socks, []
            ls, self._ls = self._ls, None
        for s in socks + ([ls] if ls else []):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept(self):
        ls = self._ls
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target, timeout=10)
                s.settimeout(None)
            except OSError:
                c.close()
                continue
            with self._lock:
                if self._ls is None:
                    c.close()
                    s.close()
                    return
                self._socks += [c, s]
            threading.Thread(target=self._calls, args=(c, s), daemon=True).start()
            threading.Thread(target=self._replies, args=(s, c), daemon=True).start()

    @staticmethod
    def _recv_exact(sock, n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _record(self, sock):
        """One RPC record (RFC 5531 record marking): its fragments with
        their headers, as received, and the payload without them."""
        raw, payload = b"", b""
        while True:
            hdr = self._recv_exact(sock, 4)
            (word,) = struct.unpack(">I", hdr)
            frag = self._recv_exact(sock, word & 0x7FFFFFFF)
            raw += hdr + frag
            payload += frag
            if word & 0x80000000:
                return raw, payload

    def _calls(self, src, dst):
        try:
            while True:
                raw, payload = self._record(src)
                if len(payload) >= 24:
                    _xid, mtype, _rpcvers, prog, vers, proc = struct.unpack(
                        ">6I", payload[:24])
                    if mtype == 0 and (prog, vers, proc) in self.drop:
                        with self._lock:
                            self.dropped += 1
                        continue
                dst.sendall(raw)
        except (OSError, EOFError):
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _replies(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
