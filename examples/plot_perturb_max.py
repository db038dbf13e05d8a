"""
Perturb-max maps: softmax against normal noise
==============================================

:class:`~skprob.PerturbMaxTransformer` turns scores into the probability that
each class wins the argmax once every score is perturbed by independent
noise. Gumbel noise gives exactly the softmax; normal noise gives the
(independent) multinomial probit. We compare the two maps on three classes,
at the same noise standard deviation (Gumbel noise of scale 1 has standard
deviation ``pi / sqrt(6)``), and then look at the tails: how fast the
probability of a class falls as its score drops behind.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats
from scipy.special import softmax

from skprob import PerturbMaxTransformer

GUMBEL_STD = np.pi / np.sqrt(6)

# scores (s1, s2, 0) on a grid: the map only depends on score differences
grid = np.linspace(-4, 4, 61)
s1, s2 = np.meshgrid(grid, grid)
scores = np.column_stack([s1.ravel(), s2.ravel(), np.zeros(s1.size)])

gumbel = PerturbMaxTransformer("gumbel").fit_transform(scores)
normal = PerturbMaxTransformer("normal", scale=GUMBEL_STD).fit_transform(scores)
print("Gumbel noise is the softmax:", np.allclose(gumbel, softmax(scores, axis=1)))
print("rows sum to one:", np.allclose(normal.sum(axis=1), 1))
print(f"largest difference normal - softmax: {np.abs(normal - gumbel).max():.3f}")

# %%
# Tails. Scores ``(gap, 0, 0)``: the probability of a trailing class falls like
# ``exp(-gap)`` for the softmax, like ``exp(-gap**2 / 4)`` (in units of the
# noise) for normal noise, and only polynomially for heavy-tailed Student-t
# noise. Every noise is scaled to the Gumbel standard deviation.
gaps = np.linspace(0, 12, 49)
tail_scores = np.column_stack([gaps, np.zeros_like(gaps), np.zeros_like(gaps)])
noises = {
    "Gumbel (softmax)": ("gumbel", 1.0),
    "normal": ("normal", GUMBEL_STD),
    "logistic": ("logistic", GUMBEL_STD * np.sqrt(3) / np.pi),
    "Student t, 3 d.o.f.": (stats.t(3), GUMBEL_STD / np.sqrt(3)),
}
tails = {
    name: PerturbMaxTransformer(noise, scale=scale).fit_transform(tail_scores)[:, 1]
    for name, (noise, scale) in noises.items()
}
for name, p in tails.items():
    print(f"{name:20s} p(trailing class) at gap 6: {p[24]:.2e}, at gap 12: {p[-1]:.2e}")

# %%
fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
extent = [grid[0], grid[-1], grid[0], grid[-1]]
panels = [
    (gumbel[:, 0], "P(class 1), Gumbel noise (softmax)", "viridis", (0, 1)),
    (normal[:, 0], "P(class 1), normal noise", "viridis", (0, 1)),
    (normal[:, 0] - gumbel[:, 0], "normal - softmax", "RdBu_r", (-0.03, 0.03)),
]
for ax, (values, title, cmap, (low, high)) in zip(axes, panels):
    image = ax.imshow(
        values.reshape(s1.shape),
        origin="lower",
        extent=extent,
        cmap=cmap,
        vmin=low,
        vmax=high,
    )
    ax.set_xlabel("score of class 1")
    ax.set_ylabel("score of class 2 (class 3 at 0)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8)

ax = axes[3]
for name, p in tails.items():
    ax.semilogy(gaps, p, label=name)
ax.set_xlabel("gap between the top score and the others")
ax.set_ylabel("probability of a trailing class")
ax.set_title("Tails (noise scaled to the same std)", fontsize=10)
ax.set_ylim(1e-12, 1)
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
