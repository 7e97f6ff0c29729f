# SPDX-License-Identifier: GPL-2.0-or-later
"""Real tools copying a tree onto a directory, and a comparison of the
two trees (issue 15: `cp -a`, `tar -x` then `tar --compare`, `rsync -a`
twice must work and compare equal on every mount).

build_tree(root) makes the source tree in a local directory: files of
several sizes (a sparse one among them), nested directories, relative,
absolute, dangling and directory symlinks, hard links of two and three
names across directories, odd modes (set-gid directory and a mode-0 file
among them), a file owned by another user, odd names (space, UTF-8, a
newline) and sub-second atimes and mtimes on everything, symlinks
included.

cp_a(), tar_copy() and rsync_twice() run the tools against a destination
and return what they printed, for the caller to assert on; compare()
lists every difference between two trees, to a time precision the caller
states (mtime_precision() measures what a directory keeps).  Nothing here
asserts: a test gets the whole list of differences at once.
"""
import errno
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time

RSYNC = os.environ.get("RSYNC") or shutil.which("rsync") or "rsync"

# Times of the tree: whole seconds from BASE_TIME on, and nanoseconds with
# every digit set, so that truncation to any power of ten shows.
BASE_TIME = 1700000000
NSEC = 123456789
# owner of one file when run as root (no such user needs to exist)
OTHER_OWNER = (12345, 12346)

SPARSE_SIZE = 4 << 20

FILES = {
    # name: (content, mode)
    "empty": (b"", 0o644),
    "one": (b"1", 0o644),
    "big": (None, 0o644),                   # 64 KiB + 1, pseudo-random
    "dir/sub/deeper/file": (b"deep\n", 0o644),
    "dir/sub/file": (b"sub\n", 0o644),
    "mode0600": (b"0600\n", 0o600),
    "mode0751": (b"#!/bin/sh\n", 0o751),
    "mode0444": (b"read-only\n", 0o444),
    "mode0000": (b"no access\n", 0o000),
    "dir0700/secret": (b"secret\n", 0o640),
    "setgid/file": (b"in a set-gid directory\n", 0o664),
    "with space": (b"space\n", 0o644),
    "dir with space/inner file": (b"inner\n", 0o644),
    "caf\u00e9 \u65e5\u672c\u8a9e": (b"utf-8\n", 0o644),
    "new\nline": (b"newline\n", 0o644),
    "hard2-a": (b"two names\n", 0o644),
    "hard3-a": (b"three names\n", 0o640),
    "owned": (b"another owner\n", 0o644),
}
# hard links: extra names of a file above, in other directories
LINKS = {
    "dir/hard2-b": "hard2-a",
    "dir/hard3-b": "hard3-a",
    "dir/sub/hard3-c": "hard3-a",
}
SYMLINKS = {
    "link-rel": "dir/sub/file",
    "dir/sub/link-up": "../../one",
    "link-abs": "/etc/hostname",
    "dangling": "no such file",
    "link-dir": "dir/sub",
    "dir with space/link \u00e9": "inner file",
}
DIRS = {
    # name: mode (made in this order; every file's parent is here)
    "dir": 0o755,
    "dir/sub": 0o755,
    "dir/sub/deeper": 0o755,
    "dir0700": 0o700,
    "setgid": 0o755,          # 02775 once its children exist
    "setgid/sub": 0o750,
    "dir with space": 0o755,
    "empty dir": 0o751,
}
SETGID_DIR = ("setgid", 0o2775)


def _big_content():
    # pseudo-random and the same every run
    out, seed = bytearray(), b"vfsd"
    while len(out) < 65537:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:65537])


