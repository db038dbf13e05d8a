"""Benchmark of the probability-row transforms.

1. ``entropy_normalize`` on Dirichlet rows (with exact zeros, 1e-300 entries
   and ties mixed in) against the per-row Newton loop of the original
   write-up and against ``scipy.optimize.brentq`` per row. Times are
   multiples of one ``scipy.special.softmax`` pass over the same array,
   measured in the same run (minimum of repeats).
2. ``perturb_max_proba`` with normal noise: accuracy against adaptive
   ``scipy.integrate.quad`` as the number of nodes grows (with the equally
   spaced rule in ``t`` of the write-up as the baseline), and time per row.

Run from the repository root::

    python benchmarks/bench_rows.py            # a fifth of the sizes, ~3 minutes
    python benchmarks/bench_rows.py --full     # 100,000 x 1,000 and 1,000,000 x 10

(with skprob installed, or ``PYTHONPATH=.`` from the repository root).
"""

import argparse
import sys
import time
import warnings

import numpy as np
from _common import best_time, table
from scipy import stats
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import logsumexp, ndtr, ndtri, softmax

from skprob import entropy_normalize, perturb_max_proba


def dirichlet_rows(n, m, alpha, seed=0, hard=True):
    """Dirichlet(alpha) rows with exact zeros, 1e-300 entries and ties."""
    rng = np.random.RandomState(seed)
    P = rng.dirichlet(np.full(m, alpha), size=n)
    if not hard:
        return P
    u = rng.uniform(size=P.shape)
    P[u < 0.02] = 0.0
    P[(u >= 0.02) & (u < 0.03)] = 1e-300
    tied = rng.uniform(size=n) < 0.1
    P[tied, 1] = P[tied, 0]
    P[P.sum(axis=1) == 0, 0] = 1.0
    P /= P.sum(axis=1, keepdims=True)
    return P


def entropy(Q):
    """Row entropies with 0 log 0 = 0 (NaN rows stay NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(Q > 0, -Q * np.log(np.where(Q > 0, Q, 1.0)), 0.0)
    terms[np.isnan(Q)] = np.nan
    return terms.sum(axis=1)


def newton_loop_row(p, target, tol=1e-10, max_iter=100):
    """The write-up's loop: Newton on H(gamma) at gamma = 1, re-applied."""
    for _ in range(max_iter):
        log_p = np.log(p)
        H = -np.sum(p * log_p)
        if abs(H - target) < tol:  # NaN never converges: runs to max_iter
            break
        dH = H * H - np.sum(p * log_p * log_p)  # dH/dgamma at 1 = -Var[log p]
        gamma = 1.0 - (H - target) / dH
        p = p**gamma
        p = p / p.sum()
    return p


def brentq_row(p, target):
    """brentq on H(exp(s)) with the entropy in log space; None if unreachable."""
    support = p > 0
    log_p = np.log(p[support])

    def row(s):
        a = np.exp(s) * log_p
        return np.exp(a - logsumexp(a))

    def gap(s):
        q = row(s)
        return -np.sum(q * np.log(np.where(q > 0, q, 1.0))) - target

    try:
        s = brentq(gap, -30, 30, xtol=1e-14, rtol=1e-14)
    except ValueError:  # no sign change: unreachable target
        return None
    out = np.zeros_like(p)
    out[support] = row(s)
    return out


def reachable_rows(P, target):
    """Rows whose target lies strictly between log(ties) and log(support).

    The support follows entropy_normalize's documented rule: entries below
    exp(-708) times their row's largest (subnormals among them) are zeros.
    """
    largest = P.max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        support = np.count_nonzero(np.log(P) - np.log(largest) >= -708.0, axis=1)
    ties = np.count_nonzero(P == largest, axis=1)
    return (target < np.log(support)) & (target > np.log(ties))


def order_violations(P, Q):
    """Rows where a larger input entry got a smaller output entry."""
    order = np.argsort(-P, axis=1, kind="stable")
    with np.errstate(invalid="ignore"):
        bad = np.diff(np.take_along_axis(Q, order, axis=1), axis=1) > 0
    return int(np.count_nonzero(bad.any(axis=1)))


def bench_entropy(n, m, n_loop, n_brentq, repeat):
    rows = []
    for alpha in [0.01, 0.1, 1.0]:
        P = dirichlet_rows(n, m, alpha)
        clean = dirichlet_rows(n_loop, m, alpha, hard=False)
        for fraction in [0.1, 0.5, 0.9]:
            target = fraction * np.log(m)
            reach = reachable_rows(P, target)
            t_softmax = t_ours = np.inf
            for _ in range(repeat):  # interleaved: the machine is shared
                t, _ = best_time(lambda: softmax(P, axis=1), 1)
                t_softmax = min(t_softmax, t)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t, (Q, n_iter) = best_time(
                        lambda: entropy_normalize(P, target, return_n_iter=True), 1
                    )
                t_ours = min(t_ours, t)
            err = np.abs(entropy(Q) - target)[reach]

            sub = P[:n_loop]
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                Q_loop = np.array([newton_loop_row(p, target) for p in sub])
                t_loop = (time.perf_counter() - start) * n / n_loop
                # the loop on rows without injected zeros / 1e-300 / ties
                start = time.perf_counter()
                for p in clean[:n_loop]:
                    newton_loop_row(p, target)
                t_clean = (time.perf_counter() - start) * n / n_loop
            err_loop = np.abs(entropy(Q_loop) - target)[reach[:n_loop]]
            err_loop = err_loop[np.isfinite(err_loop)]  # NaN rows counted apart
            nan_loop = int(np.isnan(Q_loop).any(axis=1).sum())

            sub = P[:n_brentq]
            start = time.perf_counter()
            Q_brentq = [brentq_row(p, target) for p in sub]
            t_brentq = (time.perf_counter() - start) * n / n_brentq

            rows.append(
                (
                    f"{alpha:g}",
                    f"{fraction:g}",
                    f"{reach.mean():.3f}",
                    f"{t_ours / t_softmax:.1f}",
                    f"{n_iter[n_iter > 0].mean():.2f} / {n_iter.max()}",
                    f"{err.max():.1e}",
                    str(int(np.isnan(Q).any(axis=1).sum())),
                    str(order_violations(P, Q)),
                    f"{t_loop / t_softmax:.0f}",
                    f"{t_clean / t_softmax:.0f}",
                    f"{err_loop.max():.1e}" if err_loop.size else "all NaN",
                    f"{nan_loop} / {n_loop}",
                    str(order_violations(P[:n_loop], Q_loop)),
                    f"{t_brentq / t_softmax:.0f}",
                    f"{sum(q is None for q in Q_brentq)} / {n_brentq}",
                )
            )
    return rows


