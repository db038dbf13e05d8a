"""
Attention over more keys: a fixed scale against the entropy-invariant scale
===========================================================================

Scaled dot-product attention multiplies the scores by :math:`1/\\sqrt d`
before the softmax. With more keys the attention spreads out: its entropy
grows roughly like :math:`\\log n`, and a model trained on sequences of 512
items sees flatter attention on longer ones.
:func:`~skprob.entropy_invariant_scale` multiplies the scores by
:math:`\\log n / (\\log 512 \\sqrt d)` instead, equal to :math:`1/\\sqrt d` at
:math:`n = 512`.

We draw random keys (:math:`d = 64`, standard normal entries) and queries
(random directions, of the typical norm :math:`\\sqrt d`) and measure the
mean entropy of the attention of each query over :math:`n` keys, in two
settings: one key stands out (its score is :math:`0.75\\,\\|q\\|^2`,
far above the others), and no key stands out.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import entr, softmax

from skprob import entropy_invariant_scale

d = 64
sizes = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
n_queries = 20
rng = np.random.RandomState(0)
scales = {
    "1/sqrt(d)": lambda n: 1 / np.sqrt(d),
    "entropy_invariant_scale(n, d)": lambda n: entropy_invariant_scale(n, d),
}

# the same queries and keys for every scale and setting
entropy = {
    (relevant, name): np.zeros(len(sizes))
    for relevant in (True, False)
    for name in scales
}
for i, n in enumerate(sizes):
    for _ in range(n_queries):
        q = rng.normal(size=d)
        q *= np.sqrt(d) / np.linalg.norm(q)  # the typical norm, exactly
        random_scores = rng.normal(size=(n, d)) @ q
        for relevant in (True, False):
            scores = random_scores.copy()
            if relevant:
                scores[0] = 0.75 * q @ q  # the key the query is looking for
            for name, scale in scales.items():
                attention = softmax(scale(n) * scores)
                entropy[relevant, name][i] += entr(attention).sum() / n_queries
for (relevant, name), values in entropy.items():
    setting = "one key stands out" if relevant else "no key stands out "
    print(
        f"{setting} {name:30s} n=512: {values[sizes.index(512)]:.2f} nats, "
        f"n=16384: {values[-1]:.2f} nats"
    )

# %%
# With one relevant key, the fixed scale lets the attention drift from the
# relevant key to the crowd as the keys multiply; the entropy-invariant scale
# grows with :math:`\log n` and holds the attention on it for longer. It does
# not hold the entropy constant: the spread of the other scores also grows
# with the scale. When no key stands out, both stay close to the maximum
# :math:`\log n`: there is nothing to attend to.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
for ax, relevant in zip(axes, (True, False)):
    for name in scales:
        ax.plot(sizes, entropy[relevant, name], marker="o", label=name)
    ax.plot(sizes, np.log(sizes), color="grey", linestyle=":", label="log n (uniform)")
    ax.axvline(512, color="black", linewidth=0.8, alpha=0.5)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("number of keys n (the scales agree at 512)")
    ax.set_title("one key stands out" if relevant else "no key stands out")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("mean entropy of the attention (nats)")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()
