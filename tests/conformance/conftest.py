"""pytest setup for the conformance tests: makes `import ctorch` (python/ctorch) and
`import harness` work, and writes the case table of this run to build/conformance.json
at the end of the session: {"<op>": {"cases": N, "passed": M}, ...}."""
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for p in (ROOT / "python", HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import harness  # noqa: E402  (the module the test files import: one shared table)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CTORCH_CONFORMANCE_CHILD"):
        return  # a run inside a test (another vector path): the parent run writes the table
    out = ROOT / "build" / "conformance.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(dict(sorted(harness.RESULTS.items())), indent=1) + "\n")
    os.replace(tmp, out)
