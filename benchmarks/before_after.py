"""Before/after benchmarks in one run: the package at a git revision ("before") and this checkout ("after"), each
timed in its own child process, alternating, so that both see the same machine at the same time (absolute times on
shared machines are noise; the ratio within one run is the figure). Used by mixer.py and frontend.py."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export(rev: str, dest: Path) -> None:
    """The `voicegen` package as it was at git revision `rev`, written under `dest` (dest/voicegen)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "voicegen"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def child(path: Path, module: str, call: str) -> dict:
    """`module.call` (a Python expression returning JSON-able data, e.g. "time_it(5)") evaluated in a fresh process
    whose `voicegen` is the one under `path` (an export, or ROOT for this checkout), `module` imported from
    benchmarks/ -> its result. RuntimeError if the call ran another `voicegen` (an import that puts this checkout
    first on sys.path, as importing benchmarks/throughput.py does, before voicegen was imported)."""
    env = dict(os.environ, PYTHONPATH=str(path))
    code = (f"import json, sys; sys.path.insert(0, {str(path)!r}); sys.path.insert(1, {str(ROOT / 'benchmarks')!r}); "
            f"import {module}; result = {module}.{call}; import voicegen; "
            f"print(json.dumps({{'result': result, 'package': voicegen.__file__}}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    answer = json.loads(out.strip().splitlines()[-1])
    if Path(answer["package"]).resolve().parent.parent != path.resolve():
        raise RuntimeError(f"the child meant to time the voicegen under {path} imported {answer['package']}")
    return answer["result"]


def write_report(name: str, baseline: str, out: str | None, **fields) -> Path:
    """The JSON report of a before/after run: date, command, machine and baseline revision, then `fields`; written
    to `out`, or to benchmarks/results/<name>-<date>.json -> its path."""
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "baseline": baseline,
    } | fields
    path = Path(out) if out else ROOT / "benchmarks" / "results" / f"{name}-{datetime.date.today()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    return path
