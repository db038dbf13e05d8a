"""Helpers shared by the benchmark scripts: timing and markdown tables.

The scripts run as ``python benchmarks/bench_<topic>.py``, so this folder is
on their import path.
"""

import time


def best_time(function, repeats):
    """Smallest wall time of ``repeats`` calls of ``function``, and its last result.

    The minimum is the least disturbed run on a shared machine; compare it
    only with times measured in the same run.
    """
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def table(header, rows):
    """A markdown table; cells are formatted with ``str``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
