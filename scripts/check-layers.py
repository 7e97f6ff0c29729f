#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
check-layers.py - fail when a source file includes a layer above its own.

The layers, bottom up (docs/architecture.md, "Layers"):

  lib/       includes lib/ only, and none of FUSE, libnfs, libssh2, OpenSSL
  backends/  includes lib/ and backends/; no FUSE
  guestfs/   includes lib/, backends/ and guestfs/; no FUSE, libnfs, libssh2
  vfsd/      may include everything

tests/, fuzz/, bench/ and the rest are not layers and are not checked.

Every '#include "..."' in a .c or .h file under a layer is resolved (beside
the including file first, as the compiler does, then from the top of the
tree) and the first folder of the result is the layer it belongs to.  A
violation is printed as file:line and makes the exit status 1, unless
scripts/layers-allow.txt lists it as "file -> header": known violations
that later steps of issue 16 remove.  An allowlisted line that is no longer
a violation fails too, so the list only shrinks.

usage: check-layers.py [TOP]   (default: the folder above this script)
"""

import os
import re
import sys

# layer -> the layers its quoted includes may name
ALLOWED = {
    'lib': {'lib'},
    'backends': {'lib', 'backends'},
    'guestfs': {'lib', 'backends', 'guestfs'},
    'vfsd': {'lib', 'backends', 'guestfs', 'vfsd'},
}

# system headers of the libraries a layer must not depend on:
# (pattern on the <...> name, what it is, layers that may include it)
SYSTEM = [
    (re.compile(r'^fuse'), 'FUSE', {'vfsd'}),
    (re.compile(r'^nfsc/'), 'libnfs', {'backends', 'vfsd'}),
    (re.compile(r'^libssh2'), 'libssh2', {'backends', 'vfsd'}),
    (re.compile(r'^openssl/'), 'OpenSSL', {'backends', 'vfsd'}),
]

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')


def layer_of(relpath):
    first = relpath.split('/', 1)[0]
    return first if first in ALLOWED else None


def resolve(top, src, name):
    """The included file's path relative to top, as the compiler finds it
    (beside the including file, then -I top); None if outside the tree."""
    for base in (os.path.dirname(os.path.join(top, src)), top):
        cand = os.path.normpath(os.path.join(base, name))
        if os.path.exists(cand):
            break
    else:
        # not found: name it as written from the top (a missing header is
        # the compiler's business, the layer it names is still checked)
        cand = os.path.normpath(os.path.join(top, name))
    rel = os.path.relpath(cand, top)
    return None if rel.startswith('..') else rel


def sources(top):
    for layer in sorted(ALLOWED):
        for dirpath, dirnames, files in os.walk(os.path.join(top, layer)):
            dirnames.sort()
            for f in sorted(files):
                if f.endswith(('.c', '.h')):
                    yield os.path.relpath(os.path.join(dirpath, f), top)


def violations(top):
    """(file, line, header, why) for every include that breaks a rule."""
    out = []
    for src in sources(top):
        layer = layer_of(src)
        with open(os.path.join(top, src), encoding='utf-8',
                  errors='replace') as fh:
            for n, line in enumerate(fh, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                kind, name = m.groups()
                if kind == '"':
                    target = resolve(top, src, name)
                    tl = layer_of(target) if target else None
                    if tl and tl not in ALLOWED[layer]:
                        out.append((src, n, target,
                                    f'{layer}/ may not include {tl}/'))
                    continue
                for pat, what, may in SYSTEM:
                    if pat.match(name) and layer not in may:
                        out.append((src, n, name,
                                    f'{layer}/ may not depend on {what}'))
    return out


def read_allow(path):
    """{(file, header): line number in the allowlist}"""
    allow = {}
    if not os.path.exists(path):
        return allow
    with open(path, encoding='utf-8') as fh:
        for n, line in enumerate(fh, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            parts = [p.strip() for p in line.split('->')]
            if len(parts) != 2 or not all(parts):
                sys.exit(f'{path}:{n}: expected "file -> header", got {line!r}')
            allow[tuple(parts)] = n
    return allow


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.abspath(sys.argv[1] if len(sys.argv) > 1
                          else os.path.dirname(here))
    allow_path = os.path.join(top, 'scripts', 'layers-allow.txt')
    allow = read_allow(allow_path)
    used = set()
    bad = 0
    for src, n, header, why in violations(top):
        if (src, header) in allow:
            used.add((src, header))
            continue
        print(f'{src}:{n}: includes {header}: {why} '
              '(docs/architecture.md, "Layers")')
        bad += 1
    for key, n in sorted(allow.items(), key=lambda kv: kv[1]):
        if key not in used:
            print(f'{os.path.relpath(allow_path, top)}:{n}: '
                  f'{key[0]} -> {key[1]} is not (or no longer) a violation: '
                  'delete the line')
            bad += 1
    if bad:
        print(f'check-layers: {bad} problem(s)')
        return 1
    print(f'check-layers: ok ({len(used)} allowlisted)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
