#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""An SFTP subsystem that lies: sshd runs it (Sshd(subsystem=...)) in
place of internal-sftp.  It runs OpenSSH's sftp-server behind it and
passes packets both ways, changed as the mode file next to this script's
first argument says (read again for every request, so a test switches
modes while the mount runs):

    pass            nothing changed
    endless_readdir READDIR is answered by us, never with EOF: one new
                    name per reply, forever
    hold:T          requests of type T (a number) are never answered
    delay:T:S       replies to requests of type T go out S seconds late
                    (after replies to later requests)
    split           replies go out one byte per write
    lie:KIND        replies are broken as KIND says (see lie() below)
"""
import os
import struct
import subprocess
import sys
import threading
import time

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
READDIR, STATUS, HANDLE, DATA, NAME = 12, 101, 102, 103, 104


def lie(kind, pkt):
    """The packets sent instead of reply pkt (None: exit mid-packet)."""
    ptype, rid, body = pkt[4], pkt[5:9], pkt[9:]

    def packet(t, i, b):
        return struct.pack(">I", 5 + len(b)) + bytes([t]) + i + b
    if kind == "dup":
        return [pkt, pkt]
    if kind == "unknown_id":
        (i,) = struct.unpack(">I", rid)
        return [packet(ptype, struct.pack(">I", (i + 1000) & 0xffffffff), body)]
    if kind == "long_data" and ptype == DATA:
        (n,) = struct.unpack(">I", body[:4])
        return [packet(DATA, rid, struct.pack(">I", n + 16) + body[4:] + b"X" * 16)]
    if kind == "status_ok" and ptype == DATA:
        return [packet(STATUS, rid, struct.pack(">III", 0, 0, 0))]
    if kind == "big_handle" and ptype == HANDLE:
        return [packet(HANDLE, rid, struct.pack(">I", 300) + b"h" * 300)]
    if kind == "empty_handle" and ptype == HANDLE:
        return [packet(HANDLE, rid, struct.pack(">I", 0))]
    if kind == "name_count" and ptype == NAME:
        return [packet(NAME, rid, struct.pack(">I", 1 << 31) + body[4:])]
    if kind == "length_past" and ptype == HANDLE:
        return [packet(HANDLE, rid, struct.pack(">I", len(body) + 100) + body[4:])]
    if kind == "cut" and ptype in (DATA, HANDLE, NAME):
        return None
    return [pkt]


def read_exact(f, n):
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_packet(f):
    hdr = read_exact(f, 4)
    if hdr is None:
        return None
    (n,) = struct.unpack(">I", hdr)
    body = read_exact(f, n)
    return None if body is None else hdr + body


def main():
    mode_file = sys.argv[1]
    out = sys.stdout.buffer
    out_lock = threading.Lock()
    srv = subprocess.Popen([SFTP_SERVER], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, bufsize=0)

    cached = ["pass", 0.0]
    delayed = set()  # ids of requests whose replies go out late
    delayed_lock = threading.Lock()
    late_secs = ["0"]

    def mode():
        # looked at again at most every 50 ms: an endless server must
        # answer as fast as a real one
        now = time.monotonic()
        if now - cached[1] > 0.05:
            try:
                with open(mode_file) as f:
                    cached[0] = f.read().strip()
            except OSError:
                cached[0] = "pass"
            cached[1] = now
        return cached[0]

    def send(pkt):
        with out_lock:
            if mode() == "split":
                for i in range(len(pkt)):
                    out.write(pkt[i:i + 1])
                    out.flush()
            else:
                out.write(pkt)
                out.flush()

    def replies():
        while True:
            pkt = read_packet(srv.stdout)
            if pkt is None:
                os._exit(0)
            with delayed_lock:
                late = pkt[5:9] in delayed
                delayed.discard(pkt[5:9])
            if late:
                secs = float(late_secs[0])
                threading.Timer(secs, send, [pkt]).start()
                continue
            m = mode()
            out_pkts = lie(m[4:], pkt) if m.startswith("lie:") else [pkt]
            if out_pkts is None:
                with out_lock:
                    out.write(pkt[:len(pkt) // 2])
                    out.flush()
                os._exit(0)
            for p in out_pkts:
                send(p)
    threading.Thread(target=replies, daemon=True).start()

    seq = 0
    inp = sys.stdin.buffer
    while True:
        pkt = read_packet(inp)
        if pkt is None:
            break
        m = mode()
        ptype = pkt[4]
        if m.startswith("hold:") and ptype == int(m[5:]):
            continue
        if m.startswith("delay:") and ptype == int(m.split(":")[1]):
            late_secs[0] = m.split(":")[2]
            with delayed_lock:
                delayed.add(pkt[5:9])
        if m == "endless_readdir" and ptype == READDIR:
            seq += 1
            rid = pkt[5:9]
            name = b"n%d" % seq
            # one entry: name, longname, attributes (flags 0)
            body = (bytes([NAME]) + rid + struct.pack(">I", 1) +
                    struct.pack(">I", len(name)) + name +
                    struct.pack(">I", 0) + struct.pack(">I", 0))
            send(struct.pack(">I", len(body)) + body)
            continue
        srv.stdin.write(pkt)
    srv.stdin.close()
    srv.wait()


if __name__ == "__main__":
    main()
