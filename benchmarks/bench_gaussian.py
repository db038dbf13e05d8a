"""Closed-form Gaussian distances against the sqrtm way (FID packages) and POT.

Four parts, each timed in one run against its alternative (best of the
repeats; the machine is shared, so read the ratios):

1. W2 at d=2048 between covariances from 5,000 samples (full rank) and from
   1,500 samples (rank-deficient): ``gaussian_wasserstein_distance`` and
   ``GaussianDistance.distance`` (its low-rank route) against
   ``scipy.linalg.sqrtm(S1 @ S2)`` and POT's ``bures_wasserstein_distance``.
2. Pairwise W2 / KL / Bhattacharyya between 1,000 x 1,000 diagonal Gaussians
   of d=64 in one call (W2 also against scikit-learn's euclidean_distances on
   ``[mean, sqrt(var)]``, which is the same number).
3. KL and Bhattacharyya at d=2048 against the textbook numpy formulas
   (``solve`` and ``slogdet``).
4. ``GaussianDistance(covariance_type="diag").fit`` on 20,000 x 2,048 rows
   with 10 classes, and without classes, against numpy's ``mean`` and ``var``
   (the statistics are exact two-pass moments either way).

Run from the repository root::

    python benchmarks/bench_gaussian.py           # the default: a few minutes
    python benchmarks/bench_gaussian.py --quick   # small sizes, seconds
"""

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import scipy
from scipy import linalg
from sklearn.metrics.pairwise import euclidean_distances

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import best_time, table  # noqa: E402

from skprob import (  # noqa: E402
    GaussianDistance,
    gaussian_bhattacharyya_distance,
    gaussian_kl_divergence,
    gaussian_wasserstein_distance,
)

try:
    import ot.gaussian as ot_gaussian
except ImportError:  # POT is optional
    ot_gaussian = None


