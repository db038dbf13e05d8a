"""Held-out log-likelihood on scikit-learn's digits: VAEDensity against
KernelDensity, GaussianMixture and FactorAnalysis, with fit times in one run.

Protocol: the 1,797 digits (8 x 8 pixels, integers 0..16) are dequantized as
usual for discrete data, ``x = (pixels + u) / 17`` with ``u ~ U[0, 1)`` drawn
once with a fixed seed, so that every method is a density on the same
continuous data in ``[0, 1)^64``; 30% of the rows are held out
(``train_test_split(..., test_size=0.3, random_state=0)``). Each method chooses
its settings on the training rows only:

- ``KernelDensity``: bandwidth by 3-fold cross-validation;
- ``GaussianMixture``: ``n_components`` and ``covariance_type`` by 3-fold
  cross-validation of the mean log-likelihood (BIC's choice is printed too);
- ``FactorAnalysis``: ``n_components`` by 3-fold cross-validation;
- ``VAEDensity()``: its defaults (early stopping on 10% of the training rows),
  and variants of the training ``K`` (``n_importance_samples``).

The table gives the mean log-density of the held-out rows in nats per image
(higher is better) and the fit time (for the first three, the search over
their settings; the refit alone in brackets). ``log P(pixels)`` of the integer
image is at least the dequantized score minus ``64 log 17 = 181.3`` nats
(Theis et al., 2016), the same shift for every method.

Run from the repository root::

    python benchmarks/bench_density.py            # a few minutes on two cores
    python benchmarks/bench_density.py --quick    # small grids, few epochs
"""

import argparse
import math
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.neighbors import KernelDensity
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skprob import VAEDensity  # noqa: E402

try:
    import torch
except ImportError:  # the VAE rows need the torch extra
    torch = None


