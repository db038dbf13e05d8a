"""
Gaussian distances: class separability and a drift monitor
==========================================================

:class:`~skprob.GaussianDistance` summarises data by a Gaussian (a mean and a
covariance) and measures closed-form distances between Gaussians. Two uses on
the digits:

1. **Class separability.** Fitted with labels, it gives the matrix of
   distances between the classes' Gaussians. Pairs of classes whose Gaussians
   overlap (small Bhattacharyya distance) are the pairs a classifier
   confuses.
2. **Drift monitor.** Fitted on reference data, ``distance(window)`` scores
   each new window of data. A threshold calibrated on windows drawn from the
   reference distribution itself separates the estimation noise from real
   drift.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import cross_val_predict, train_test_split

from skprob import AnalyticSoftmaxClassifier, GaussianDistance

X, y = load_digits(return_X_y=True)

# Bhattacharyya distance between the classes' Gaussians; OAS shrinkage keeps
# the covariances (about 180 rows of 64 pixels, some always blank) invertible.
separability = GaussianDistance("bhattacharyya", shrinkage="auto").fit(X, y)
distances = separability.class_distances_

# how often a cross-validated classifier confuses each pair of classes
predicted = cross_val_predict(AnalyticSoftmaxClassifier(shrinkage="auto"), X, y, cv=5)
confusion = confusion_matrix(y, predicted, normalize="true")
pair = np.triu_indices(10, k=1)
confused = (confusion + confusion.T)[pair] / 2
closest = np.argsort(distances[pair])[:3]
for k in closest:
    i, j = pair[0][k], pair[1][k]
    print(
        f"digits {i} and {j}: Bhattacharyya {distances[i, j]:.2f}, "
        f"confused {100 * confused[k]:.1f}% of the time"
    )

# %%
# The drift monitor. The reference is one half of the digits; the stream is
# windows of 150 rows drawn from the other half. The first windows come from
# the same distribution; then a growing share of each window is shifted one
# pixel to the right (a camera that slowly moves); last, the class mix
# changes (only the digits 0 to 4).
X_ref, X_new, y_ref, y_new = train_test_split(X, y, test_size=0.5, random_state=0)
monitor = GaussianDistance("wasserstein").fit(X_ref)
rng = np.random.RandomState(0)
window = 150


def shifted(images):
    """Images moved one pixel to the right (8 x 8 pixels, blank first column)."""
    out = np.zeros_like(images).reshape(-1, 8, 8)
    out[:, :, 1:] = images.reshape(-1, 8, 8)[:, :, :-1]
    return out.reshape(images.shape)


def draw(n, share_shifted=0.0, classes=None):
    """A window of n held-out rows, a share of them shifted."""
    pool = np.flatnonzero(np.isin(y_new, classes)) if classes else np.arange(len(y_new))
    rows = X_new[rng.choice(pool, size=n, replace=True)]
    moved = rng.rand(n) < share_shifted
    rows[moved] = shifted(rows[moved])
    return rows


# threshold: the 99th percentile of the distance of in-distribution windows
null = np.array([monitor.distance(draw(window)) for _ in range(200)])
threshold = np.quantile(null, 0.99)
phases = (
    [("no drift", draw(window)) for _ in range(10)]
    + [("pixel shift", draw(window, share)) for share in np.linspace(0.1, 1, 10)]
    + [("digits 0-4 only", draw(window, classes=[0, 1, 2, 3, 4])) for _ in range(10)]
)
scores = np.array([monitor.distance(rows) for _, rows in phases])
print(f"threshold (99% of in-distribution windows): {threshold:.2f}")
print("windows above it:", np.flatnonzero(scores > threshold).tolist())

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
ax = axes[0]
image = ax.imshow(distances, cmap="magma")
for i in range(10):
    for j in range(10):
        if i != j:
            ax.text(
                j,
                i,
                f"{distances[i, j]:.0f}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if distances[i, j] < 20 else "black",
            )
ax.set_xticks(range(10))
ax.set_yticks(range(10))
ax.set_title("Bhattacharyya distance between the digits' Gaussians", fontsize=10)
fig.colorbar(image, ax=ax, shrink=0.8)

ax = axes[1]
ax.scatter(distances[pair], 100 * confused, s=14)
for k in closest:
    ax.annotate(f"{pair[0][k]}/{pair[1][k]}", (distances[pair][k], 100 * confused[k]))
ax.set_xlabel("Bhattacharyya distance (shrunk Gaussians)")
ax.set_ylabel("pair confused by the classifier (%)")
ax.set_title("Close classes are confused", fontsize=10)
ax.grid(alpha=0.3)

ax = axes[2]
colors = {
    "no drift": "tab:green",
    "pixel shift": "tab:orange",
    "digits 0-4 only": "tab:red",
}
for name, color in colors.items():
    index = [k for k, (phase, _) in enumerate(phases) if phase == name]
    ax.plot(index, scores[index], "o-", color=color, label=name)
ax.axhline(threshold, color="black", linestyle=":", label="99% of no-drift windows")
ax.set_xlabel(f"window ({window} rows each)")
ax.set_ylabel("W2 distance to the reference")
ax.set_title("Drift monitor: GaussianDistance().distance(window)", fontsize=10)
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()
