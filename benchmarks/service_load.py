"""Load benchmark of the CDS Hooks service (issue 12): an order-select call with one injection
order, sent open-loop at a fixed rate (each request leaves on schedule whether or not earlier
ones have returned, so queueing shows up in the latency instead of slowing the sender).

    .venv/bin/python -m benchmarks.service_load                    # 200 req/s for 20 s, 1 worker
    .venv/bin/python -m benchmarks.service_load --rate 300 --workers 2 --seconds 30
    .venv/bin/python -m benchmarks.service_load --db postgresql://... --json out.json
    .venv/bin/python -m benchmarks.service_load --db postgresql       # a throwaway cluster, as the tests start

Target: p99 <= 50 ms at 300 requests/s with 2 workers on 2 cores. The load generator runs on the same cores,
so the figure is pessimistic. A measurement, not a test: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.service.conftest import Server, throwaway_postgres
from tests.service.fhir_examples import SCT, bmi, coding, hook_request, injection, searchset

SITES = ["24136001", "49076000", "85537004", "70258002"]  # hip, knee, glenohumeral, ankle joints


def request_body(i: int) -> dict[str, Any]:
    body = hook_request(
        injection([coding(SCT, SITES[i % len(SITES)])]),
        prefetch={"conditions": searchset(), "observations": searchset(bmi(24.0 + i % 12)), "procedures": searchset()},
    )
    body["hookInstance"] = str(uuid.uuid4())
    return body


class Connection:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams: a load generator that costs
    far less CPU than a full client library, so more of the 2 cores go to the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def post(self, host: str, path: str, body: bytes) -> tuple[int, bytes]:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload


async def run(url: str, rate: float, seconds: float, connections: int) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    path = "/cds-services/guidance-rules-order-select"
    bodies = [json.dumps(request_body(i)).encode() for i in range(200)]
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(Connection(*await asyncio.open_connection(host, int(port))))
    latencies: list[float] = []
    errors = 0

    async def one(i: int, record: bool = True) -> None:
        nonlocal errors
        start = time.perf_counter()
        conn = await pool.get()
        try:
            status, payload = await conn.post(host, path, bodies[i % len(bodies)])
            if status != 200 or len(json.loads(payload)["cards"]) != 1:
                errors += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            pool.put_nowait(conn)
        if record:
            latencies.append(time.perf_counter() - start)

    for i in range(100):  # warm-up: connections, caches
        await one(i, record=False)
    errors = 0
    total = int(rate * seconds)
    began = time.perf_counter()
    tasks = []
    for i in range(total):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    while not pool.empty():
        pool.get_nowait().writer.close()
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000, 2)

    return {
        "offered_rate": rate,
        "requests": total,
        "errors": errors,
        "throughput_per_s": round(total / elapsed, 1),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


@contextmanager
def database(given: str | None, folder: str) -> Iterator[str]:
    """The database URL to serve with: the one given, a throwaway PostgreSQL cluster for
    'postgresql', or a SQLite file in `folder`."""
    if given == "postgresql":
        with throwaway_postgres() as url:
            yield url
    else:
        yield given or f"sqlite:///{folder}/bench.sqlite3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second offered (default 200)")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration (default 20)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--connections", type=int, default=32, help="client keep-alive connections (default 32)")
    parser.add_argument("--db", help="database URL, or 'postgresql' for a throwaway cluster (default: a SQLite file)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    before = os.getloadavg()[0]  # the machine's own load (1-minute average) before the server starts
    with tempfile.TemporaryDirectory() as folder, database(args.db, folder) as db:
        server = Server(db, "--insecure-no-auth", "--workers", str(args.workers))
        try:
            figures = asyncio.run(run(server.url, args.rate, args.seconds, args.connections))
        finally:
            server.stop()
    figures.update(
        workers=args.workers,
        database=db.split(":")[0].split("+")[0],
        load_average_before=round(before, 2),
        cores=os.cpu_count(),
        python=platform.python_version(),
        target="p99 <= 50 ms at 300 req/s with 2 workers",
    )
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
