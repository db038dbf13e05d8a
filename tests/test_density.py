"""VAEDensity against exact densities, and its scikit-learn behaviour.

The references are independent of the network: the closed-form density of a
linear-Gaussian model (the true parameters, FactorAnalysis, and the fitted
linear decoder itself), the true density of a Gaussian mixture, and the
change-of-variables rule for the standardisation.
"""

import copy
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning

from skprob import VAEDensity

torch = pytest.importorskip("torch", reason="VAEDensity needs the torch extra")


def fit(model, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, **kwargs)


# ---------------------------------------------------------------------------
# (a) a linear decoder is factor analysis
# ---------------------------------------------------------------------------

_rng = np.random.RandomState(0)
D, L = 6, 2
W_TRUE = 1.5 * _rng.normal(size=(D, L))
PSI_TRUE = _rng.uniform(0.2, 0.6, size=D)
MU_TRUE = 3.0 * _rng.normal(size=D)


def linear_gaussian(n, rng):
    z = rng.normal(size=(n, L))
    return z @ W_TRUE.T + MU_TRUE + rng.normal(size=(n, D)) * np.sqrt(PSI_TRUE)


@pytest.fixture(scope="module")
def linear_fit():
    rng = np.random.RandomState(1)
    X, X_test = linear_gaussian(3000, rng), linear_gaussian(1000, rng)
    model = VAEDensity(
        L,
        hidden_layer_sizes=(),
        max_iter=100,
        batch_size=256,
        learning_rate=1e-2,
        random_state=0,
    )
    return fit(model, X), X, X_test


def decoder_marginal(model, X):
    """Exact log-density of the fitted linear model: N(b, W W' + diag(v))."""
    net = model._network
    W = net["decoder.mean.weight"].astype(np.float64)
    b = net["decoder.mean.bias"].astype(np.float64)
    v = np.logaddexp(0.0, net["decoder.variance.bias"].astype(np.float64))
    v += model.min_variance
    Z = (X - model.mean_) / model.scale_
    standardised = multivariate_normal(b, W @ W.T + np.diag(v)).logpdf(Z)
    return standardised - np.log(model.scale_).sum()


def test_linear_decoder_estimate_converges_to_its_exact_density(linear_fit):
    """The importance-sampling estimate approaches the model's closed form."""
    model, _, X_test = linear_fit
    model = copy.deepcopy(model)
    exact = decoder_marginal(model, X_test)
    errors = {}
    for k in (1, 10, 1000):
        scores = model.set_params(n_score_samples=k).score_samples(X_test)
        errors[k] = np.abs(scores - exact).mean()
    assert errors[1000] < errors[10] < errors[1]
    assert errors[1000] < 0.03 and errors[1000] < errors[1] / 5


def test_linear_decoder_is_factor_analysis(linear_fit):
    """Trained on linear-Gaussian data, it matches FactorAnalysis and the truth."""
    model, X, X_test = linear_fit
    truth = multivariate_normal(MU_TRUE, W_TRUE @ W_TRUE.T + np.diag(PSI_TRUE))
    fa = FactorAnalysis(L).fit(X)
    ours = model.score_samples(X_test)
    assert abs(ours.mean() - fa.score(X_test)) < 0.05
    assert np.abs(ours - fa.score_samples(X_test)).mean() < 0.15
    assert abs(ours.mean() - truth.logpdf(X_test).mean()) < 0.06


# ---------------------------------------------------------------------------
# (b) a Gaussian mixture: a lower estimate that rises with K
# ---------------------------------------------------------------------------

MIX_MEANS = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
MIX_COV = np.array([[1.0, 0.6], [0.6, 0.8]])


def mixture(n, rng):
    labels = rng.randint(3, size=n)
    return MIX_MEANS[labels] + rng.multivariate_normal([0, 0], MIX_COV, size=n)


def mixture_logpdf(X):
    parts = [multivariate_normal(m, MIX_COV).logpdf(X) for m in MIX_MEANS]
    return logsumexp(parts, axis=0) - np.log(3)


