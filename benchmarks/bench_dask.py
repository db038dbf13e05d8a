"""Out-of-core fit: a Dask array several times larger than the workers' memory.

The array is generated chunk by chunk on the workers (never held anywhere at
once). Each contender runs on a fresh two-worker LocalCluster whose per-worker
memory limit is far below the array size; the script reports wall time, peak
worker memory (resident set size) and the ratio to one chunked ``X.T @ X``
pass over the same array.

    python benchmarks/bench_dask.py                    # 20,000,000 x 64 float32 (5 GB)
    python benchmarks/bench_dask.py --rows 2000000     # a quicker run
"""

import argparse
import resource
import time

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

from skprob import AnalyticSoftmaxClassifier

N_CLASSES = 20


def make_chunk(index, rows, n_features, seed=0):
    """One chunk of (X, y): class means plus float32 Gaussian noise."""
    centres = np.random.default_rng(seed).normal(size=(N_CLASSES, n_features))
    rng = np.random.default_rng([seed, index])
    y = rng.integers(N_CLASSES, size=rows)
    X = rng.standard_normal((rows, n_features), dtype=np.float32)
    X += centres[y].astype(np.float32)
    return X, y


def lazy_data(n_rows, n_features, chunk_rows):
    """Dask arrays X (float32) and y generated chunk by chunk."""
    X_parts, y_parts = [], []
    for index, start in enumerate(range(0, n_rows, chunk_rows)):
        rows = min(chunk_rows, n_rows - start)
        pair = dask.delayed(make_chunk, pure=True)(index, rows, n_features)
        X_parts.append(da.from_delayed(pair[0], (rows, n_features), np.float32))
        y_parts.append(da.from_delayed(pair[1], (rows,), np.int64))
    return da.concatenate(X_parts), da.concatenate(y_parts)


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # bytes


def run(name, task, args):
    """Time ``task(X, y)`` on a fresh cluster; return seconds and peak worker RSS."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            memory_limit=args.memory_limit,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        X, y = lazy_data(args.rows, args.features, args.chunk_rows)
        start = time.perf_counter()
        task(X, y)
        seconds = time.perf_counter() - start
        peak = max(client.run(peak_rss).values())
    print(
        f"  {name}: {seconds:.1f} s, peak worker RSS {peak / 2**30:.2f} GiB", flush=True
    )
    return seconds, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--memory-limit", default="1GiB", help="per worker")
    parser.add_argument(
        "--skip-incremental", action="store_true", help="skip dask-ml's Incremental"
    )
    args = parser.parse_args()
    size = args.rows * args.features * 4
    print(
        f"# Out-of-core fit\n\n`{args.rows:,} x {args.features}` float32 Dask array "
        f"({size / 1e9:.1f} GB), {N_CLASSES} classes, chunks of {args.chunk_rows:,} "
        f"rows, 2 workers x 1 thread, memory limit {args.memory_limit} per worker.\n"
    )
    results = {}
    results["one chunked `X.T @ X` pass (dask)"] = run(
        "X.T @ X", lambda X, y: (X.T @ X).compute(), args
    )
    results["AnalyticSoftmaxClassifier(temperature=None).fit"] = run(
        "fit, temperature=None",
        lambda X, y: AnalyticSoftmaxClassifier(temperature=None).fit(X, y),
        args,
    )
    results["AnalyticSoftmaxClassifier().fit"] = run(
        "fit, temperature='auto'",
        lambda X, y: AnalyticSoftmaxClassifier().fit(X, y),
        args,
    )
    if not args.skip_incremental:
        try:
            from dask_ml.wrappers import Incremental
        except ImportError:
            print("  (dask-ml is not installed: Incremental skipped)")
        else:
            results[
                "dask_ml Incremental(AnalyticSoftmaxClassifier(temperature=None))"
            ] = run(
                "Incremental",
                lambda X, y: Incremental(
                    AnalyticSoftmaxClassifier(temperature=None)
                ).fit(X, y, classes=np.arange(N_CLASSES)),
                args,
            )
    floor = results["one chunked `X.T @ X` pass (dask)"][0]
    print("\n| method | wall time (s) | / X.T@X pass | peak worker RSS (GiB) |")
    print("|---|---|---|---|")
    for name, (seconds, peak) in results.items():
        print(
            f"| {name} | {seconds:.1f} | {seconds / floor:.2f}x | {peak / 2**30:.2f} |"
        )
    command = "python benchmarks/bench_dask.py" + (
        "" if args.rows == 20_000_000 else f" --rows {args.rows}"
    )
    print(f"\nCommand: `{command}`")


if __name__ == "__main__":
    main()