def build_tree(root):
    """Make the source tree at root (which must not exist) and return
    {relative path: (atime_ns, mtime_ns)} of what was set, '.' included."""
    os.mkdir(root)
    for d, mode in DIRS.items():
        os.mkdir(os.path.join(root, d))
        os.chmod(os.path.join(root, d), mode)
    for name, (content, mode) in FILES.items():
        p = os.path.join(root, name)
        with open(p, "wb") as f:
            f.write(_big_content() if content is None else content)
        os.chmod(p, mode)
    # data, a hole of almost 4 MiB, data at the end
    p = os.path.join(root, "sparse")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.pwrite(fd, b"head" * 1024, 0)
        os.pwrite(fd, b"tail" * 1024, SPARSE_SIZE - 4096)
    finally:
        os.close(fd)
    assert os.stat(p).st_blocks * 512 < SPARSE_SIZE // 2, "no hole in " + p
    for name, target in LINKS.items():
        os.link(os.path.join(root, target), os.path.join(root, name))
    for name, target in SYMLINKS.items():
        os.symlink(target, os.path.join(root, name))
    os.chmod(os.path.join(root, SETGID_DIR[0]), SETGID_DIR[1])
    if os.geteuid() == 0:
        os.chown(os.path.join(root, "owned"), *OTHER_OWNER)
    os.chmod(root, 0o755)

    # times last, deepest first, so that making an entry changes no time
    # already set; each path its own, atime after mtime
    names = sorted(walk(root), key=lambda rel: (-rel.count("/"), rel))
    names.remove(".")
    names.append(".")
    times, seen = {}, {}
    for i, rel in enumerate(names):
        p = os.path.join(root, rel)
        st = os.lstat(p)
        key = (st.st_dev, st.st_ino)
        if key in seen:         # another name of a file already set
            times[rel] = times[seen[key]]
            continue
        seen[key] = rel
        mtime = (BASE_TIME + 1000 * i) * 10**9 + NSEC
        atime = mtime + 500 * 10**9 + 111111111
        os.utime(p, ns=(atime, mtime), follow_symlinks=False)
        times[rel] = (atime, mtime)
    return times


def walk(root):
    """{relative path: lstat} of everything under root, '.' included,
    without following symlinks.  Each entry is looked at before anything
    reads it (a directory is listed after its own lstat), so that the
    atimes are those from before the walk."""
    out = {".": os.lstat(root)}
    todo = ["."]
    while todo:
        rel = todo.pop(0)
        with os.scandir(os.path.join(root, rel)) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            child = e.name if rel == "." else os.path.join(rel, e.name)
            out[child] = os.lstat(e.path)
            if stat.S_ISDIR(out[child].st_mode):
                todo.append(child)
    return out


# -- the tools ----------------------------------------------------------


def run(cmd):
    """Run cmd; a CompletedProcess with text output (bytes would hide the
    message a failing tool prints).  The tools run in a UTF-8 locale, so
    that the names they print are the names (in C they print octal
    escapes) and their messages are the English ones."""
    env = dict(os.environ, LC_ALL="C.UTF-8")
    return subprocess.run(cmd, capture_output=True, text=True, errors="backslashreplace",
                          env=env, stdin=subprocess.DEVNULL, timeout=600)


def describe(r):
    """What to say when a tool failed: its command, status and output."""
    args = r.args if isinstance(r.args, str) else " ".join(r.args)
    return "%s: exit %d\nstdout:\n%s\nstderr:\n%s" % (args, r.returncode, r.stdout, r.stderr)


def cp_a(src, dst):
    """cp -a SRC DST (DST must not exist)."""
    return run(["cp", "-a", "--", src, dst])


def tar_copy(src, dst, archive, fmt=None):
    """tar -c of SRC piped into tar -x in DST (made here), keeping the
    archive at `archive` for tar_compare.  fmt: tar's --format (None:
    tar's default, gnu, whose times are whole seconds; posix keeps
    nanoseconds)."""
    os.mkdir(dst)
    fmt_opt = '--format="$4"' if fmt else ""
    script = ('set -o pipefail; tar -C "$1" %s -cf - . | tee "$3" | tar -C "$2" -xpf -'
              % fmt_opt)
    return run(["bash", "-c", script, "tar_copy", src, dst, archive, fmt or ""])


def tar_compare(dst, archive):
    """tar --compare of the archive against DST: exit 0 and no output
    when tar finds no difference.  tar compares an mtime to what the
    archive holds: whole seconds in its default (gnu) format, nanoseconds
    in posix format; directories' and symlinks' times not at all."""
    return run(["tar", "-C", dst, "--compare", "-f", archive])