@pytest.fixture(scope="module")
def mixture_fit():
    rng = np.random.RandomState(2)
    X, X_test = mixture(2000, rng), mixture(1000, rng)
    model = VAEDensity(
        2,
        hidden_layer_sizes=(32, 32),
        max_iter=60,
        batch_size=128,
        learning_rate=3e-3,
        random_state=0,
    )
    return fit(model, X), X, X_test


def test_mixture_estimate_is_below_the_truth_and_rises_with_k(mixture_fit):
    """E[estimate with K samples] <= log q(x), rising with K (Burda et al.).

    One fixed noise matrix serves every row, so the mean over rows keeps the
    error of that one draw; the expectation over the noise is estimated by
    averaging over independent noise matrices (other score seeds).
    """
    model, _, X_test = mixture_fit
    model = copy.deepcopy(model)
    true = mixture_logpdf(X_test)
    means = {}
    for k, n_draws in ((1, 256), (3, 256), (1000, 1)):
        model.set_params(n_score_samples=k)
        draws = []
        for seed in range(n_draws):
            model._score_seed = seed  # another fixed noise matrix
            draws.append(model.score_samples(X_test))
        scores = np.mean(draws, axis=0)
        # no density beats the truth on fresh data, up to the test sample's error
        error = 3 * np.std(scores - true) / np.sqrt(len(true))
        assert scores.mean() <= true.mean() + error, k
        means[k] = scores.mean()
    assert means[1] < means[3] < means[1000]
    assert means[1000] > true.mean() - 0.7  # and the fit is not far off


# ---------------------------------------------------------------------------
# (c) determinism, invariances, the Jacobian, sampling, partial_fit, pickle
# ---------------------------------------------------------------------------

_rng = np.random.RandomState(3)
X_SMALL = mixture(300, _rng) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 2.0]])
X_SMALL += 0.3 * _rng.normal(size=X_SMALL.shape)


def small(**params):
    defaults = dict(
        n_components=2, hidden_layer_sizes=(16,), max_iter=15, random_state=0
    )
    return VAEDensity(**{**defaults, **params})


@pytest.fixture(scope="module")
def small_fit():
    return fit(small(), X_SMALL)


def test_fit_twice_with_one_random_state_is_identical(small_fit):
    again = fit(small(), X_SMALL)
    assert_array_equal(again.score_samples(X_SMALL), small_fit.score_samples(X_SMALL))
    assert_array_equal(again.transform(X_SMALL), small_fit.transform(X_SMALL))
    assert again.loss_curve_ == small_fit.loss_curve_
    other = fit(small(random_state=1), X_SMALL)
    assert not np.array_equal(
        other.score_samples(X_SMALL), again.score_samples(X_SMALL)
    )


def test_scores_are_row_wise(small_fit):
    scores = small_fit.score_samples(X_SMALL)
    order = np.random.RandomState(0).permutation(len(X_SMALL))
    assert_allclose(small_fit.score_samples(X_SMALL[order]), scores[order], rtol=1e-12)
    for rows in (slice(0, 1), slice(5, 50), slice(100, None)):
        assert_allclose(
            small_fit.score_samples(X_SMALL[rows]), scores[rows], rtol=1e-12
        )
    assert small_fit.score(X_SMALL) == pytest.approx(scores.mean(), rel=1e-12)


@pytest.mark.parametrize("c", [1e-3, 7.0, 1e6])
def test_scaled_data_shift_the_log_density_by_the_jacobian(small_fit, c):
    """Standardisation makes the fit scale-free: log q(c x) = log q(x) - d log c."""
    scaled = fit(small(), c * X_SMALL)
    assert_allclose(scaled.mean_, c * small_fit.mean_, rtol=1e-12)
    shift = X_SMALL.shape[1] * np.log(c)
    assert_allclose(
        scaled.score_samples(c * X_SMALL),
        small_fit.score_samples(X_SMALL) - shift,
        rtol=1e-4,
    )