def sample(n, d, rng, scale=1.0, shift=0.0):
    """Rows with a spread spectrum (column scales 0.5..2, then a rotation)."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return scale * (rng.normal(size=(n, d)) * np.linspace(0.5, 2.0, d)) @ q + shift


def frechet_sqrtm(m1, s1, m2, s2):
    """pytorch-fid / clean-fid: sqrtm of the non-symmetric product S1 S2."""
    covmean = linalg.sqrtm(s1 @ s2)
    imaginary = float(np.abs(np.imag(covmean)).max()) if np.iscomplexobj(covmean) else 0
    value = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * np.real(covmean))
    return value, imaginary


def flags(value, imaginary=0.0):
    notes = []
    if imaginary:
        notes.append(f"complex (max imag {imaginary:.1e})")
    if not np.isfinite(value):
        notes.append("NaN" if np.isnan(value) else "inf")
    return ", ".join(notes) or "finite, real"


def part_wasserstein(d, n_full, n_low, repeat, slow_repeat):
    rng = np.random.RandomState(0)
    rows = []
    for label, n in (
        (f"{n_full} samples (full rank)", n_full),
        (f"{n_low} samples (rank {n_low - 1})", n_low),
    ):
        X1 = sample(n, d, rng)
        X2 = sample(n, d, rng, scale=1.1, shift=0.05)
        m1, m2 = X1.mean(0), X2.mean(0)
        s1, s2 = np.cov(X1, rowvar=False), np.cov(X2, rowvar=False)

        ours_time, ours = best_time(
            lambda: gaussian_wasserstein_distance(m1, s1, m2, s2, squared=True), repeat
        )
        entries = [("skprob `gaussian_wasserstein_distance`", ours_time, ours, 0.0)]
        if n < d:
            # the estimator's low-rank route works on the maximum-likelihood
            # covariances: compare with the function on those
            gd = GaussianDistance().fit(X1)
            s1_ml, s2_ml = s1 * (n - 1) / n, s2 * (n - 1) / n
            exact_ml = gaussian_wasserstein_distance(m1, s1_ml, m2, s2_ml, squared=True)
            gd_time, gd_value = best_time(lambda: gd.distance(X2), repeat)
            entries.append(
                (
                    "skprob `GaussianDistance.distance` "
                    "(SVD of F1 F2', incl. X2's statistics)",
                    gd_time,
                    gd_value**2,
                    abs(gd_value**2 - exact_ml) / exact_ml,
                )
            )
        sqrtm_time, (frechet, imaginary) = best_time(
            lambda: frechet_sqrtm(m1, s1, m2, s2), slow_repeat
        )
        entries.append(
            (
                "`scipy.linalg.sqrtm(S1 @ S2)` (FID packages)",
                sqrtm_time,
                frechet,
                imaginary,
            )
        )
        if ot_gaussian is not None:
            pot_time, pot = best_time(
                lambda: ot_gaussian.bures_wasserstein_distance(m1, m2, s1, s2),
                slow_repeat,
            )
            entries.append(("POT `bures_wasserstein_distance`", pot_time, pot**2, 0.0))
        for k, (method, seconds, value, extra) in enumerate(entries):
            agreement = "-" if k == 0 else f"{abs(value - ours) / ours:.1e}"
            if method.startswith("skprob `GaussianDistance"):
                agreement = f"{extra:.1e} (vs the function on the same ML covariances)"
                note = flags(value)
            else:
                note = flags(value, extra)
            rows.append(
                (
                    label,
                    method,
                    f"{seconds:.2f}",
                    f"{seconds / ours_time:.1f}x" if k else "1.0x",
                    agreement,
                    note,
                )
            )
    header = [
        "covariances (d=%d)" % d,
        "method",
        "time (s)",
        "time / ours",
        "rel. diff. of W2^2 to ours",
        "output",
    ]
    return table(header, rows)


def part_pairwise(n_pairs, d, repeat):
    rng = np.random.RandomState(1)
    ma, mb = rng.normal(size=(2, n_pairs, d))
    va, vb = rng.uniform(0.1, 3.0, size=(2, n_pairs, d))
    a = (ma[:, None], va[:, None])
    b = (mb[None], vb[None])
    pairs = n_pairs * n_pairs
    rows = []
    w2_time, w2 = best_time(
        lambda: gaussian_wasserstein_distance(*a, *b, squared=True), repeat
    )
    ref_time, ref = best_time(
        lambda: euclidean_distances(
            np.hstack([ma, np.sqrt(va)]), np.hstack([mb, np.sqrt(vb)]), squared=True
        ),
        repeat,
    )
    rows.append(
        (
            "W2 (squared)",
            f"{w2_time:.2f}",
            f"{pairs / w2_time:.3g}",
            f"sklearn euclidean_distances on [mean, sqrt(var)]: {ref_time:.2f} s, "
            f"max rel. diff. {np.max(np.abs(w2 - ref) / w2):.1e}",
        )
    )
    for name, function in (
        ("KL", gaussian_kl_divergence),
        ("Bhattacharyya", gaussian_bhattacharyya_distance),
    ):
        seconds, values = best_time(lambda: function(*a, *b), repeat)
        i, j = rng.randint(n_pairs, size=(2, 200))
        loop = np.array([function(ma[p], va[p], mb[q], vb[q]) for p, q in zip(i, j)])
        rows.append(
            (
                name,
                f"{seconds:.2f}",
                f"{pairs / seconds:.3g}",
                f"max rel. diff. to one-pair calls: "
                f"{np.max(np.abs(values[i, j] - loop) / loop):.1e}",
            )
        )
    header = [
        f"{n_pairs} x {n_pairs} diagonal Gaussians (d={d}), one call",
        "time (s)",
        "pairs / s",
        "check",
    ]
    return table(header, rows)


def part_divergences(d, n, repeat):
    rng = np.random.RandomState(2)
    X1, X2 = sample(n, d, rng), sample(n, d, rng, scale=1.1, shift=0.05)
    m1, m2 = X1.mean(0), X2.mean(0)
    s1, s2 = np.cov(X1, rowvar=False), np.cov(X2, rowvar=False)
    delta = m1 - m2

    def textbook_kl():
        trace = np.trace(np.linalg.solve(s2, s1))
        quadratic = delta @ np.linalg.solve(s2, delta)
        logdet = np.linalg.slogdet(s2)[1] - np.linalg.slogdet(s1)[1]
        return 0.5 * (trace + quadratic - d + logdet)

    def textbook_bhattacharyya():
        s = (s1 + s2) / 2
        logdets = [np.linalg.slogdet(m)[1] for m in (s, s1, s2)]
        return delta @ np.linalg.solve(s, delta) / 8 + 0.5 * (
            logdets[0] - 0.5 * (logdets[1] + logdets[2])
        )

    rows = []
    for name, ours_function, textbook in (
        ("KL", gaussian_kl_divergence, textbook_kl),
        ("Bhattacharyya", gaussian_bhattacharyya_distance, textbook_bhattacharyya),
    ):
        ours_time, ours = best_time(lambda: ours_function(m1, s1, m2, s2), repeat)
        book_time, book = best_time(textbook, repeat)
        rows.append(
            (
                name,
                f"{ours_time:.2f}",
                f"{book_time:.2f}",
                f"{book_time / ours_time:.1f}x",
                f"{abs(ours - book) / abs(ours):.1e}",
            )
        )
    header = [
        f"d={d}, covariances from {n} samples",
        "skprob (s)",
        "numpy solve + slogdet (s)",
        "speed-up",
        "rel. diff.",
    ]
    return table(header, rows)


def part_diagonal_fit(n, d, n_classes, repeat):
    """Diagonal Gaussians, one per class and one for all rows, against numpy."""
    rng = np.random.RandomState(3)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=d)
    y = np.arange(n) % n_classes

    def numpy_per_class():
        return np.stack([X[y == c].var(0) for c in range(n_classes)])

    def numpy_all_rows():
        return X.var(0)

    rows = []
    for name, labels, numpy_fit, attribute in (
        ("fit(X, y)", y, numpy_per_class, "covariances_"),
        ("fit(X)", None, numpy_all_rows, "covariance_"),
    ):
        model = GaussianDistance(covariance_type="diag")
        seconds, model = best_time(lambda: model.fit(X, labels), repeat)
        book_time, variances = best_time(numpy_fit, repeat)
        diff = np.max(np.abs(getattr(model, attribute) - variances) / variances)
        rows.append(
            (
                f'GaussianDistance(covariance_type="diag").{name}',
                f"{seconds:.3f}",
                f"{book_time:.3f}",
                f"{seconds / book_time:.2f}x",
                f"{diff:.1e}",
            )
        )
    header = [
        f"{n} x {d} rows, {n_classes} classes",
        "skprob (s)",
        "numpy mean + var (s)",
        "skprob / numpy",
        "max rel. diff. of the variances",
    ]
    return table(header, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--slow-repeat", type=int, default=1, help="repeats of sqrtm and POT"
    )
    args = parser.parse_args(argv)
    if args.quick:
        d, n_full, n_low, n_pairs, pair_d = 256, 600, 200, 200, 64
        n_diag = 2000
    else:
        d, n_full, n_low, n_pairs, pair_d = 2048, 5000, 1500, 1000, 64
        n_diag = 20000

    command = "python benchmarks/bench_gaussian.py" + " ".join(
        [""] + (argv if argv is not None else sys.argv[1:])
    )
    print(f"Command: `{command}`\n")
    print(
        f"numpy {np.__version__}, scipy {scipy.__version__}, "
        f"POT {getattr(sys.modules.get('ot'), '__version__', 'not installed')}, "
        f"Python {platform.python_version()}; best of {args.repeat} "
        f"(sqrtm and POT: {args.slow_repeat}).\n"
    )
    print("### W2 at high dimension\n")
    print(part_wasserstein(d, n_full, n_low, args.repeat, args.slow_repeat), flush=True)
    print("\n### Pairwise matrices in one call\n")
    print(part_pairwise(n_pairs, pair_d, args.repeat), flush=True)
    print("\n### KL and Bhattacharyya at high dimension\n")
    print(part_divergences(d, n_full, args.repeat), flush=True)
    print("\n### Fitting diagonal Gaussians\n")
    print(part_diagonal_fit(n_diag, d, 10, args.repeat), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
