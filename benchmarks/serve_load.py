"""Serving load: `trainwell serve` on loopback under a bounded load, against `Run.predict` in-process.

A logistic-regression run on the bundled breast-cancer data is served by uvicorn (one worker) in a subprocess.
Several client threads (`--clients`, default 4) each send a fixed number of requests, first single rows, then
batches of 256, and every response is checked (status 200, one prediction per row). Reported per request kind:
requests and rows per second, p50 and p99 latency, errors; the baseline is `Run.predict` called in-process on
the same rows (no HTTP, no JSON, no validation), so the ratio is what the service layer costs.

    .venv/bin/python benchmarks/serve_load.py                  # ~1 minute on 2 busy cores
    .venv/bin/python benchmarks/serve_load.py --write          # and append the table to RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from trainwell.data.sources import load_dataset
from trainwell.experiment import train

RESULTS = Path(__file__).parent / "RESULTS.md"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the server did not come up")


def load(url: str, rows: list[dict], batch: int, clients: int, per_client: int) -> dict[str, float]:
    """`clients` threads each send `per_client` requests of `batch` rows; latencies in ms."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def worker(offset: int) -> None:
        nonlocal errors
        with httpx.Client(timeout=30.0) as client:
            for i in range(per_client):
                start = (offset * per_client + i) * batch % max(1, len(rows) - batch)
                body = {"records": rows[start:start + batch]}
                tic = time.perf_counter()
                response = client.post(f"{url}/predict", json=body)
                ms = (time.perf_counter() - tic) * 1000
                ok = response.status_code == 200 and len(response.json()["predictions"]) == batch
                with lock:
                    latencies.append(ms)
                    errors += not ok

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    tic = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - tic
    n = clients * per_client
    return {"requests": n, "seconds": seconds, "rps": n / seconds, "rows_per_s": n * batch / seconds,
            "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
            "errors": errors}  # fmt: skip


def in_process(run: object, frame: pd.DataFrame, batch: int, n: int) -> dict[str, float]:
    """The baseline: `Run.predict` on the same batches, one after another."""
    latencies = []
    for i in range(n):
        start = i * batch % max(1, len(frame) - batch)
        tic = time.perf_counter()
        run.predict(frame.iloc[start:start + batch])  # type: ignore[attr-defined]
        latencies.append((time.perf_counter() - tic) * 1000)
    seconds = sum(latencies) / 1000
    return {"rps": n / seconds, "rows_per_s": n * batch / seconds, "p50_ms": float(np.percentile(latencies, 50)),
            "p99_ms": float(np.percentile(latencies, 99))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--single", type=int, default=200, help="single-row requests per client")
    parser.add_argument("--batched", type=int, default=20, help="256-row requests per client")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    frame = load_dataset("builtin:breast_cancer").frame
    features = frame.drop(columns="diagnosis")
    rows = features.to_dict("records")
    with tempfile.TemporaryDirectory() as tmp:
        run = train(data=frame, model="logistic_regression", run_dir=Path(tmp) / "run", quiet=True,
                    **{"data.target": "diagnosis"})  # fmt: skip
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [str(Path(sys.executable).parent / "trainwell"), "serve", str(run.dir), "--port", str(port)]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(url)
            load(url, rows, 1, 1, 20)  # warm-up, untimed
            results = []
            for label, batch, per_client in (("single row", 1, args.single), ("batch of 256", 256, args.batched)):
                served = load(url, rows, batch, args.clients, per_client)
                base = in_process(run, features, batch, max(20, per_client))
                results.append((label, served, base))
                print(f"{label}: served {served['rps']:.0f} req/s ({served['rows_per_s']:.0f} rows/s), p50 "
                      f"{served['p50_ms']:.1f} ms, p99 {served['p99_ms']:.1f} ms, {served['errors']} errors; "
                      f"in-process {base['rps']:.0f} calls/s, p50 {base['p50_ms']:.2f} ms", flush=True)  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=30)
    if args.write:
        write(results, args)


def write(results: list, args: argparse.Namespace) -> None:
    lines = [
        "", "## Serving load", "",
        "`benchmarks/serve_load.py`: `trainwell serve` (uvicorn, 1 worker) on loopback, a logistic regression on",
        f"breast_cancer; {args.clients} client threads, {args.single} single-row then {args.batched} 256-row requests",
        "each; every response checked. Baseline: `Run.predict` in-process on the same rows, one call after another.",
        "", f"### Run of {time.strftime('%Y-%m-%d')} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})", "",
        "| requests | served req/s | served rows/s | p50 ms | p99 ms | errors | in-process calls/s "
        "| in-process p50 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for label, s, b in results:
        lines.append(f"| {label} | {s['rps']:.0f} | {s['rows_per_s']:.0f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | "
                     f"{s['errors']} | {b['rps']:.0f} | {b['p50_ms']:.2f} |")  # fmt: skip
    with RESULTS.open("a") as f:
        f.write("\n".join(lines) + "\n")
    print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