def test_jacobian_of_the_standardisation_on_one_network(small_fit):
    """The same network with its scale doubled: every score drops by d log 2."""
    doubled = copy.deepcopy(small_fit)
    doubled.mean_ = 2.0 * small_fit.mean_
    doubled.scale_ = 2.0 * small_fit.scale_
    expected = small_fit.score_samples(X_SMALL) - X_SMALL.shape[1] * np.log(2.0)
    assert_allclose(doubled.score_samples(2.0 * X_SMALL), expected, rtol=1e-12)


def test_density_integrates_to_one_in_one_dimension():
    """A 1-D fit, integrated on a grid: the estimate is a density (<= 1)."""
    rng = np.random.RandomState(4)
    x = np.concatenate([rng.normal(-2, 0.5, 240), rng.normal(1, 1.0, 360)])
    model = VAEDensity(
        1,
        hidden_layer_sizes=(16, 16),
        max_iter=60,
        batch_size=100,
        learning_rate=3e-3,
        random_state=0,
    )
    fit(model, x[:, None])
    grid = np.linspace(-7, 7, 1401)[:, None]
    density = np.exp(model.set_params(n_score_samples=1000).score_samples(grid))
    mass = density.sum() * (grid[1, 0] - grid[0, 0])
    # the estimate is below the density on average (Jensen): mass a bit < 1
    assert 0.9 < mass <= 1.01


def test_sample_shape_and_moments(mixture_fit):
    model, X, _ = mixture_fit
    drawn = model.sample(4000, random_state=0)
    assert drawn.shape == (4000, 2) and drawn.dtype == np.float64
    assert_array_equal(drawn, model.sample(4000, random_state=0))
    # in standard units of the data: means within 0.1, covariances within 0.15
    scale = X.std(axis=0)
    assert_allclose(drawn.mean(axis=0) / scale, X.mean(axis=0) / scale, atol=0.1)
    drawn_cov = np.cov(drawn.T) / np.outer(scale, scale)
    assert_allclose(drawn_cov, np.cov(X.T) / np.outer(scale, scale), atol=0.15)
    # and they come from the fitted density: scored like the data
    model = copy.deepcopy(model).set_params(n_score_samples=100)
    assert abs(model.score(drawn[:1000]) - model.score(X[:1000])) < 0.3
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(0)


def test_transform_is_the_encoder_mean(linear_fit):
    """A linear encoder: the embedding is W ((x - mean_) / scale_) + b."""
    model, _, X_test = linear_fit
    W = model._network["encoder.mean.weight"].astype(np.float64)
    b = model._network["encoder.mean.bias"].astype(np.float64)
    Z = model.transform(X_test)
    assert Z.shape == (len(X_test), L) and Z.dtype == np.float64
    assert_allclose(Z, ((X_test - model.mean_) / model.scale_) @ W.T + b, rtol=1e-10)
    assert model.transform(X_test.astype(np.float32)).dtype == np.float32
    assert list(model.get_feature_names_out()) == ["vaedensity0", "vaedensity1"]


def test_partial_fit_continues_training():
    model = small(learning_rate=1e-2)
    chunks = np.array_split(X_SMALL, 3)
    model.partial_fit(chunks[0])
    assert model.n_iter_ == 1
    first = model.score(X_SMALL)
    mean, scale = model.mean_.copy(), model.scale_.copy()
    for _ in range(10):
        for chunk in chunks:
            model.partial_fit(chunk)
    assert model.n_iter_ == 31 and len(model.loss_curve_) == 31
    assert model.score(X_SMALL) > first + 0.5
    assert_array_equal(model.mean_, mean)  # fixed by the first call
    assert_array_equal(model.scale_, scale)
    # after fit, partial_fit goes on from the fitted network
    fitted = fit(small(), X_SMALL)
    before, epochs = fitted.score(X_SMALL), fitted.n_iter_
    fitted.partial_fit(X_SMALL)
    assert fitted.n_iter_ == epochs + 1
    assert fitted.score(X_SMALL) != before
    with pytest.raises(ValueError, match="features"):
        fitted.partial_fit(X_SMALL[:, :2])


