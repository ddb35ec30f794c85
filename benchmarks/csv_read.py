"""How fast batch reads CSV rows, before any case is answered: microseconds per row through
`read_csv`, for plain rows, rows with quoted cells, and a European export (';', Windows-1252).

    .venv/bin/python -m benchmarks.csv_read [--rows N]

Timed in process CPU time, which other programs on a shared machine disturb far less than wall
time (on 2 busy cores the wall time of the same run varied threefold). Reading is a part of
every batch's time per case; the answer cache makes the rest small for repeated cases, so this
is the floor. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

from guidance_rules.cli.inputs import CsvForm, read_csv

SHAPES = {
    "plain": (b"site,injectate,anatomy_variance,palpable\n", b"knee,prp,obesity;effusion,true\nhip,cell_based,,false\n", CsvForm()),
    "quoted": (
        b"site,injectate,anatomy_variance,palpable\n",
        b'knee,"prp","obesity;effusion",true\n"hip",cell_based,"",false\n',
        CsvForm(),
    ),
    "european": (
        b"site;injectate;anatomy_variance;palpable\r\n",
        "knee;prp;obesity;true\r\nhip;cell_based;;false\r\n".encode("cp1252"),
        CsvForm(";", "cp1252"),
    ),
}


def per_row(header: bytes, pair: bytes, form: CsvForm, rows: int, repeat: int = 5) -> tuple[float, float]:
    data = header + pair * (rows // 2)
    seconds = []
    for _ in range(repeat):
        start = time.process_time()
        count = sum(1 for _ in read_csv(io.BytesIO(data), form=form))
        seconds.append(time.process_time() - start)
    return statistics.median(seconds) * 1e6 / count, min(seconds) * 1e6 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    for name, (header, pair, form) in SHAPES.items():
        median, best = per_row(header, pair, form, args.rows)
        print(f"{name:<10} median {median:.1f} µs CPU a row (min {best:.1f}; {args.rows:,} rows, median of 5)")


if __name__ == "__main__":
    main()
