"""wrk, the C load generator the tail, ceiling and profile sections drive: a script that
POSTs one JSON body, and a run's requests, percentiles and rate from what wrk prints."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def installed() -> bool:
    return shutil.which("wrk") is not None


def post_script(path: Path, body: str) -> Path:
    """A wrk script that POSTs `body` (JSON) to the URL it is given."""
    path.write_text(
        f"wrk.method = 'POST'\nwrk.body = '{body}'\n"
        "wrk.headers['Content-Type'] = 'application/json'\n"
    )
    return path


def run(url: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    """One thread, `connections` connections, for `seconds`: requests, p50/p99 (ms) and
    requests per second. Any non-2xx answer or socket error is raised, never averaged in."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors at {url}:\n{output}")
    found = {"requests": float(_number(r"(\d+) requests in", output))}
    for percent in ("50", "99"):
        value, unit = re.search(rf"{percent}%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        found[f"p{percent}_ms"] = float(value) * UNITS[unit]
    found["per_second"] = float(_number(r"Requests/sec:\s+([\d.]+)", output))
    return found


def _number(pattern: str, output: str) -> str:
    found = re.search(pattern, output)
    if found is None:
        raise RuntimeError(f"wrk printed no {pattern!r}:\n{output}")
    return found.group(1)
