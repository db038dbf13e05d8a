"""
Closed form against maximum likelihood, as the training set grows
=================================================================

:class:`~skprob.AnalyticSoftmaxClassifier` solves the softmax classifier in
closed form from class means and a shared covariance, in one pass over the
data; scikit-learn's :class:`~sklearn.linear_model.LogisticRegression`
maximises the likelihood by iteration.

We draw training sets of growing size (fixed seeds), fit each model, and score
the same held-out rows: accuracy and log-loss (lower is better). Two
maximum-likelihood baselines show how much the comparison depends on the
baseline: scikit-learn's defaults on the raw features (the baseline of
``benchmarks/bench_linear_model.py``), and a logistic regression on
standardised features.

What the figure shows. On the digits (64 pixel features of scale 0-16) the
three models are close at every size (within 3 points of accuracy at 60
rows, about 1 point from 250 rows on). On the Banking77 sentence embeddings
(a second panel, drawn when the data file is present; the example says so
when it is not), the closed form is far ahead of the default logistic
regression with few rows: the default penalty ``C=1`` is strong for
unit-norm embeddings, whose coordinates are small. Standardising the
features makes logistic regression a much stronger baseline, level with the
closed form or ahead of it (here by 2 to 3 points of accuracy), at the cost
of an iterative fit.
"""

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprob import AnalyticSoftmaxClassifier

MODELS = {
    "AnalyticSoftmaxClassifier(shrinkage='auto')": lambda: AnalyticSoftmaxClassifier(
        shrinkage="auto"
    ),
    "LogisticRegression() (defaults, raw features)": lambda: LogisticRegression(
        max_iter=2000
    ),
    "StandardScaler + LogisticRegression()": lambda: make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=2000)
    ),
}


def learning_curve(X_pool, y_pool, X_test, y_test, sizes, seeds):
    """Mean test accuracy and log-loss of each model at each training size."""
    labels = np.unique(y_test)
    curves = {name: np.zeros((len(sizes), 2)) for name in MODELS}
    for i, size in enumerate(sizes):
        for seed in range(seeds):
            if size < len(y_pool):  # stratified, so that every class is seen
                X_train, _, y_train, _ = train_test_split(
                    X_pool, y_pool, train_size=size, random_state=seed, stratify=y_pool
                )
            else:
                X_train, y_train = X_pool, y_pool
            for name, make in MODELS.items():
                model = make().fit(X_train, y_train)
                proba = model.predict_proba(X_test)
                curves[name][i] += [
                    accuracy_score(y_test, model.predict(X_test)),
                    log_loss(y_test, proba, labels=labels),
                ]
        for name in MODELS:
            curves[name][i] /= seeds
    return curves


# %%
# Digits: 64 pixel features, 10 classes.
X, y = load_digits(return_X_y=True)
X_pool, X_test, y_pool, y_test = train_test_split(
    X, y, test_size=400, random_state=0, stratify=y
)
digit_sizes = [60, 120, 250, 500, 1000, len(y_pool)]
datasets = {
    "digits": (
        digit_sizes,
        learning_curve(X_pool, y_pool, X_test, y_test, digit_sizes, seeds=3),
    )
}
for name, curve in datasets["digits"][1].items():
    print(name, np.round(curve[:, 0], 3), np.round(curve[:, 1], 3))

# %%
# Banking77 sentence embeddings (384 features, 77 classes). They are not
# shipped with skprob: the panel is drawn when the file is found, at the path
# in the environment variable ``SKPROB_BANKING77`` or beside the repository.
# (sphinx-gallery runs the examples from their folder, without ``__file__``)
here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
banking = Path(
    os.environ.get(
        "SKPROB_BANKING77", here.parents[1] / "shared" / "data" / "banking77_minilm.npz"
    )
)
if banking.exists():
    data = np.load(banking)
    bank_sizes = [300, 1000, 3000]
    datasets["Banking77"] = (
        bank_sizes,
        learning_curve(
            data["X_train"],
            data["y_train"],
            data["X_test"],
            data["y_test"],
            bank_sizes,
            seeds=1,
        ),
    )
    for name, curve in datasets["Banking77"][1].items():
        print(name, np.round(curve[:, 0], 3), np.round(curve[:, 1], 3))
else:
    print(
        f"Skipping the Banking77 panel: there is no file {banking}. Set "
        "SKPROB_BANKING77 to the path of banking77_minilm.npz to draw it; the "
        "figure shows the digits only."
    )

# %%
fig, axes = plt.subplots(
    2, len(datasets), figsize=(5 * len(datasets), 6.5), squeeze=False
)
for column, (title, (sizes, curves)) in enumerate(datasets.items()):
    for name, curve in curves.items():
        axes[0, column].plot(sizes, curve[:, 0], marker="o", label=name)
        axes[1, column].plot(sizes, curve[:, 1], marker="o", label=name)
    axes[0, column].set_title(title)
    axes[0, column].set_ylabel("test accuracy")
    axes[1, column].set_ylabel("test log-loss")
    for ax in axes[:, column]:
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(size) for size in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training rows")
        ax.grid(alpha=0.3)
axes[0, 0].legend(fontsize=8)
fig.tight_layout()
plt.show()
