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

It can also pass a call on and lose its reply instead, resetting the
connection as the reply is due: the server did what was asked, and the
client cannot tell (a reply lost with its connection).  `lose` is a
function of (program, version, procedure, call payload) that says which
calls; the first `lose_count` of them go that way:

    with RpcRelay(g.nfs_port, lose=proc_is(3, NFSPROC3_MKDIR)) as r:
        r.lost                      # how many replies were lost

Or pass a call on and change its reply: `rewrite` is a pair (predicate
as for `lose`, function of the reply's payload giving the new payload),
for replies a real server would not send on demand:

    with RpcRelay(g.nfs_port, rewrite=(proc_is(3, NFSPROC3_CREATE),
                                       create3_reply(handle=False))) as r:
        r.rewritten                 # how many replies were changed

Every call passed on is noted in `calls`, as (program, version,
procedure, payload length, NFSv4 operations as far as compound_ops walks
them):

    [c for c in r.calls if OP4_WRITE in c[4]]   # the WRITEs that went by

Threads in this process; stop() (or the harness's cleanups) closes the
listener and every relayed connection.
"""
import contextlib
import socket
import struct
import threading

import harness

NFS_PROGRAM = 100003
NFSPROC3_GETATTR = 1
NFSPROC3_CREATE = 8
NFSPROC3_MKDIR = 9
NFSPROC3_SYMLINK = 10
NFSPROC3_REMOVE = 12
NFSPROC3_RMDIR = 13
NFSPROC3_RENAME = 14
NFSPROC3_LINK = 15
NFSPROC3_MKNOD = 11
NFSPROC3_PATHCONF = 20
NFSPROC3_READ = 6
NFSPROC4_COMPOUND = 1
NFS3ERR_JUKEBOX = 10008
OP4_CLOSE = 4
OP4_OPEN = 18
OP4_READ = 25
OP4_WRITE = 38


def proc_is(version, proc):
    """A `lose` predicate: the NFS calls of one procedure."""
    return lambda prog, vers, p, payload: (
        (prog, vers, p) == (NFS_PROGRAM, version, proc))


FATTR3_SIZE = 84       # type mode nlink uid gid, size used rdev fsid fileid, 3 times
FATTR3_FILEID = 52     # offset of fileid in it


def _reply_body(payload):
    """Where the procedure's result starts in an accepted RPC reply."""
    (vlen,) = struct.unpack_from(">I", payload, 16)
    return 16 + 4 + (vlen + 3) // 4 * 4 + 4


def create3_reply(handle=True, attributes=True, fileid_delta=0):
    """A `rewrite` function for an NFSv3 CREATE's successful reply: leave
    out the new file's handle and/or its attributes, or give another
    file number in them (a reply that names another object)."""
    def fn(payload):
        pos = _reply_body(payload)
        (status,) = struct.unpack_from(">I", payload, pos)
        if status != 0:
            return payload
        pos += 4
        head = payload[:pos]
        (follows,) = struct.unpack_from(">I", payload, pos)
        end = _opaque(payload, pos + 4) if follows else pos + 4
        fh = payload[pos:end] if handle else struct.pack(">I", 0)
        pos = end
        (follows,) = struct.unpack_from(">I", payload, pos)
        end = pos + 4 + (FATTR3_SIZE if follows else 0)
        attrs = bytearray(payload[pos:end])
        if follows and fileid_delta:
            off = 4 + FATTR3_FILEID
            (fid,) = struct.unpack_from(">Q", attrs, off)
            struct.pack_into(">Q", attrs, off, fid + fileid_delta)
        if not attributes:
            attrs = bytearray(struct.pack(">I", 0))
        return head + fh + bytes(attrs) + payload[end:]
    return fn


def status_reply(status):
    """A `rewrite` function: the reply becomes a bare failure with this
    NFS status (for procedures whose failure carries nothing more, as
    GETATTR's)."""
    return lambda payload: payload[:_reply_body(payload)] + struct.pack(">I", status)


def _opaque(payload, pos):
    (n,) = struct.unpack_from(">I", payload, pos)
    return pos + 4 + (n + 3) // 4 * 4


def compound_ops(payload):
    """The operation numbers of an NFSv4 COMPOUND call, as far as they can
    be walked: the arguments of the operations vfsd's CLOSE and simple
    compounds start with are skipped, and the walk stops at any other."""
    ops = []
    try:
        pos = 24
        pos = _opaque(payload, pos + 4)          # credential
        pos = _opaque(payload, pos + 4)          # verifier
        pos = _opaque(payload, pos)              # tag
        pos += 4                                 # minorversion
        (count,) = struct.unpack_from(">I", payload, pos)
        pos += 4
        for _ in range(count):
            (op,) = struct.unpack_from(">I", payload, pos)
            pos += 4
            ops.append(op)
            if op == 22:                         # PUTFH
                pos = _opaque(payload, pos)
            elif op in (24, 10):                 # PUTROOTFH, GETFH
                pass
            elif op == 15:                       # LOOKUP
                pos = _opaque(payload, pos)
            elif op == 3:                        # ACCESS
                pos += 4
            elif op == 9:                        # GETATTR: a bitmap4
                (n,) = struct.unpack_from(">I", payload, pos)
                pos += 4 + 4 * n
            elif op == 5:                        # COMMIT
                pos += 12
            elif op == 4:                        # CLOSE
                pos += 20
            else:
                break
    except struct.error:
        pass
    return ops


def v4_op_is(opnum):
    """A `lose` predicate: the NFSv4 COMPOUNDs holding operation opnum."""
    return lambda prog, vers, p, payload: (
        (prog, vers, p) == (NFS_PROGRAM, 4, NFSPROC4_COMPOUND)
        and opnum in compound_ops(payload))


class RpcRelay:
    def __init__(self, target_port, drop=(), target_addr="127.0.0.1",
                 lose=None, lose_count=1, rewrite=None):
        """drop: a set of (program, version, procedure) whose calls are
        swallowed.  lose, rewrite: see the head comment."""
        self.target = (target_addr, target_port)
        self.drop = set(drop)
        self.dropped = 0
        self.lose = lose
        self.lose_left = lose_count
        self.lost = 0
        self._lose_xids = set()
        self.rewrite = rewrite
        self.rewritten = 0
        self._rewrite_xids = set()
        self.calls = []
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
            replies = (self._replies_losing if self.lose or self.rewrite
                       else self._replies)
            threading.Thread(target=replies, args=(s, c), daemon=True).start()

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
                    if mtype == 0 and self.lose:
                        with self._lock:
                            if (self.lose_left > 0
                                    and self.lose(prog, vers, proc, payload)):
                                self.lose_left -= 1
                                self._lose_xids.add(_xid)
                    if mtype == 0 and self.rewrite and self.rewrite[0](
                            prog, vers, proc, payload):
                        with self._lock:
                            self._rewrite_xids.add(_xid)
                    if mtype == 0:
                        ops = (tuple(compound_ops(payload))
                               if (prog, vers, proc) == (NFS_PROGRAM, 4, NFSPROC4_COMPOUND)
                               else ())
                        with self._lock:
                            self.calls.append((prog, vers, proc, len(payload), ops))
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

    def _replies_losing(self, src, dst):
        """_replies record by record: a reply to a call to lose is not
        passed on, and both connections are reset instead; a reply to a
        call to rewrite is passed on changed, as one fragment."""
        try:
            while True:
                raw, payload = self._record(src)
                if len(payload) >= 4:
                    (xid,) = struct.unpack(">I", payload[:4])
                    with self._lock:
                        hit = xid in self._lose_xids
                        if hit:
                            self._lose_xids.discard(xid)
                            self.lost += 1
                        change = xid in self._rewrite_xids
                        if change:
                            self._rewrite_xids.discard(xid)
                            self.rewritten += 1
                    if change:
                        payload = self.rewrite[1](payload)
                        raw = struct.pack(">I", 0x80000000 | len(payload)) + payload
                    if hit:
                        for sock in (dst, src):
                            with contextlib.suppress(OSError):
                                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                struct.pack("ii", 1, 0))
                                # wakes the thread reading it; stop()
                                # closes it
                                sock.shutdown(socket.SHUT_RDWR)
                        return
                dst.sendall(raw)
        except (OSError, EOFError):
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