def rsync_twice(src, dst, hard_links=True, extra=()):
    """rsync -a[H] SRC/ DST/, then the same with -i: returns the two
    CompletedProcesses.  The second must print nothing (a no-op)."""
    opts = ["-aH" if hard_links else "-a"] + list(extra)
    first = run([RSYNC] + opts + ["--", src + "/", dst + "/"])
    second = run([RSYNC] + opts + ["-i", "--", src + "/", dst + "/"])
    return first, second


# -- comparing ----------------------------------------------------------


def trunc(ns, precision):
    return ns - ns % precision


def mtime_precision(d):
    """The power of ten of nanoseconds to which an mtime set on a
    new file, directory and symlink in d comes back truncated, as stat
    through d shows it at once: {"file": ns, "dir": ns, "symlink": ns},
    None where what comes back is no truncation of what was set (the old
    time, or a rounded one), and the errno's name where setting it
    failed."""
    out = {}
    want = BASE_TIME * 10**9 + NSEC
    for kind in ("file", "dir", "symlink"):
        p = os.path.join(d, ".precision-" + kind)
        if kind == "file":
            open(p, "wb").close()
        elif kind == "dir":
            os.mkdir(p)
        else:
            os.symlink("target", p)
        try:
            os.utime(p, ns=(want, want), follow_symlinks=False)
            got = os.lstat(p).st_mtime_ns
            out[kind] = next((prec for prec in (10**e for e in range(10))
                              if got == trunc(want, prec)), None)
        except OSError as e:
            out[kind] = errno.errorcode.get(e.errno, str(e.errno))
        finally:
            (os.rmdir if kind == "dir" else os.unlink)(p)
    return out


def link_groups(root, state=None):
    """The sets of names (of two or more) that are one regular file, by
    st_dev and st_ino."""
    state = state or walk(root)
    groups = {}
    for rel, st in state.items():
        if stat.S_ISREG(st.st_mode):
            groups.setdefault((st.st_dev, st.st_ino), set()).add(rel)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def _digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return h.hexdigest()
            h.update(chunk)


def _outcome(fn, path):
    """fn(path), or the name of the errno it failed with (an unreadable
    destination is one more difference, not the end of the comparison)."""
    try:
        return fn(path)
    except OSError as e:
        return "error " + errno.errorcode.get(e.errno, str(e.errno))


def _time_differs(src_ns, dst_ns, precision):
    # the destination holds the time, or it truncated to `precision`
    return dst_ns not in (src_ns, trunc(src_ns, precision))


