"""
Entropy normalization: every row at the same entropy
====================================================

:class:`~skprob.EntropyNormalizer` maps each row ``p`` to
``p**gamma / sum(p**gamma)``, with the ``gamma`` that gives the row a target
entropy. On logits ``z`` the same map is ``softmax(gamma * z)``: temperature
scaling with one temperature per row.

We take two versions of the closed-form classifier on the digits: the raw
closed form (``temperature=None``), which is overconfident, and the default,
whose logits are multiplied by one cross-fitted factor ``temperature_``.
Their predicted entropies differ wildly; after entropy normalization (the
target is the mean entropy of the default model on its training rows) every
row of both has the same entropy, and the predicted classes do not change.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import softmax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skprob import AnalyticSoftmaxClassifier, EntropyNormalizer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, random_state=0, stratify=y
)
raw = AnalyticSoftmaxClassifier(temperature=None, shrinkage="auto").fit(
    X_train, y_train
)
auto = AnalyticSoftmaxClassifier(shrinkage="auto").fit(X_train, y_train)
print(f"cross-fitted factor on the logits: temperature_ = {auto.temperature_:.3f}")

logits = raw.decision_function(X_test)  # the raw closed-form logits
proba = {
    "raw closed form": raw.predict_proba(X_test),
    "default": auto.predict_proba(X_test),
}

# the target: the mean entropy of the default model on its training rows
normalizer = EntropyNormalizer(unit="relative").fit(auto.predict_proba(X_train))
target = normalizer.target_entropy_
print(f"target entropy: {target:.3f} x log(10)")

# probabilities in, probabilities out; for the raw model, start from its
# logits (its probabilities are one-hot to rounding for many rows)
on_logits = EntropyNormalizer(target, unit="relative", input="logits")
normalized = {
    "raw closed form": on_logits.fit_transform(logits),
    "default": normalizer.transform(proba["default"]),
}


def relative_entropy(P):
    """Entropy of each row divided by log(n_classes)."""
    logs = np.log(np.where(P > 0, P, 1.0))
    return -(P * logs).sum(axis=1) / np.log(P.shape[1])


for name in proba:
    same = np.array_equal(proba[name].argmax(1), normalized[name].argmax(1))
    spread = np.ptp(relative_entropy(normalized[name]))
    print(f"{name}: predictions unchanged: {same}, entropy range after: {spread:.1e}")

# %%
# The logits view. For one row of logits ``z``, the entropy of
# ``softmax(gamma * z)`` falls monotonically from ``log(10)`` at
# ``gamma = 0`` to 0 as ``gamma`` grows, so every target between the two is
# reached by exactly one ``gamma``. The default model uses one factor for all
# rows (``temperature_``); entropy normalization finds one per row, which we
# read back from the output: ``log q_i - log q_j = gamma (z_i - z_j)``.
gammas = np.logspace(-3, 0.5, 200)


def entropy_curve(z):
    """Relative entropy of softmax(gamma * z) for every gamma of the grid."""
    return relative_entropy(softmax(gammas[:, None] * z[None, :], axis=1))


Q = normalized["raw closed form"]
top2 = np.argsort(logits, axis=1)[:, -2:]
rows = np.arange(len(logits))[:, None]
log_ratio = np.diff(np.log(Q[rows, top2]), axis=1)[:, 0]
row_gamma = log_ratio / np.diff(logits[rows, top2], axis=1)[:, 0]

# %%
fig, axes = plt.subplots(2, 2, figsize=(11, 8))
bins = np.linspace(0, 1, 41)
for name, P in proba.items():
    axes[0, 0].hist(relative_entropy(P), bins=bins, alpha=0.6, label=name)
    axes[0, 1].hist(
        relative_entropy(normalized[name]), bins=bins, alpha=0.6, label=name
    )
for ax, title in zip(axes[0], ["before", "after EntropyNormalizer"]):
    ax.axvline(target, color="black", linestyle=":", label="target")
    ax.set_yscale("log")
    ax.set_xlabel("entropy / log(10)")
    ax.set_ylabel("test rows")
    ax.set_title(f"Entropy of the predicted rows, {title}")
    ax.legend(fontsize=8)

ax = axes[1, 0]
for k in range(6):
    line = ax.plot(gammas, entropy_curve(logits[k]), alpha=0.8)
    ax.plot(row_gamma[k], target, "o", color=line[0].get_color())
ax.axhline(target, color="black", linestyle=":", label="target")
ax.axvline(auto.temperature_, color="grey", linestyle="--", label="temperature_")
ax.set_xscale("log")
ax.set_xlabel("gamma (factor on the raw logits)")
ax.set_ylabel("entropy of softmax(gamma z) / log(10)")
ax.set_title("Six test rows: entropy against gamma")
ax.legend(fontsize=8)

ax = axes[1, 1]
ax.hist(row_gamma, bins=np.logspace(-3, 0.5, 50), color="tab:green")
ax.axvline(auto.temperature_, color="grey", linestyle="--", label="temperature_")
ax.set_xscale("log")
ax.set_xlabel("gamma of each row")
ax.set_ylabel("test rows")
ax.set_title("One temperature per row")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
