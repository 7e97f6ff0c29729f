#!/usr/bin/env python3
"""Print 'NAME PASSED FAILED' from a meson testlog.json (one JSON per line),
counting the individual test cases each test reported ('N passed, N failed'
lines of our harness, check's summary) and falling back to one per test."""
import json
import re
import sys

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
