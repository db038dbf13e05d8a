"""The network behind VAEDensity, in torch: importance-weighted log-densities
and the training loop.

This module imports torch at the top; ``skprob.density`` imports it only when
a VAEDensity is fitted or used, so that skprob works without torch. The
network lives in a dict of NumPy arrays (``"encoder.0.weight"``, ...), which
pickles, copies and compares like any fitted attribute; the functions here
turn it into tensors when they need it. VAEDensity's Notes give the model.
"""

import math
import time
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from joblib import effective_n_jobs

LOG_2PI = math.log(2.0 * math.pi)
# softplus^-1(1): heads whose softplus starts at 1 (prior scale, unit variance)
_SOFTPLUS_INV_1 = math.log(math.e - 1.0)
# the encoder's standard deviations stay above this: its log enters log q(z|x)
_ENCODER_MIN_STD = 1e-4
# rows x importance samples per block when scoring: bounds the memory
_BLOCK = 1 << 15


def init_network(n_features, n_components, hidden_layer_sizes, seed):
    """Initial weights: dict of float32 arrays, PyTorch's ``nn.Linear`` scheme.

    Weights and biases are uniform in ``+-1/sqrt(fan_in)``. The heads of the
    encoder's standard deviation and the decoder's variance start at
    ``softplus(.) = 1`` (the prior's scale; unit variance of standardised
    data). The decoder mirrors the encoder (``hidden_layer_sizes`` reversed).
    Without hidden layers the decoder's variance is one learned constant per
    feature, so that the model is factor analysis.
    """
    generator = torch.Generator().manual_seed(int(seed))
    network = {}

    def linear(name, n_in, n_out, bias=0.0):
        bound = 1.0 / math.sqrt(n_in)
        weight = (torch.rand(n_out, n_in, generator=generator) * 2 - 1) * bound
        network[f"{name}.weight"] = weight.numpy()
        b = (torch.rand(n_out, generator=generator) * 2 - 1) * bound + bias
        network[f"{name}.bias"] = b.numpy()

    sizes = [n_features, *hidden_layer_sizes]
    for i in range(len(hidden_layer_sizes)):
        linear(f"encoder.{i}", sizes[i], sizes[i + 1])
    linear("encoder.mean", sizes[-1], n_components)
    linear("encoder.std", sizes[-1], n_components, _SOFTPLUS_INV_1)
    sizes = [n_components, *hidden_layer_sizes[::-1]]
    for i in range(len(hidden_layer_sizes)):
        linear(f"decoder.{i}", sizes[i], sizes[i + 1])
    linear("decoder.mean", sizes[-1], n_features)
    linear("decoder.variance", sizes[-1], n_features, _SOFTPLUS_INV_1)
    if not hidden_layer_sizes:  # factor analysis: variances independent of z
        del network["decoder.variance.weight"]
        network["decoder.variance.bias"][:] = _SOFTPLUS_INV_1
    return {name: np.ascontiguousarray(value) for name, value in network.items()}


def n_hidden_layers(network):
    """Number of hidden layers of the encoder (and of the decoder)."""
    return sum(
        name.startswith("encoder.") and name.split(".")[1].isdigit()
        for name in network
        if name.endswith(".weight")
    )


def as_tensors(network, dtype=torch.float32, device="cpu", requires_grad=False):
    """Copies of the network's arrays as tensors: training never writes into
    the arrays of a fitted estimator (or of a read-only loaded one)."""
    return {
        name: torch.tensor(value, dtype=dtype, device=device).requires_grad_(
            requires_grad
        )
        for name, value in network.items()
    }


def as_arrays(params):
    """Tensors back to a dict of float32 arrays (copies)."""
    return {
        name: value.detach().to("cpu", torch.float32).numpy().copy()
        for name, value in params.items()
    }


def _linear(params, name, h):
    weight = params.get(f"{name}.weight")
    bias = params[f"{name}.bias"]
    if weight is None:  # a constant head
        return bias.expand(*h.shape[:-1], bias.shape[0])
    return F.linear(h, weight, bias)


