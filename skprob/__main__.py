"""The skprob tour: ``python -m skprob``.

Compares the closed-form classifiers with scikit-learn's maximum-likelihood and
discriminant-analysis counterparts on the digits data that scikit-learn ships
(no download), or on a CSV file of your own, and says after each table what
its numbers show::

    python -m skprob
    python -m skprob --csv data.csv --target label
    python -m skprob --plot report.png     # also draw the tour (needs matplotlib)

The arguments are parsed before numpy, scikit-learn and the tour
(``skprob._tour``) are imported, so ``--help`` and argument errors are
instant.
"""

import argparse
import sys


def parse_args(argv):
    """The tour's command-line arguments (``argparse.Namespace``)."""
    parser = argparse.ArgumentParser(
        prog="python -m skprob",
        description=(
            "A tour of skprob's estimators on built-in data (scikit-learn's "
            "digits) or your CSV: tables, and a sentence after each saying what "
            "the numbers show."
        ),
    )
    parser.add_argument("--csv", help="CSV file to use instead of the digits data")
    parser.add_argument("--target", help="name of the target column of --csv")
    parser.add_argument(
        "--test-size", type=float, default=0.25, help="held-out share (default 0.25)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="also draw the tour to this image file (png, pdf, svg; needs matplotlib)",
    )
    args = parser.parse_args(argv)
    if args.csv and not args.target:
        parser.error("--csv needs --target COLUMN")
    if args.target and not args.csv:
        parser.error("--target needs --csv PATH")
    if not 0 < args.test_size < 1:
        parser.error(f"--test-size must be between 0 and 1, got {args.test_size}")
    return args


def main(argv=None):
    """Run the tour; returns the exit status (0 on success)."""
    args = parse_args(argv)
    from ._tour import run  # numpy, scikit-learn and the estimators, only now

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
