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
    split           replies go out one byte per write
"""
import os
import struct
import subprocess
import sys
import threading
import time

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
READDIR, NAME = 12, 104


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
            send(pkt)
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