def _hidden(params, part, h, n_layers):
    for i in range(n_layers):
        h = F.relu(
            F.linear(h, params[f"{part}.{i}.weight"], params[f"{part}.{i}.bias"])
        )
    return h


def encode(params, X, n_layers):
    """Mean and standard deviation of ``p(z|x)``, each (n_samples, n_components)."""
    h = _hidden(params, "encoder", X, n_layers)
    mean = _linear(params, "encoder.mean", h)
    std = F.softplus(_linear(params, "encoder.std", h)) + _ENCODER_MIN_STD
    return mean, std


def decode(params, Z, n_layers, min_variance):
    """Mean and variance of ``q(x|z)`` (standardised units), shape (..., d)."""
    h = _hidden(params, "decoder", Z, n_layers)
    mean = _linear(params, "decoder.mean", h)
    variance = F.softplus(_linear(params, "decoder.variance", h)) + min_variance
    return mean, variance


def log_weights(params, X, noise, n_layers, min_variance):
    """``log q(x|z_k) + log q(z_k) - log p(z_k|x)`` for ``z_k = mean + std eps_k``.

    ``X`` is (n, d) standardised; ``noise`` is (K, L), the same for every row
    (common random numbers), or (n, K, L). Returns (n, K).
    """
    mean, std = encode(params, X, n_layers)
    if noise.dim() == 2:
        noise = noise.expand(X.shape[0], *noise.shape)
    Z = mean[:, None, :] + std[:, None, :] * noise  # (n, K, L)
    x_mean, x_variance = decode(params, Z, n_layers, min_variance)  # (n, K, d)
    log_px_z = -0.5 * (
        (X[:, None, :] - x_mean) ** 2 / x_variance + torch.log(x_variance) + LOG_2PI
    ).sum(-1)
    log_pz = -0.5 * (Z**2 + LOG_2PI).sum(-1)
    # log N(z; mean, std^2) at z = mean + std eps: the Jacobian of eps -> z
    log_qz_x = -0.5 * (noise**2 + LOG_2PI).sum(-1) - torch.log(std).sum(-1)[:, None]
    return log_px_z + log_pz - log_qz_x


def importance_log_density(params, X, noise, n_layers, min_variance):
    """``logmeanexp_k`` of the log-weights: the K-sample estimate, shape (n,)."""
    log_w = log_weights(params, X, noise, n_layers, min_variance)
    return torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1])


