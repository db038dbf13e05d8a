"""
Unknown intents: closed-form novelty scores
===========================================

A classifier trained on some intents meets queries of intents it never saw.
:meth:`~skprob.AnalyticSoftmaxClassifier.score_samples` scores how typical
each row is of the training classes, from the statistics the fit already
holds. We train on three quarters of the Banking77 intents (sentence
embeddings) and compare the scores of test queries of known intents with those
of the held-out intents, against a logistic regression's maximum softmax
probability.

The Banking77 embeddings are not shipped with skprob: the example reads them
from the path in ``SKPROB_BANKING77`` (or beside the repository); without
them it says so and uses scikit-learn's digits instead (two digits held out).
"""

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprob import AnalyticSoftmaxClassifier

here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
banking = Path(
    os.environ.get(
        "SKPROB_BANKING77", here.parents[1] / "shared" / "data" / "banking77_minilm.npz"
    )
)
if banking.exists():
    data = np.load(banking)
    X_train, y_train = data["X_train"], data["y_train"]
    X_test, y_test = data["X_test"], data["y_test"]
    held_out = np.random.RandomState(0).choice(77, size=19, replace=False)
    name = "Banking77 (19 of 77 intents held out)"
else:
    print(
        f"The Banking77 embeddings are not here (no file {banking}; set "
        "SKPROB_BANKING77 to the path of banking77_minilm.npz): using "
        "scikit-learn's digits, with digits 3 and 8 held out."
    )
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    held_out = np.array([3, 8])
    name = "digits (3 and 8 held out)"

known = ~np.isin(y_train, held_out)
in_scope = ~np.isin(y_test, held_out)

# %%
# Fit on the known classes only, then score every test row. The default
# ``novelty_score="relative"`` is the relative Mahalanobis distance: the
# distance to the nearest class minus the distance under one Gaussian of all
# the data (higher = more typical).

model = AnalyticSoftmaxClassifier(shrinkage="auto")
model.fit(X_train[known], y_train[known])
scores = model.score_samples(X_test)

baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
baseline.fit(X_train[known], y_train[known])
max_proba = baseline.predict_proba(X_test).max(axis=1)

ours = roc_auc_score(in_scope, scores)
theirs = roc_auc_score(in_scope, max_proba)
print(f"{name}: AUROC of score_samples {ours:.3f}, of max softmax {theirs:.3f}")

# %%
# The two score distributions: the held-out intents sit lower.

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for ax, values, title, auroc in [
    (axes[0], scores, "AnalyticSoftmaxClassifier.score_samples", ours),
    (axes[1], max_proba, "LogisticRegression: max softmax probability", theirs),
]:
    bins = np.linspace(values.min(), values.max(), 40)
    ax.hist(values[in_scope], bins=bins, alpha=0.6, density=True, label="known")
    ax.hist(values[~in_scope], bins=bins, alpha=0.6, density=True, label="held out")
    ax.set_title(f"{title}\nAUROC {auroc:.3f}", fontsize=10)
    ax.set_xlabel("score (higher = more typical)")
axes[0].legend()
fig.suptitle(name)
fig.tight_layout()
plt.show()
