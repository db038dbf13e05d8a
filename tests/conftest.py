"""Shared fixtures: the outcome matrix of tests/test_bad_input.py, and the
environment of subprocesses that run this checkout's code."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_MATRIX = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def bad_input_matrix(request):
    """Dict ``(target, case) -> outcome`` printed at the end of the session."""
    return request.config.stash.setdefault(_MATRIX, {})


@pytest.fixture(scope="session")
def checkout_env():
    """Environment for subprocesses: skprob from this checkout, no display, one
    BLAS thread (threaded OpenBLAS calls can stall for seconds on a shared
    machine; one thread keeps examples and the docs build within seconds)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    env["MPLBACKEND"] = "Agg"
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    return env


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    matrix = config.stash.get(_MATRIX, None)
    if not matrix:
        return
    targets = list(dict.fromkeys(t for t, _ in matrix))
    cases = list(dict.fromkeys(c for _, c in matrix))
    width = max(len(t) for t in targets)
    cell = max(6, max(len(c) for c in cases) + 1)
    write = terminalreporter.write_line
    terminalreporter.section("bad-input matrix (rows: targets, columns: cases)")
    write(
        "ok: correct finite result; ok+w: with a warning; VE/TE: ValueError/"
        "TypeError naming the problem; -: not applicable; FAIL: wrong outcome"
    )
    write(" " * width + " " + "".join(c.rjust(cell) for c in cases))
    for target in targets:
        row = "".join(matrix.get((target, c), "").rjust(cell) for c in cases)
        write(target.ljust(width) + " " + row)