def score_rows(network, X, noise, min_variance, device="cpu"):
    """Importance-sampling log-density of standardised rows, in float64.

    Rows are scored in blocks of about ``_BLOCK / K`` rows; every row sees the
    same ``noise`` (K, L), so a row's score does not depend on the others.
    """
    n_layers = n_hidden_layers(network)
    with torch.no_grad():
        params = as_tensors(network, torch.float64, device)
        noise = torch.as_tensor(noise, dtype=torch.float64, device=device)
        X = torch.as_tensor(X, dtype=torch.float64, device=device)
        step = max(1, _BLOCK // noise.shape[0])
        scores = [
            importance_log_density(
                params, X[i : i + step], noise, n_layers, min_variance
            )
            for i in range(0, X.shape[0], step)
        ]
        return torch.cat(scores).cpu().numpy() if scores else np.zeros(0)


def encoder_mean(network, X, device="cpu"):
    """Mean of ``p(z|x)`` for standardised rows, float64 (n, n_components)."""
    with torch.no_grad():
        params = as_tensors(network, torch.float64, device)
        X = torch.as_tensor(X, dtype=torch.float64, device=device)
        return encode(params, X, n_hidden_layers(network))[0].cpu().numpy()


def sample_rows(network, latent, noise, min_variance, device="cpu"):
    """``x = mean(z) + sqrt(variance(z)) noise`` for given ``z`` and noise."""
    with torch.no_grad():
        params = as_tensors(network, torch.float64, device)
        Z = torch.as_tensor(latent, dtype=torch.float64, device=device)
        mean, variance = decode(params, Z, n_hidden_layers(network), min_variance)
        noise = torch.as_tensor(noise, dtype=torch.float64, device=device)
        return (mean + variance.sqrt() * noise).cpu().numpy()


class Trainer:
    """Adam on the negative importance-weighted bound, epoch by epoch.

    Holds the tensors while training; ``network()`` and ``optimizer_state()``
    return plain arrays again, so that training can resume (``partial_fit``)
    from a fitted, pickled or copied estimator.

    Parameters
    ----------
    network : dict of arrays
    optimizer_state : dict or None
        What ``optimizer_state()`` returned, to resume; None starts Adam anew.
    learning_rate : float
    n_importance_samples : int
        K of the bound (1: the VAE's evidence lower bound).
    min_variance : float
    seed : int
        Seeds the noise draws and the order of the rows.
    device : str
    """

    def __init__(
        self,
        network,
        optimizer_state,
        *,
        learning_rate,
        n_importance_samples,
        min_variance,
        seed,
        device,
    ):
        self.params = as_tensors(network, device=device, requires_grad=True)
        self.n_layers = n_hidden_layers(network)
        self.n_components = network["encoder.mean.bias"].shape[0]
        self.k = n_importance_samples
        self.min_variance = min_variance
        self.device = device
        self.generator = torch.Generator(device=device).manual_seed(int(seed))
        self.order_rng = np.random.RandomState(int(seed) % (2**32))
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=learning_rate)
        if optimizer_state is not None:
            self._load_optimizer_state(optimizer_state)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate

    def epoch(self, X, sample_weight, batch_size):
        """One pass over the rows in a random order; returns the mean bound.

        ``sample_weight`` has mean one over ``X``: each batch's loss is the
        mean of ``weight * bound``, an unbiased estimate of the weighted mean.
        """
        n = X.shape[0]
        order = self.order_rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch_size):
            rows = torch.as_tensor(order[start : start + batch_size], device=X.device)
            noise = torch.randn(
                len(rows),
                self.k,
                self.n_components,
                generator=self.generator,
                device=self.device,
            )
            bound = importance_log_density(
                self.params, X[rows], noise, self.n_layers, self.min_variance
            )
            loss = -(sample_weight[rows] * bound).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total -= loss.item() * len(rows)
        return total / n

    def evaluate(self, X, sample_weight, noise):
        """Weighted mean K-sample estimate on fixed noise (for early stopping)."""
        with torch.no_grad():
            scores = importance_log_density(
                self.params, X, noise, self.n_layers, self.min_variance
            )
            return float((sample_weight * scores).sum() / sample_weight.sum())

    def set_learning_rate(self, learning_rate):
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate

    def snapshot(self):
        return {name: value.detach().clone() for name, value in self.params.items()}

    def restore(self, snapshot):
        with torch.no_grad():
            for name, value in snapshot.items():
                self.params[name].copy_(value)

    def network(self, snapshot=None):
        return as_arrays(self.params if snapshot is None else snapshot)

    def optimizer_state(self):
        """Adam's moments and step count as arrays, keyed by parameter name."""
        state = {"step": 0, "exp_avg": {}, "exp_avg_sq": {}}
        for name, param in self.params.items():
            moments = self.optimizer.state.get(param)
            if not moments:
                continue
            state["step"] = int(moments["step"])
            for key in ("exp_avg", "exp_avg_sq"):
                state[key][name] = moments[key].detach().cpu().numpy().copy()
        return state

    def _load_optimizer_state(self, state):
        for name, param in self.params.items():
            if name not in state["exp_avg"]:
                continue
            self.optimizer.state[param] = {
                "step": torch.tensor(float(state["step"])),
                "exp_avg": torch.as_tensor(
                    state["exp_avg"][name], device=self.device
                ).clone(),
                "exp_avg_sq": torch.as_tensor(
                    state["exp_avg_sq"][name], device=self.device
                ).clone(),
            }


