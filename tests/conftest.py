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


def matrix_lines(matrix, width=100):
    """The outcome matrix as text lines of at most ``width`` characters.

    Rows are targets, columns are cases; the columns are wrapped into blocks
    that fit the width, each block repeating the target names.
    """
    targets = list(dict.fromkeys(t for t, _ in matrix))
    cases = list(dict.fromkeys(c for _, c in matrix))
    name_width = max(len(t) for t in targets)
    column = {
        c: 2 + max(len(c), *(len(matrix.get((t, c), "")) for t in targets))
        for c in cases
    }
    blocks, block, used = [], [], name_width
    for case in cases:
        if block and used + column[case] > width:
            blocks.append(block)
            block, used = [], name_width
        block.append(case)
        used += column[case]
    blocks.append(block)
    lines = []
    for k, block in enumerate(blocks):
        if k:
            lines.append("")
        lines.append(" " * name_width + "".join(c.rjust(column[c]) for c in block))
        for target in targets:
            lines.append(
                target.ljust(name_width)
                + "".join(matrix.get((target, c), "").rjust(column[c]) for c in block)
            )
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    matrix = config.stash.get(_MATRIX, None)
    if not matrix:
        return
    write = terminalreporter.write_line
    terminalreporter.section("bad-input matrix (rows: targets, columns: cases)")
    write(
        "ok: correct finite result; ok+w: with a warning; VE/TE: ValueError/"
        "TypeError\nnaming the problem; -: not applicable; FAIL: wrong outcome. "
        "The columns come in\nblocks that fit 100 characters."
    )
    for line in matrix_lines(matrix):
        write(line)