def timed(function):
    """Wall time of one call, and its result."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def digits(seed=0):
    """Dequantized digits, split 70/30 as the protocol says."""
    pixels, _ = load_digits(return_X_y=True)
    X = (pixels + np.random.RandomState(seed).uniform(size=pixels.shape)) / 17.0
    return train_test_split(X, test_size=0.3, random_state=0)


def search(estimator, grid, X):
    """3-fold grid search on the mean log-likelihood; failed fits score -inf."""
    cv = KFold(3, shuffle=True, random_state=0)
    return GridSearchCV(estimator, grid, cv=cv, error_score=-np.inf).fit(X)


def score_mean(estimator, X):
    """Mean log-density in nats per row (KernelDensity.score sums)."""
    return float(np.mean(estimator.score_samples(X)))


def baselines(X_train, X_test, quick):
    rows = []
    bandwidths = np.geomspace(0.02, 0.5, 6 if quick else 25)
    progress("KernelDensity: bandwidth by cross-validation")
    seconds, kde = timed(
        lambda: search(KernelDensity(), {"bandwidth": bandwidths}, X_train)
    )
    refit = kde.refit_time_
    rows.append(
        (
            f"KernelDensity(bandwidth={kde.best_params_['bandwidth']:.3g})",
            score_mean(kde.best_estimator_, X_test),
            seconds,
            refit,
        )
    )

    components = [1, 5, 20] if quick else [1, 2, 5, 10, 20, 40, 60, 80]
    grid = {
        "n_components": components,
        "covariance_type": ["full", "diag"]
        if quick
        else ["full", "tied", "diag", "spherical"],
    }
    progress("GaussianMixture: components and covariance type by cross-validation")
    seconds, gmm = timed(lambda: search(GaussianMixture(random_state=0), grid, X_train))
    best = gmm.best_estimator_
    rows.append(
        (
            f"GaussianMixture({best.n_components}, covariance_type="
            f"{best.covariance_type!r})",
            score_mean(best, X_test),
            seconds,
            gmm.refit_time_,
        )
    )
    bic = min(
        (
            GaussianMixture(n, covariance_type=c, random_state=0).fit(X_train)
            for n in grid["n_components"]
            for c in grid["covariance_type"]
        ),
        key=lambda g: g.bic(X_train),
    )
    rows.append(
        (
            f"GaussianMixture({bic.n_components}, covariance_type="
            f"{bic.covariance_type!r}), BIC's choice",
            score_mean(bic, X_test),
            None,
            None,
        )
    )

    grid = {"n_components": [5, 20, 40] if quick else [5, 10, 20, 30, 40, 50, 60]}
    progress("FactorAnalysis: components by cross-validation")
    seconds, fa = timed(lambda: search(FactorAnalysis(random_state=0), grid, X_train))
    rows.append(
        (
            f"FactorAnalysis({fa.best_params_['n_components']})",
            score_mean(fa.best_estimator_, X_test),
            seconds,
            fa.refit_time_,
        )
    )
    return rows


def vaes(X_train, X_test, quick, threads):
    """The default VAEDensity and variants of the training K; one row each,
    and the default model scored again with other ``n_score_samples``."""
    variants = [("VAEDensity()", {})]
    if not quick:
        variants += [
            ("VAEDensity(n_importance_samples=1) (ELBO)", {"n_importance_samples": 1}),
            ("VAEDensity(n_importance_samples=16)", {"n_importance_samples": 16}),
        ]
    rows, details = [], []
    for label, params in variants:
        progress(f"fitting {label}")
        params = {"random_state": 0, "n_jobs": threads, **params}
        if quick:
            params["max_iter"] = 5
        model = VAEDensity(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            seconds, _ = timed(lambda: model.fit(X_train))
        score_seconds, scores = timed(lambda: model.score_samples(X_test))
        rows.append((label, float(scores.mean()), seconds, None))
        details.append(
            (label, model.n_iter_, seconds, 1000, score_seconds, scores.mean())
        )
        if label == "VAEDensity()":
            for k in (100, 5000):  # the estimate's dependence on n_score_samples
                model.set_params(n_score_samples=k)
                k_seconds, k_scores = timed(lambda: model.score_samples(X_test))
                details.append(
                    ("  the same model", "", "", k, k_seconds, k_scores.mean())
                )
    return rows, details


def progress(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grids, 5 epochs")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS and torch threads of every method (default 1: on a busy "
        "machine a second thread can slow BLAS and torch down many times)",
    )
    args = parser.parse_args(argv)

    X_train, X_test = digits()
    print("# Density estimation: held-out log-likelihood on dequantized digits\n")
    print(
        f"{len(X_train)} training rows, {len(X_test)} held-out rows, 64 features; "
        f"threads: {args.threads}; Python {platform.python_version()}, "
        f"scikit-learn {sklearn.__version__}, "
        f"torch {torch.__version__ if torch else 'not installed'}\n"
    )
    with threadpool_limits(args.threads):
        if torch is not None:
            torch.set_num_threads(args.threads)
        rows = baselines(X_train, X_test, args.quick)
        if torch is None:
            print("torch is not installed: no VAEDensity rows (pip install '.[torch]')")
            vae_rows, details = [], []
        else:
            vae_rows, details = vaes(X_train, X_test, args.quick, args.threads)

    best_other = max(rows, key=lambda r: r[1])
    header = ["model", "held-out nats per image", "fit (s)", "vs best other"]
    body = []
    for label, score, seconds, refit in rows + vae_rows:
        fit = "-" if seconds is None else f"{seconds:.1f}"
        if refit is not None:
            fit += f" ({refit:.1f})"
        body.append((label, f"{score:.2f}", fit, f"{score - best_other[1]:+.2f}"))
    print(table(header, body))
    if vae_rows:
        default = vae_rows[0]
        searched = [r for r in rows if r[2] is not None]
        print(
            f"\nVAEDensity() is {default[1] - best_other[1]:+.2f} nats per image from "
            f"the best other method ({best_other[0]}), fitted in {default[2]:.0f} s."
        )
        ratios = ", ".join(
            f"{r[0].split('(')[0]} {default[2] / r[2]:.1f}x" for r in searched
        )
        print(f"Fit time of VAEDensity() / each search: {ratios}.")
        print("\n## VAEDensity: epochs, fit and score times, n_score_samples\n")
        header = ["model", "epochs", "fit (s)", "n_score_samples", "score (s)", "nats"]
        print(
            table(
                header,
                [
                    (
                        label,
                        epochs,
                        fit if fit == "" else f"{fit:.1f}",
                        k,
                        f"{t:.1f}",
                        f"{nats:.2f}",
                    )
                    for label, epochs, fit, k, t, nats in details
                ],
            )
        )
    print(
        f"\nlog P(pixels) >= score - 64 log 17 = score - {64 * math.log(17):.1f} nats"
    )


if __name__ == "__main__":
    main()
