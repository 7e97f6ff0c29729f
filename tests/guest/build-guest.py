#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Build the test guest: a Debian kernel and a tiny initramfs whose init
runs the verifying writer (writer.c) on the first virtio disk.

Only Debian packages go in: the kernel image of linux-image-cloud-amd64
(falling back to linux-image-amd64) and busybox-static, fetched with
`apt-get download` (or taken from apt's own archive cache) and unpacked
with `dpkg-deb -x`; nothing is installed on this machine.  The writer is
compiled here with gcc -static.

The result is cached under CACHE/KEY/ (vmlinuz, initrd.gz), KEY naming
the package versions and a hash of this directory's sources, so a second
run costs nothing and a change to the writer rebuilds.

    build-guest.py [--cache DIR]     prints "KERNEL INITRD" on success

CACHE defaults to $VFSD_GUEST_CACHE, else /var/cache/vfsd-test-guest.
Exit status 2 with a reason on stderr when something it needs is missing
(no apt, no network to the Debian mirror, no static libc)."""
import argparse
import glob
import gzip
import hashlib
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL_META = ("linux-image-cloud-amd64", "linux-image-amd64")
BUSYBOX = "busybox-static"
# the drivers the guest needs that Debian builds as modules; their own
# dependencies are read from each module's .modinfo and loaded first
WANTED = ("virtio_pci", "virtio_blk")


class Missing(Exception):
    pass


class Refused(Exception):
    """Something here is not safe to use (no package list refresh helps)."""


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode:
        raise Missing("%s failed (%d): %s" % (" ".join(cmd), r.returncode,
                                              (r.stderr or r.stdout).strip()[-400:]))
    return r.stdout


def candidate(pkg):
    """Version apt would install of pkg, or None."""
    try:
        out = run(["apt-cache", "policy", pkg])
    except (Missing, FileNotFoundError):
        return None
    m = re.search(r"Candidate:\s*(\S+)", out)
    return m.group(1) if m and m.group(1) != "(none)" else None


def kernel_package():
    for meta in KERNEL_META:
        if not candidate(meta):
            continue
        for line in run(["apt-cache", "depends", meta]).splitlines():
            m = re.match(r"\s*Depends:\s*(linux-image-\S+)", line)
            if m and candidate(m.group(1)):
                return m.group(1)
    raise Missing("no kernel package: apt knows neither of %s (run apt-get update)"
                  % " ".join(KERNEL_META))


def fetch(pkg, version, into, apt_opts):
    """The .deb of pkg at version: apt's archive cache or apt-get download
    (which checks it against the signed archive index), and only a .deb
    that says it is that package at that version."""
    name = "%s_%s_amd64.deb" % (pkg, version.replace(":", "%3a"))
    deb = os.path.join("/var/cache/apt/archives", name)
    if not os.path.exists(deb):
        run(["apt-get", "download", "-q"] + apt_opts + ["%s=%s" % (pkg, version)],
            cwd=into)
        deb = os.path.join(into, name)
        if not os.path.exists(deb):
            raise Missing("apt-get download %s=%s left no %s" % (pkg, version, name))
    got = run(["dpkg-deb", "-f", deb, "Package", "Version"])
    fields = dict(re.findall(r"^(\w+): (\S+)$", got, re.M))
    if fields.get("Package") != pkg or fields.get("Version") != version:
        raise Missing("%s is not %s %s: %s" % (deb, pkg, version, got.strip()))
    return deb


def download_dir(work):
    """A directory for apt-get download that nobody else can write, and
    the apt options for it: apt drops privileges to _apt, which gets the
    directory; without that user apt stays root."""
    dl = os.path.join(work, "dl")
    os.mkdir(dl, 0o700)
    try:
        apt_user = pwd.getpwnam("_apt")
    except KeyError:
        return dl, ["-o", "APT::Sandbox::User=root"]
    os.chown(dl, apt_user.pw_uid, -1)
    return dl, []


def check_cache(cache):
    """The cache's builds are booted and trusted: it must be ours and
    nobody else's to write (it is made 0755 when missing)."""
    os.makedirs(cache, mode=0o755, exist_ok=True)
    st = os.stat(cache)
    if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Refused("the guest cache %s must belong to uid %d and be writable by "
                      "nobody else (it is uid %d, mode %o): builds found there are "
                      "booted as they are" % (cache, os.geteuid(), st.st_uid,
                                              stat.S_IMODE(st.st_mode)))


def source_hash():
    h = hashlib.sha256()
    for name in sorted(os.listdir(HERE)):
        if not os.path.isfile(os.path.join(HERE, name)):
            continue
        with open(os.path.join(HERE, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read())
    return h.hexdigest()[:16]


def modinfo_depends(path):
    with open(path, "rb") as f:
        data = f.read()
    m = re.search(rb"\0depends=([^\0]*)\0", data)
    return [d.decode() for d in m.group(1).split(b",") if d] if m else []


def module_order(moddir):
    """Module files (name -> path) and a load order for WANTED and all
    they depend on."""
    paths = {}
    for path in glob.glob(os.path.join(moddir, "**", "*.ko"), recursive=True):
        paths[os.path.basename(path)[:-3].replace("-", "_")] = path
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        if name not in paths:
            raise Missing("kernel module %s is not in the kernel package" % name)
        for dep in modinfo_depends(paths[name]):
            visit(dep.replace("-", "_"))
        order.append(name)
    for name in WANTED:
        visit(name)
    return paths, order


def cpio_newc(entries):
    """An initramfs archive (cpio newc) of entries (path, mode, data, rdev):
    written here so that device nodes need no privileges."""
    out = bytearray()
    ino = 1

    def pad(n):
        return b"\0" * ((4 - n % 4) % 4)
    for path, mode, data, rdev in entries + [("TRAILER!!!", 0, b"", (0, 0))]:
        name = path.encode() + b"\0"
        hdr = "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X" % (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name), 0)
        out += hdr.encode() + name
        out += pad(len(hdr) + len(name))
        out += data + pad(len(data))
        ino += 1
    return bytes(out)


def build(cache):
    kpkg = kernel_package()
    kver, bver = candidate(kpkg), candidate(BUSYBOX)
    if not bver:
        raise Missing("apt knows no %s (run apt-get update)" % BUSYBOX)
    key = "%s_%s_%s_%s" % (kpkg, kver, bver, source_hash())
    key = re.sub(r"[^A-Za-z0-9._+-]", "_", key)
    dest = os.path.join(cache, key)
    kernel, initrd = os.path.join(dest, "vmlinuz"), os.path.join(dest, "initrd.gz")
    check_cache(cache)
    if os.path.exists(kernel) and os.path.exists(initrd):
        return kernel, initrd
    if not shutil.which("gcc"):
        raise Missing("gcc is not installed")
    work = tempfile.mkdtemp(prefix="guest-", dir=cache)
    try:
        # apt-get download (as _apt) must get into work/dl
        os.chmod(work, 0o755)
        dl, apt_opts = download_dir(work)
        for pkg, ver, sub in ((kpkg, kver, "k"), (BUSYBOX, bver, "b")):
            run(["dpkg-deb", "-x", fetch(pkg, ver, dl, apt_opts), os.path.join(work, sub)])
        vmlinuz = glob.glob(os.path.join(work, "k", "boot", "vmlinuz-*"))
        moddirs = glob.glob(os.path.join(work, "k", "lib", "modules", "*"))
        busybox = os.path.join(work, "b", "bin", "busybox")
        if not vmlinuz or not moddirs or not os.path.exists(busybox):
            raise Missing("unexpected package contents (kernel %s, busybox %s)"
                          % (vmlinuz, busybox))
        paths, order = module_order(moddirs[0])
        writer = os.path.join(work, "writer")
        run(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread",
             "-o", writer, os.path.join(HERE, "writer.c")])

        def read(p):
            with open(p, "rb") as f:
                return f.read()
        d, x, r = 0o040755, 0o100755, 0o100644
        entries = [("bin", d, b"", (0, 0)), ("dev", d, b"", (0, 0)),
                   ("dev/console", 0o020600, b"", (5, 1)),
                   ("proc", d, b"", (0, 0)), ("sys", d, b"", (0, 0)),
                   ("lib", d, b"", (0, 0)), ("lib/modules", d, b"", (0, 0)),
                   ("init", x, read(os.path.join(HERE, "init")), (0, 0)),
                   ("bin/busybox", x, read(busybox), (0, 0)),
                   ("bin/writer", x, read(writer), (0, 0)),
                   ("lib/modules/order", r, ("\n".join(order) + "\n").encode(), (0, 0))]
        entries += [("lib/modules/%s.ko" % m, r, read(paths[m]), (0, 0)) for m in order]
        stage = os.path.join(work, "out")
        os.mkdir(stage)
        shutil.copyfile(vmlinuz[0], os.path.join(stage, "vmlinuz"))
        with gzip.open(os.path.join(stage, "initrd.gz"), "wb", compresslevel=6) as f:
            f.write(cpio_newc(entries))
        with open(os.path.join(stage, "SOURCES"), "w") as f:
            f.write("%s %s\n%s %s\nmodules: %s\n" % (kpkg, kver, BUSYBOX, bver,
                                                    " ".join(order)))
        # another build may have finished first; either result is the same
        try:
            os.rename(stage, dest)
        except OSError:
            if not os.path.exists(initrd):
                raise
        return kernel, initrd
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=os.environ.get("VFSD_GUEST_CACHE",
                                                      "/var/cache/vfsd-test-guest"))
    args = ap.parse_args()
    try:
        try:
            kernel, initrd = build(args.cache)
        except Missing as first:
            # package lists older than the mirror (a superseded version is
            # gone from it) or none yet: refresh them once and start over
            print("build-guest: %s; running apt-get update" % first, file=sys.stderr)
            run(["apt-get", "update", "-q"])
            kernel, initrd = build(args.cache)
    except (Missing, Refused, FileNotFoundError) as e:
        print("build-guest: %s" % e, file=sys.stderr)
        return 2
    print(kernel, initrd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
