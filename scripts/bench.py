"""Benchmarks: figures printed beside a baseline measured in the same run (these machines are noisy).

    python scripts/bench.py            # a readable table
    python scripts/bench.py --json     # the same, with one JSON object as the last line

Keys and targets:
- bridge_roundtrip_us_p50 (main thread -> loop -> main thread, a no-op job through the public API) beside
  bridge_baseline_us_p50 (bare ``run_coroutine_threadsafe(noop).result()``): target at most 2x.
- pump_us_per_event: draining 10,000 completion events of distinct jobs, each with a no-op callback: at most 2 us.
- pump_idle_us: one pump of an empty outbox: at most 20 us.
Further sections register themselves in SECTIONS (ComfyUI throughput, progress latency, ...).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bootstrap import ensure_importable

ensure_importable()

from movie_director.clients import local  # noqa: E402
from movie_director.clients.scratch import scratch_dir  # noqa: E402
from movie_director.runtime import BackendConfig, Job, JobState, Runtime  # noqa: E402
from movie_director.runtime.bridge import JobHandle  # noqa: E402
from movie_director.runtime.outbox import Finished  # noqa: E402


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def bench_bridge(rounds: int = 2000) -> dict[str, float]:
    rt = Runtime(output_root=scratch_dir("md-bench-"))
    rt.register_backend("local", local.factory, BackendConfig(name="local", concurrency=4))
    rt.start()

    async def noop() -> None:
        return None

    for _ in range(200):  # warm up both paths
        rt.submit("local", "noop").wait(5)
        rt.loop_thread.submit(noop()).result()
    ours: list[float] = []
    bare: list[float] = []
    # Interleave the two so that machine noise hits both alike.
    for _ in range(rounds):
        t0 = time.perf_counter()
        rt.submit("local", "noop").wait(5)
        t1 = time.perf_counter()
        rt.loop_thread.submit(noop()).result()
        t2 = time.perf_counter()
        ours.append((t1 - t0) * 1e6)
        bare.append((t2 - t1) * 1e6)
        if len(rt.jobs()) > 150:
            for h in rt.jobs():
                h.dispose()
    rt.stop()
    return {"bridge_roundtrip_us_p50": p50(ours), "bridge_baseline_us_p50": p50(bare)}


def bench_pump(events: int = 10_000, repeats: int = 7) -> dict[str, float]:
    rt = Runtime(output_root=scratch_dir("md-bench-"))
    per_event: list[float] = []
    for _ in range(repeats):
        handles = []
        for i in range(events):
            job = Job(id=f"job-{i}", backend="local", kind="noop", state=JobState.SUCCEEDED)
            handle = JobHandle(rt, job)
            handle.on_complete(lambda job: None)
            handles.append((handle, job.snapshot()))
        for handle, job in handles:
            rt.outbox.post(Finished(handle, job))
        t0 = time.perf_counter()
        n = 0
        while len(rt.outbox):
            n += rt.pump(budget=1.0)
        per_event.append((time.perf_counter() - t0) * 1e6 / n)
    idle: list[float] = []
    for _ in range(2000):
        t0 = time.perf_counter()
        rt.pump()
        idle.append((time.perf_counter() - t0) * 1e6)
    return {"pump_us_per_event": p50(per_event), "pump_idle_us": p50(idle)}


SECTIONS: list[tuple[str, Callable[[], dict[str, float]]]] = [
    ("bridge", bench_bridge),
    ("pump", bench_pump),
]


def load_optional_sections() -> None:
    """Backends add their own sections in scripts/bench_*.py (each defines ``SECTIONS``)."""
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        namespace: dict[str, Any] = {"__name__": path.stem, "__file__": str(path)}
        exec(compile(path.read_text(), str(path), "exec"), namespace)
        SECTIONS.extend(namespace.get("SECTIONS", []))
        TARGETS.update(namespace.get("TARGETS", {}))


TARGETS = {
    "bridge_roundtrip_us_p50": lambda r: r["bridge_roundtrip_us_p50"] <= 2 * r["bridge_baseline_us_p50"],
    "pump_us_per_event": lambda r: r["pump_us_per_event"] <= 2.0,
    "pump_idle_us": lambda r: r["pump_idle_us"] <= 20.0,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--only", help="comma-separated section names")
    args = parser.parse_args(argv)
    load_optional_sections()
    wanted = set(args.only.split(",")) if args.only else None
    results: dict[str, float] = {}
    for name, fn in SECTIONS:
        if wanted and name not in wanted:
            continue
        figures = fn()
        results.update({k: round(v, 3) for k, v in figures.items()})
        for key, value in figures.items():
            check = TARGETS.get(key)
            try:
                verdict = "" if check is None else ("  (target met)" if check(results) else "  (TARGET MISSED)")
            except KeyError:  # the baseline comes later in the same section
                verdict = ""
            print(f"{key:32s} {value:12.3f}{verdict}")
    if args.json:
        print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
