#!/usr/bin/env python3
"""Print 'NAME PASSED FAILED' from a meson testlog.json (one JSON per line),
counting the individual test cases each test reported ('N passed, N failed'
lines of our harness, check's summary) and falling back to one per test.

With --failures LABEL, print instead each failed test's name and the last
lines of its output, for the end of CI's log (which is all CI shows)."""
import json
import re
import sys

if sys.argv[1] == "--failures":
    label, path = sys.argv[2], sys.argv[3]
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            if t.get("result") in ("OK", "SKIP", "EXPECTEDFAIL"):
                continue
            print(f"=== {label}: {t.get('name')} {t.get('result')} "
                  f"after {t.get('duration', 0):.0f} s")
            out = (t.get("stdout") or "") + (t.get("stderr") or "")
            lines = out.splitlines()
            # our harness prints a FAIL line and a traceback per failed case
            keep = [i for i, l in enumerate(lines)
                    if re.match(r"^(FAIL|ERROR|not ok)\b", l)]
            shown = set()
            for i in keep[:4]:
                for j in range(max(0, i - 2), min(len(lines), i + 40)):
                    shown.add(j)
            for j in range(max(0, len(lines) - 25), len(lines)):
                shown.add(j)
            last = -1
            for j in sorted(shown):
                if j != last + 1:
                    print("  ...")
                print("  " + lines[j][:300])
                last = j
    sys.exit(0)

passed = failed = 0
with open(sys.argv[1]) as f:
    for line in f:
        t = json.loads(line)
        out = t.get("stdout") or ""
        ok = t.get("result") in ("OK", "SKIP", "EXPECTEDFAIL")
        m = re.findall(r"^(\d+) passed, (\d+) failed", out, re.M)
        c = re.findall(r"^\d+%: Checks: (\d+), Failures: (\d+), Errors: (\d+)", out, re.M)
        if m:
            p, fl = int(m[-1][0]), int(m[-1][1])
        elif c:
            checks, fails, errs = map(int, c[-1])
            p, fl = checks - fails - errs, fails + errs
        else:
            p, fl = (1, 0) if t.get("result") == "OK" else (0, 0)
        if not ok and fl == 0:
            fl = 1  # crashed or timed out before it could count
        passed += p
        failed += fl
print("tests", passed, failed)
