"""
A variational autoencoder as a density: digits
==============================================

:class:`~skprob.VAEDensity` reads a variational autoencoder as a continuous
mixture of Gaussians and estimates the log-density of each row by importance
sampling. We fit it to scikit-learn's 8 x 8 digits, compare its held-out
log-densities with a Gaussian mixture's, and draw new digits from it.

The example trains for 20 epochs so that it runs in seconds; the default
(``max_iter=300`` with early stopping, about 120 epochs here) fits a better
density in under a minute (``benchmarks/bench_density.py``). It needs PyTorch
(``pip install "skprob[torch]"``).
"""

# %%
import importlib.util
import sys
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split

from skprob import VAEDensity

if importlib.util.find_spec("torch") is None:
    print(
        "Skipping this example: VAEDensity needs PyTorch, which is not installed "
        '(pip install "skprob[torch]").'
    )
    sys.exit(0)

# %%
# Dequantize the pixels (integers 0 to 16) with uniform noise, as usual for
# densities of discrete data: every model below is then a density on the same
# continuous data in ``[0, 1)^64``.
pixels, _ = load_digits(return_X_y=True)
rng = np.random.RandomState(0)
X = (pixels + rng.uniform(size=pixels.shape)) / 17.0
X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)

# %%
# Fit. ``score`` is the mean log-likelihood per row (in nats), the estimate
# with ``n_score_samples`` importance samples per row; 200 keep the example
# quick (the default, 1000, gives a slightly higher, tighter estimate).
vae = VAEDensity(max_iter=20, n_score_samples=200, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # 20 epochs is short
    vae.fit(X_train)
gmm = GaussianMixture(20, covariance_type="diag", random_state=0).fit(X_train)

vae_scores = vae.score_samples(X_test)
gmm_scores = gmm.score_samples(X_test)
print(f"held-out log-likelihood, VAEDensity:      {vae_scores.mean():6.1f} nats")
print(f"held-out log-likelihood, GaussianMixture: {gmm_scores.mean():6.1f} nats")

# %%
# Draw digits: ``z ~ N(0, I)``, then ``x ~ q(x | z)``, a Gaussian with a
# mean and a variance per pixel. The drawn pixels carry that noise.
drawn = vae.sample(32, random_state=0)

fig = plt.figure(figsize=(10, 3.6), layout="constrained")
left, right = fig.subfigures(1, 2, width_ratios=[1, 1.1])
axes = left.subplots(4, 8)
for image, ax in zip(drawn, axes.ravel()):
    ax.imshow(np.clip(image, 0, 1).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()
left.suptitle("Digits drawn from VAEDensity")
ax = right.subplots()
bins = np.linspace(min(gmm_scores.min(), vae_scores.min()), vae_scores.max(), 40)
ax.hist(gmm_scores, bins=bins, alpha=0.6, label="GaussianMixture(20, diag)")
ax.hist(vae_scores, bins=bins, alpha=0.6, label="VAEDensity")
ax.set_xlabel("held-out log-density (nats per image)")
ax.set_ylabel("images")
ax.legend()
ax.set_title("Held-out score_samples")
plt.show()
