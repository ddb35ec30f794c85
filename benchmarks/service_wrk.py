"""Saturation throughput of the CDS Hooks service with wrk (Debian's `wrk` package), the second of
the two ways the load is measured (the first, open-loop at a fixed rate, is `service_load`).
wrk is closed-loop: each connection sends its next request when the last is answered, so it
finds the most the service answers per second, and the latency at that load. One fixed
order-select body (one injection order, with prefetch).

    .venv/bin/python -m benchmarks.service_wrk [--workers 2] [--db postgresql] [--seconds 20] [--connections 32]

`--db postgresql` starts a throwaway PostgreSQL cluster (as the tests do). A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.service_load import database, request_body
from tests.service.conftest import Server

SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[%s]]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d %%d %%d %%d\\n", summary.requests, e.status, e.connect, e.read + e.write,
    e.timeout, latency:percentile(50), latency:percentile(99), latency.max, summary.duration))
end
"""


def run(url: str, seconds: int, connections: int, folder: str) -> dict[str, Any]:
    script = Path(folder) / "order-select.lua"
    script.write_text(SCRIPT % json.dumps(request_body(0)), encoding="utf-8")
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), f"{url}/cds-services/guidance-rules-order-select"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    match = re.search(r"RESULT" + r" (\d+)" * 9, out)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    requests, status, connect, read_write, timeouts, p50_us, p99_us, max_us, duration_us = map(int, match.groups())
    return {
        "requests": requests,
        "errors": status + connect + read_write + timeouts,
        # wrk's kinds: an answer other than 2xx/3xx, a failed connect, a failed read or write, and no answer
        # within wrk's 2 s timeout (counted, not in the latencies)
        "errors_by_kind": {"status": status, "connect": connect, "read_write": read_write, "timeout": timeouts},
        "throughput_per_s": round(requests / (duration_us / 1e6), 1),
        "p50_ms": round(p50_us / 1000, 2),
        "p99_ms": round(p99_us / 1000, 2),
        "max_ms": round(max_us / 1000, 2),
        "connections": connections,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20, help="duration (default 20)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--db", help="database URL, or 'postgresql' for a throwaway cluster (default: a SQLite file)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    before = os.getloadavg()[0]  # the machine's own load (1-minute average) before the server starts
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        db = stack.enter_context(database(args.db, folder))
        server = Server(db, "--insecure-no-auth", "--workers", str(args.workers))
        stack.callback(server.stop)
        figures = run(server.url, args.seconds, args.connections, folder)
    figures.update(
        workers=args.workers, database=db.split(":")[0].split("+")[0], cores=os.cpu_count(), load_average_before=round(before, 2)
    )
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