def compare(src, dst, precision, links=True, owners=True, atimes=None,
            symlink_times=True):
    """Every difference between trees src and dst, as a list of strings
    (empty when they are equal): the same names, and for each its type,
    permission bits (set-id and sticky included), owner (with owners),
    size and content, symlink target, and mtime.  An mtime must be the
    source's, or the source's truncated to `precision` nanoseconds (the
    coarsest the destination keeps; NFSv3 keeps microseconds by name and
    nanoseconds by handle): never rounded, never coarser.  links: also
    the hard-link groups (by st_dev and st_ino) and each file's st_nlink.
    atimes: {relative path: (atime_ns, mtime_ns)} whose atimes dst must
    hold (what build_tree returned: cp -a keeps them; the source's own
    change as the tools read it).  symlink_times: False leaves out
    symlinks' times (for a server known to drop them).

    Every lstat is taken before any file is read, so that reading does
    not move an atime under the comparison."""
    s_state, d_state = walk(src), walk(dst)
    diffs = []
    for rel in sorted(set(s_state) - set(d_state)):
        diffs.append("%r: missing" % rel)
    for rel in sorted(set(d_state) - set(s_state)):
        diffs.append("%r: extra" % rel)
    to_read = []
    for rel in sorted(set(s_state) & set(d_state)):
        s, d = s_state[rel], d_state[rel]

        def differ(what, a, b):
            if a != b:
                diffs.append("%r: %s %s, not %s" % (rel, what, b, a))
        differ("type", stat.S_IFMT(s.st_mode), stat.S_IFMT(d.st_mode))
        if stat.S_IFMT(s.st_mode) != stat.S_IFMT(d.st_mode):
            continue
        if not stat.S_ISLNK(s.st_mode):
            differ("mode", oct(stat.S_IMODE(s.st_mode)), oct(stat.S_IMODE(d.st_mode)))
        if owners:
            differ("owner", (s.st_uid, s.st_gid), (d.st_uid, d.st_gid))
        times = symlink_times or not stat.S_ISLNK(s.st_mode)
        if times and _time_differs(s.st_mtime_ns, d.st_mtime_ns, precision):
            diffs.append("%r: mtime_ns %d, not %d" % (rel, d.st_mtime_ns, s.st_mtime_ns))
        if times and atimes is not None and rel in atimes and \
                _time_differs(atimes[rel][0], d.st_atime_ns, precision):
            diffs.append("%r: atime_ns %d, not %d" % (rel, d.st_atime_ns, atimes[rel][0]))
        if stat.S_ISLNK(s.st_mode):
            differ("target", os.readlink(os.path.join(src, rel)),
                   _outcome(os.readlink, os.path.join(dst, rel)))
        elif stat.S_ISREG(s.st_mode):
            differ("size", s.st_size, d.st_size)
            if links:
                differ("st_nlink", s.st_nlink, d.st_nlink)
            to_read.append(rel)
    for rel in to_read:
        a = _digest(os.path.join(src, rel))
        b = _outcome(_digest, os.path.join(dst, rel))
        if a != b:
            diffs.append("%r: content differs%s" % (rel, "" if len(b) == len(a) else ": " + b))
    if links:
        a, b = link_groups(src, s_state), link_groups(dst, d_state)
        if a != b:
            diffs.append("hard-link groups %s, not %s" % (b, a))
    return diffs


def tar_name(rel):
    """A name as tar prints it (its "escape" quoting)."""
    return "./" + rel.replace("\\", "\\\\").replace("\n", "\\n")


