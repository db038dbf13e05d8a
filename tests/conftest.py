"""Shared fixtures: the outcome matrix of tests/test_bad_input.py."""

import pytest

_MATRIX = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def bad_input_matrix(request):
    """Dict ``(target, case) -> outcome`` printed at the end of the session."""
    return request.config.stash.setdefault(_MATRIX, {})


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