def _skops_round_trip(model):
    """Through skops.io, trusting exactly the documented type."""
    sio = pytest.importorskip("skops.io")
    data = sio.dumps(model)
    assert sio.get_untrusted_types(data=data) == ["skprob.density.VAEDensity"]
    assert "``skprob.density.VAEDensity``" in VAEDensity.__doc__
    return sio.loads(data, trusted=["skprob.density.VAEDensity"])


def test_pickle_deepcopy_and_skops_round_trips(small_fit):
    expected = small_fit.score_samples(X_SMALL)
    copies = (
        pickle.loads(pickle.dumps(small_fit)),
        copy.deepcopy(small_fit),
        _skops_round_trip(small_fit),
    )
    for loaded in copies:
        assert_array_equal(loaded.score_samples(X_SMALL), expected)
        assert_array_equal(loaded.transform(X_SMALL), small_fit.transform(X_SMALL))
    # a pickled model trains on as the original does
    loaded = pickle.loads(pickle.dumps(small_fit))
    small_copy = copy.deepcopy(small_fit)
    loaded.partial_fit(X_SMALL)
    small_copy.partial_fit(X_SMALL)
    assert_array_equal(loaded.score_samples(X_SMALL), small_copy.score_samples(X_SMALL))


def test_sample_weight_integer_weights_act_as_repeated_rows():
    """Weighted and repeated fits differ by training noise only."""
    rng = np.random.RandomState(6)
    X = mixture(400, rng)
    weights = rng.randint(0, 3, size=len(X))
    params = dict(
        hidden_layer_sizes=(32, 32),
        max_iter=40,
        batch_size=100,
        learning_rate=3e-3,
        early_stopping=False,
    )
    repeated_X = np.repeat(X, weights, axis=0)
    weighted = fit(VAEDensity(2, random_state=0, **params), X, sample_weight=weights)
    repeated = fit(VAEDensity(2, random_state=0, **params), repeated_X)
    reseeded = fit(VAEDensity(2, random_state=1, **params), repeated_X)
    assert_allclose(weighted.mean_, repeated.mean_, rtol=1e-12)
    assert_allclose(weighted.scale_, repeated.scale_, rtol=1e-12)
    X_test = mixture(1000, rng)
    noise = np.abs(repeated.score_samples(X_test) - reseeded.score_samples(X_test))
    gap = np.abs(weighted.score_samples(X_test) - repeated.score_samples(X_test))
    assert gap.mean() < 2 * noise.mean()
    assert abs(weighted.score(X_test) - repeated.score(X_test)) < 0.1


def test_rows_of_weight_zero_are_not_learnt():
    rng = np.random.RandomState(8)
    X = mixture(600, rng)
    top = X[:, 1] > 2.0  # the component at (0, 4)
    params = dict(
        hidden_layer_sizes=(32, 32),
        max_iter=40,
        batch_size=100,
        learning_rate=3e-3,
        random_state=0,
    )
    unweighted = fit(VAEDensity(2, **params), X)
    weighted = fit(VAEDensity(2, **params), X, sample_weight=(~top).astype(float))
    assert weighted.score(X[top]) < unweighted.score(X[top]) - 3.0
    assert weighted.score(X[~top]) > unweighted.score(X[~top]) - 0.5


def test_float32_and_pandas_input(small_fit):
    as32 = fit(small(), X_SMALL.astype(np.float32))
    reference = fit(small(), X_SMALL.astype(np.float32).astype(np.float64))
    assert_array_equal(as32.score_samples(X_SMALL), reference.score_samples(X_SMALL))
    frame = pd.DataFrame(X_SMALL, columns=["a", "b", "c"])
    named = fit(small(), frame)
    assert_array_equal(named.feature_names_in_, ["a", "b", "c"])
    assert_array_equal(named.score_samples(frame), small_fit.score_samples(X_SMALL))