class RealToolsSuite:
    """The real tools onto a mount (issue 15).

    A test class mixes this into harness.TestCase and sets `self.base` (a
    directory inside a vfsd mount) in setUp.  Each test builds the source
    tree in a local directory and copies it into a fresh subdirectory of
    the base.

    PRECISION: what mtime_precision() finds on the mount, by kind; the
    coarsest of them is the precision trees are compared to.  A kind
    whose times the server drops without an error is None there, and
    those times are left out of the comparison.
    LINKS_THROUGH_MOUNT: the names of one file show one st_ino and its
    st_nlink through the mount; where not (SFTP v3 carries neither),
    hard links are checked on the server's side, `behind(path)`.
    """
    PRECISION = {"file": 1, "dir": 1, "symlink": 1}
    LINKS_THROUGH_MOUNT = True
    maxDiff = None      # every difference in the failure message

    def behind(self, path):
        """path seen behind vfsd's back (None: not looked at)."""
        return None

    def setUp(self):
        super().setUp()
        self.d = os.path.join(self.base, "rt-%s-%d-%d" % (
            self._testMethodName, os.getpid(), time.monotonic_ns()))
        os.mkdir(self.d)
        self.addCleanup(shutil.rmtree, self.d, True)
        local = tempfile.mkdtemp(prefix="vfsd-realtools-")
        self.addCleanup(shutil.rmtree, local, True)
        self.src = os.path.join(local, "src")
        self.times = build_tree(self.src)
        self.archive = os.path.join(local, "tree.tar")
        self.precision = max(p for p in self.PRECISION.values() if p is not None)
        self.symlink_times = self.PRECISION["symlink"] is not None

    def assert_quiet(self, r):
        """The tool exited 0 and printed nothing."""
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""), describe(r))

    def check(self, dst, precision=None, links=True, atimes=None):
        """dst compares equal to the source (compare()); with links, its
        hard links are the source's, through the mount or behind it."""
        diffs = compare(self.src, dst, precision or self.precision,
                        links=links and self.LINKS_THROUGH_MOUNT, atimes=atimes,
                        symlink_times=self.symlink_times)
        server = self.behind(dst)
        if links and not self.LINKS_THROUGH_MOUNT and server is not None:
            want, got = link_groups(self.src), link_groups(server)
            if want != got:
                diffs.append("on the server: hard-link groups %s, not %s" % (got, want))
        self.assertEqual([], diffs)

    def test_mtime_precision(self):
        """The times a file, a directory and a symlink keep: all of it, or
        the same truncation every time (never rounded)."""
        self.assertEqual(mtime_precision(self.d), self.PRECISION)

    def test_cp_a(self):
        """cp -a: everything, atimes included."""
        dst = os.path.join(self.d, "copy")
        self.assert_quiet(cp_a(self.src, dst))
        self.check(dst, atimes=self.times)

    def test_tar_extract_then_compare(self):
        """tar -c | tar -x, then tar --compare, in tar's default format
        (gnu): its archive holds whole seconds, so the copy's times are
        the source's truncated to seconds, and that is what tar compares."""
        dst = os.path.join(self.d, "copy")
        self.assert_quiet(tar_copy(self.src, dst, self.archive))
        self.assert_quiet(tar_compare(dst, self.archive))
        self.check(dst, precision=max(self.precision, 10**9))

    def test_tar_posix_format(self):
        """The same in posix (pax) format, whose archive holds nanoseconds:
        tar --compare then reports "Mod time differs" for exactly the
        regular files whose mtime the mount did not keep in full, and
        nothing else (on a mount that keeps whole seconds, every file
        with a sub-second mtime: the limit of the destination, which no
        client can get around)."""
        dst = os.path.join(self.d, "copy")
        self.assert_quiet(tar_copy(self.src, dst, self.archive, "posix"))
        self.check(dst)
        state = walk(dst)
        # a name archived as a hard link to an earlier one is compared
        # for its linkage only
        with tarfile.open(self.archive) as tf:
            linked = {os.path.normpath(m.name) for m in tf.getmembers() if m.islnk()}
        lost = sorted(tar_name(rel) + ": Mod time differs"
                      for rel, st in state.items()
                      if stat.S_ISREG(st.st_mode) and rel in self.times
                      and os.path.normpath(rel) not in linked
                      and st.st_mtime_ns != self.times[rel][1])
        r = tar_compare(dst, self.archive)
        self.assertEqual((r.returncode, sorted(r.stdout.splitlines()), r.stderr),
                         (1 if lost else 0, lost, ""), describe(r))

    def assert_second_rsync(self, r):
        """The second rsync had nothing to do: it printed nothing, or
        where the server drops symlink times, exactly that it set each
        symlink's time again."""
        want = []
        if not self.symlink_times:
            want = sorted(".L..t...... %s -> %s" % (name, target)
                          for name, target in SYMLINKS.items())
        self.assertEqual((r.returncode, sorted(r.stdout.splitlines()), r.stderr),
                         (0, want, ""), describe(r))

    def need_rsync(self):
        if not shutil.which(RSYNC):
            self.skipTest("needs rsync (package rsync)")

    def test_rsync_twice(self):
        """rsync -a, then rsync -a -i: the second has nothing to do and
        says nothing (without -H, hard links become separate files)."""
        self.need_rsync()
        dst = os.path.join(self.d, "copy")
        first, second = rsync_twice(self.src, dst, hard_links=False)
        self.assert_quiet(first)
        self.assert_second_rsync(second)
        self.check(dst, links=False)

    def test_rsync_hard_links_twice(self):
        """rsync -aH, then rsync -aH -i: the same with hard links, which
        the second run finds in place only if the names of one file show
        one st_ino through the mount."""
        self.need_rsync()
        dst = os.path.join(self.d, "copy")
        first, second = rsync_twice(self.src, dst, hard_links=True)
        self.assert_quiet(first)
        self.assert_second_rsync(second)
        self.check(dst)