def equally_spaced_rule(mu, n_nodes):
    """The write-up's rule: mean over t_k = (k + 1/2) / K of prod_j Phi(...)."""
    t = (np.arange(n_nodes) + 0.5) / n_nodes
    x = ndtri(t)
    p = np.empty(len(mu))
    for i in range(len(mu)):
        others = np.delete(mu[i] - mu, i)
        p[i] = np.prod(ndtr(x[:, None] + others), axis=1).mean()
    return p / p.sum()


def reference_normal(mu):
    p = []
    for i in range(len(mu)):
        others = np.delete(mu[i] - mu, i)

        def integrand(x):
            return np.exp(stats.norm.logpdf(x) + stats.norm.logcdf(x + others).sum())

        p.append(quad(integrand, -np.inf, np.inf, epsabs=0, epsrel=1e-13, limit=500)[0])
    p = np.array(p)
    return p / p.sum()


def bench_perturb_accuracy(n_rows=10, m=10):
    rng = np.random.RandomState(0)
    out = []
    for spread in [1.0, 5.0]:
        mus = rng.normal(scale=spread, size=(n_rows, m))
        refs = np.array([reference_normal(mu) for mu in mus])
        for n_nodes in [8, 16, 24, 32, 48, 64]:
            ours = perturb_max_proba(mus, "normal", n_nodes=n_nodes)
            equal = np.array([equally_spaced_rule(mu, n_nodes) for mu in mus])
            with np.errstate(divide="ignore", invalid="ignore"):
                rel_ours = np.abs(ours - refs) / refs
                rel_equal = np.abs(equal - refs) / refs
            out.append(
                (
                    f"{spread:g}",
                    str(n_nodes),
                    f"{refs.min():.1e}",
                    f"{rel_ours.max():.1e}",
                    f"{rel_equal.max():.1e}",
                    f"{np.abs(equal - refs).max():.1e}",
                )
            )
    return out


def bench_perturb_time(sizes):
    rng = np.random.RandomState(0)
    out = []
    for m, n in sizes:
        S = rng.normal(size=(n, m))
        t, _ = best_time(lambda: perturb_max_proba(S, "normal"), 1)
        t_softmax, _ = best_time(lambda: softmax(S, axis=1), 3)
        out.append((str(m), str(n), f"{t / n * 1e3:.3g}", f"{t / t_softmax:.0f}"))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full",
        action="store_true",
        help="100,000 x 1,000 and 1,000,000 x 10 rows (default: a fifth of that)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats")
    args = parser.parse_args(argv)
    scale = 1 if args.full else 5
    print(f"Command: python benchmarks/bench_rows.py {' '.join(sys.argv[1:])}".strip())
    print(f"numpy {np.__version__}, 2 cores shared; times are minima of {args.repeat}.")

    header = [
        "alpha",
        "target / log n",
        "reachable",
        "ours (softmax passes)",
        "iterations mean / max",
        "max abs(H - target)",
        "NaN rows",
        "order-violating rows",
        "loop (softmax passes)",
        "loop, rows without zeros/ties (softmax passes)",
        "loop max abs(H - target), non-NaN rows",
        "loop NaN rows",
        "loop order-violating rows",
        "brentq (softmax passes)",
        "brentq unreachable",
    ]
    for n, m, n_loop, n_brentq in [
        (100_000 // scale, 1000, 2000, 200),
        (1_000_000 // scale, 10, 20000, 2000),
    ]:
        print(
            f"\n### entropy_normalize, {n:,} x {m:,} rows (per-row loop timed on "
            f"{n_loop:,} rows, brentq on {n_brentq:,}, both scaled to {n:,})\n"
        )
        print(table(header, bench_entropy(n, m, n_loop, n_brentq, args.repeat)))

    print("\n### perturb_max_proba, normal noise: accuracy vs nodes (10 x 10 rows)\n")
    print(
        table(
            [
                "score spread",
                "nodes",
                "smallest p",
                "ours max rel. error",
                "equally spaced max rel. error",
                "equally spaced max abs. error",
            ],
            bench_perturb_accuracy(),
        )
    )
    print("\n### perturb_max_proba, normal noise, default 48 nodes: time per row\n")
    sizes = [(10, 2000), (100, 40), (1000, 2)]
    print(
        table(
            ["classes", "rows", "ms per row", "x softmax of the same rows"],
            bench_perturb_time(sizes),
        )
    )


if __name__ == "__main__":
    main()