def test_constant_feature_adds_a_gaussian_of_the_floor_variance():
    """Constant features stay out of the network: the same network as without
    them, plus log N(x_j; constant, min_variance) each."""
    X = np.column_stack([X_SMALL[:, :2], np.full(len(X_SMALL), 4.0)])
    model = fit(small(), X)
    without = fit(small(), X_SMALL[:, :2])
    assert model.scale_[2] == 1.0
    peak = -0.5 * np.log(2 * np.pi * model.min_variance)
    scores = model.score_samples(X)
    assert_allclose(scores, without.score_samples(X_SMALL[:, :2]) + peak, rtol=1e-12)
    moved = X.copy()
    moved[:, 2] += 0.1
    expected = scores - 0.5 * 0.1**2 / model.min_variance
    assert_allclose(model.score_samples(moved), expected, rtol=1e-12)
    assert_allclose(model.sample(2000, random_state=0)[:, 2].std(), 0.0316, rtol=0.05)
    # a single row: every feature is constant, the density is that Gaussian
    one = fit(small(), X_SMALL[:1])
    assert_allclose(one.score_samples(X_SMALL[:1]), 3 * peak, rtol=1e-12)
    assert_array_equal(one.transform(X_SMALL[:2]), np.zeros((2, 2)))


def test_repeated_rows_do_not_make_the_density_diverge():
    X = np.repeat(X_SMALL[:5], 60, axis=0)
    model = fit(small(max_iter=60), X)
    scores = model.score_samples(X_SMALL[:5])
    peak = -0.5 * np.log(2 * np.pi * model.min_variance) - np.log(model.scale_)
    assert np.isfinite(scores).all() and (scores <= peak.sum() + 1e-9).all()


def test_early_stopping_keeps_the_best_network():
    rng = np.random.RandomState(7)
    X = mixture(500, rng)
    model = fit(
        VAEDensity(2, hidden_layer_sizes=(32,), max_iter=200, random_state=0), X
    )
    assert model.n_iter_ < 200  # stopped
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert len(model.validation_scores_) == model.n_iter_


def test_verbose_prints_one_line_per_epoch(capsys):
    fit(small(max_iter=3, verbose=1), X_SMALL)
    lines = [line for line in capsys.readouterr().out.splitlines() if "epoch" in line]
    assert len(lines) == 3 and "validation" in lines[0] and "nats per row" in lines[0]


@pytest.mark.parametrize(
    "params, match",
    [
        ({"device": "cuda:7" if not torch.cuda.is_available() else "bad"}, "device"),
        ({"hidden_layer_sizes": "wide"}, "hidden_layer_sizes"),
        ({"n_importance_samples": 0}, "n_importance_samples"),
    ],
)
def test_bad_parameters_are_clear_errors(params, match):
    with pytest.raises(ValueError, match=match):
        VAEDensity(**params).fit(X_SMALL)


def test_bad_input_is_a_clear_error(small_fit):
    with pytest.raises(ValueError, match="NaN"):
        small().fit(np.where(X_SMALL > 2, np.nan, X_SMALL))
    with pytest.raises(ValueError, match="3 features"):
        small_fit.score_samples(X_SMALL[:, :2])
    with pytest.raises(ValueError, match="non-zero"):
        small().fit(X_SMALL, sample_weight=np.zeros(len(X_SMALL)))


def test_without_torch_fit_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails
    monkeypatch.delitem(sys.modules, "skprob._vae", raising=False)
    with pytest.raises(ImportError, match=r'pip install "skprob\[torch\]"'):
        VAEDensity().fit(X_SMALL)


def test_skprob_imports_without_torch(checkout_env):
    """``import skprob`` and the other estimators never import torch; without
    it, VAEDensity can be created, and fit says what to install."""
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(name, name=name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "import numpy as np, skprob\n"
        "X = np.random.RandomState(0).normal(size=(30, 3)); y = X[:, 0] > 0\n"
        "skprob.AnalyticLogisticRegression().fit(X, y).predict(X)\n"
        "skprob.GaussianDistance().fit(X).distance(X)\n"
        "model = skprob.VAEDensity()\n"
        "try:\n"
        "    model.fit(X)\n"
        "except ImportError as error:\n"
        "    print(error)\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=checkout_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert 'pip install "skprob[torch]"' in result.stdout
