"""Soak figures for scripts/bench.py (loaded by it): 2,000 jobs with random faults, growth of memory and descriptors.

Targets: soak_rss_growth_mb <= 10, soak_fd_growth <= 3.
"""

from __future__ import annotations

from soak import soak


def bench_soak() -> dict[str, float]:
    figures = soak(2000)
    return {"soak_rss_growth_mb": figures["soak_rss_growth_mb"], "soak_fd_growth": figures["soak_fd_growth"]}


SECTIONS = [("soak", bench_soak)]
TARGETS = {
    "soak_rss_growth_mb": lambda r: r["soak_rss_growth_mb"] <= 10,
    "soak_fd_growth": lambda r: r["soak_fd_growth"] <= 3,
}