def to_tensor(X, device):
    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=device)


def train(
    network,
    optimizer_state,
    X,
    sample_weight,
    X_val=None,
    val_weight=None,
    *,
    n_epochs,
    batch_size,
    learning_rate,
    n_importance_samples,
    n_iter_no_change,
    min_variance,
    seed,
    validation_noise,
    device="cpu",
    offset=0.0,
    val_offset=0.0,
    verbose=False,
    first_epoch=0,
):
    """Epochs of Adam on standardised rows, with early stopping on ``X_val``.

    With validation rows: after ``n_iter_no_change`` epochs without a better
    validation score, restore the best network and divide the learning rate
    by 10; the second time, stop. The best network is returned. ``offset``
    and ``val_offset`` (the Jacobian and the constant features' terms) are
    added to the reported scores, so that they are nats per row of the data
    as given.

    Returns
    -------
    result : dict
        ``network``, ``optimizer_state``, ``objectives`` (one per epoch),
        ``validation_scores`` (or None), ``best_validation_score`` (or None),
        ``stopped`` (early stopping ended the training).
    """
    trainer = Trainer(
        network,
        optimizer_state,
        learning_rate=learning_rate,
        n_importance_samples=n_importance_samples,
        min_variance=min_variance,
        seed=seed,
        device=device,
    )
    X = to_tensor(X, device)
    sample_weight = to_tensor(sample_weight / sample_weight.mean(), device)
    batch_size = min(batch_size, X.shape[0])
    validating = X_val is not None
    if validating:
        X_val, val_weight = to_tensor(X_val, device), to_tensor(val_weight, device)
        noise = torch.as_tensor(validation_noise, dtype=torch.float32, device=device)
    objectives, scores = [], []
    best, best_params, stalled, lowered, stopped = -np.inf, None, 0, False, False
    start = time.perf_counter()
    for epoch in range(first_epoch + 1, first_epoch + n_epochs + 1):
        objectives.append(trainer.epoch(X, sample_weight, batch_size) + offset)
        line = f"epoch {epoch}: training bound {objectives[-1]:.3f}"
        if validating:
            scores.append(trainer.evaluate(X_val, val_weight, noise) + val_offset)
            if scores[-1] > best:
                best, best_params, stalled = scores[-1], trainer.snapshot(), 0
            else:
                stalled += 1
            line += f", validation {scores[-1]:.3f} (best {best:.3f})"
        if verbose:
            elapsed = time.perf_counter() - start
            print(f"{line} nats per row, {elapsed:.1f} s", flush=True)
        if validating and stalled >= n_iter_no_change:
            trainer.restore(best_params)
            if lowered:
                stopped = True
                break
            lowered, stalled = True, 0
            trainer.set_learning_rate(learning_rate / 10)
            if verbose:
                print("validation score stalled: learning rate / 10", flush=True)
    if validating:
        trainer.restore(best_params)
    return {
        "network": trainer.network(),
        "optimizer_state": trainer.optimizer_state(),
        "objectives": objectives,
        "validation_scores": scores if validating else None,
        "best_validation_score": best if validating else None,
        "stopped": stopped,
    }


def check_device(device):
    """A clear ValueError for a device torch cannot use."""
    if device == "cpu":
        return
    try:
        kind = torch.device(device).type
    except RuntimeError as error:
        raise ValueError(f"device={device!r} is not valid: {error}") from None
    if kind not in ("cpu", "cuda"):
        raise ValueError(f'device must be "cpu" or "cuda[:index]"; got {device!r}.')
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f'device={device!r}, but torch sees no CUDA device; use device="cpu".'
        )


@contextmanager
def threads(n_jobs):
    """torch's intra-op threads for the duration of a call (None: one)."""
    n_threads = effective_n_jobs(n_jobs)
    previous = torch.get_num_threads()
    if n_threads != previous:
        torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        if n_threads != previous:
            torch.set_num_threads(previous)
