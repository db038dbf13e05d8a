"""Density estimation: VAEDensity, a variational autoencoder read as a density.

torch is an optional dependency, imported only when a VAEDensity is fitted or
used (``pip install "skprob[torch]"``).
"""

import importlib
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._sklearn import Interval, _check_sample_weight, _fit_context

__all__ = ["VAEDensity"]

_INSTALL = 'VAEDensity needs PyTorch: pip install "skprob[torch]"'


def _torch_core():
    """The torch part (``skprob._vae``), or an ImportError that says what to do."""
    try:
        return importlib.import_module("skprob._vae")
    except ImportError as error:
        if error.name is not None and error.name.split(".")[0] != "torch":
            raise
        raise ImportError(f"{_INSTALL} (import torch failed: {error}).") from error


def _standardization(X, sample_weight):
    """Weighted mean, scale and constancy of each feature (scale 1 if constant).

    A feature is constant when its variance is within rounding of zero for
    its magnitude (the bound of scikit-learn's StandardScaler).
    """
    mean = np.average(X, axis=0, weights=sample_weight)
    variance = np.average((X - mean) ** 2, axis=0, weights=sample_weight)
    n = X.shape[0]
    eps = np.finfo(np.float64).eps
    constant = variance <= n * eps * variance + (n * mean * eps) ** 2
    scale = np.where(constant, 1.0, np.sqrt(variance))
    return mean, scale, constant


class VAEDensity(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    r"""Density estimate by a variational autoencoder (importance-weighted).

    A VAE is a continuous mixture: a latent ``z ~ N(0, I)`` and a Gaussian
    decoder ``q(x|z)`` define ``q(x) = E_z q(x|z)``, a density on the data.
    Its log is estimated by importance sampling with the encoder ``p(z|x)`` as
    proposal, and training maximises that estimate (the importance-weighted
    bound; one sample gives the usual VAE objective). The interface is the one
    of scikit-learn's density estimators
    (:class:`~sklearn.neighbors.KernelDensity`,
    :class:`~sklearn.mixture.GaussianMixture`):
    :meth:`score_samples` gives the log-density of each row, :meth:`sample`
    draws new rows and :meth:`transform` embeds rows in the latent space.

    Requires PyTorch (``pip install "skprob[torch]"``).

    Parameters
    ----------
    n_components : int, default=16
        Dimension of the latent space.
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Hidden layers of the encoder; the decoder has the same layers in
        reverse order. ``()`` makes both linear: the model is then factor
        analysis (see Notes).
    n_importance_samples : int, default=8
        ``K`` of the training objective: 1 is the VAE's evidence lower bound,
        more samples the tighter importance-weighted bound (slower per epoch,
        usually a better density).
    n_score_samples : int, default=1000
        Importance samples per row in :meth:`score_samples` and :meth:`score`.
        The estimate of ``log q(x)`` is biased low by about
        ``Var[w] / (2 K E[w]^2)``: more samples, a tighter estimate, with cost
        linear in ``n_score_samples``.
    max_iter : int, default=300
        Largest number of epochs (passes over the training rows) in
        :meth:`fit`.
    batch_size : int, default=64
        Rows per gradient step (the whole data when fewer rows).
    learning_rate : float, default=1e-3
        Step size of Adam.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows and keep the network with
        the best validation log-likelihood; see Notes for the schedule.
    validation_fraction : float, default=0.1
        Fraction of the rows held out when ``early_stopping`` (at least one
        row; no early stopping with fewer than two rows).
    n_iter_no_change : int, default=20
        Epochs without a better validation score before the learning rate is
        lowered, or training stops.
    min_variance : float, default=1e-3
        Floor on the decoder's variances, in units of each feature's variance
        (the inputs are standardised). Without it a variance can collapse to
        zero on repeated values and the density diverges; with it, one
        feature contributes at most ``-log(2 pi min_variance) / 2`` nats
        (2.53 at the default) plus ``-log(scale_)``. Constant features get
        this variance in the units of the data (see Notes).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the validation split, the training noise
        and the fixed noise of :meth:`score_samples`. An int gives the same
        fitted model, scores and samples on every call.
    verbose : bool or int, default=False
        Print one line per epoch: the training bound and the validation
        log-likelihood, in nats per row of the data as given.
    device : str, default="cpu"
        Where torch computes: ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"``
        (when torch sees a GPU). The fitted model is stored in NumPy arrays
        either way.
    n_jobs : int or None, default=None
        CPU threads torch uses while this estimator fits, scores, embeds or
        samples (restored afterwards). None means 1 unless in a
        :obj:`joblib.parallel_backend` context; -1 means all processors.
        On an idle machine two threads train the default network up to about
        1.6 times faster; when other processes keep the cores busy, extra
        threads can make training several times slower, hence one by
        default.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Weighted mean of the training rows (subtracted before the network).
    scale_ : ndarray of shape (n_features,)
        Their standard deviation (rows are divided by it); 1 for a constant
        feature.
    n_iter_ : int
        Epochs run (in total over :meth:`partial_fit` calls).
    loss_curve_ : list of float
        Training loss per epoch: minus the mean importance-weighted bound on
        the training rows, in nats per row of the data as given.
    validation_scores_ : list of float or None
        Validation log-likelihood per epoch (``early_stopping``), in nats per
        row, estimated with ``max(n_importance_samples, 32)`` samples.
    best_validation_score_ : float or None
        The best of them: the epoch whose network was kept.
    n_features_in_ : int
        Number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit`, when they are all strings.

    See Also
    --------
    sklearn.neighbors.KernelDensity : Kernel density estimate.
    sklearn.mixture.GaussianMixture : Finite mixture of Gaussians.
    sklearn.decomposition.FactorAnalysis : The linear-Gaussian latent model
        (``hidden_layer_sizes=()`` here).

    Notes
    -----
    **Model.** With ``x`` standardised (``(x - mean_) / scale_``), latent
    ``z ~ N(0, I)`` of dimension ``n_components``, decoder
    ``q(x|z) = N(mu(z), diag(v(z)))`` with ``v = softplus(.) + min_variance``,
    and encoder ``p(z|x) = N(m(x), diag(s(x)^2))``,

    .. math::

        \log q(x) \approx \log \frac{1}{K} \sum_{k=1}^K
        \frac{q(x \mid z_k)\, q(z_k)}{p(z_k \mid x)},
        \qquad z_k = m(x) + s(x)\, \varepsilon_k .

    For any encoder the expectation of this estimate is a lower bound on
    ``log q(x)`` that tightens as ``K`` grows (Burda et al., 2016). Training
    maximises its mean over the rows with ``K = n_importance_samples`` and
    fresh noise at every step; :meth:`score_samples` uses
    ``K = n_score_samples`` and one fixed noise matrix ``eps`` of shape
    ``(n_score_samples, n_components)`` for every row (common random numbers),
    so that a row's score is a deterministic function of that row. The
    density of the data as given adds the Jacobian of the standardisation,
    ``-sum(log scale_)``. The hidden layers use the ReLU activation.

    **Linear case.** With ``hidden_layer_sizes=()`` the decoder is
    ``x = W z + b + noise`` with one learned variance per feature: factor
    analysis, whose density ``N(b, W W' + diag(v))`` the estimate approaches
    as ``K`` grows.

    **Constant features** (zero variance in the training rows, up to
    rounding) have no scale to standardise by and would make the density
    infinite. They stay outside the network: each adds
    ``log N(x_j; mean_j, min_variance)`` (in the units of the data, as
    :class:`~sklearn.mixture.GaussianMixture`'s ``reg_covar``), so the
    density is finite, 2.53 nats per constant feature at its value with the
    default floor, and falls off fast away from it. A single training row
    makes every feature constant: the density is then that Gaussian alone.

    **Training.** Adam on mini-batches of ``batch_size`` rows for at most
    ``max_iter`` epochs. With ``early_stopping``, after ``n_iter_no_change``
    epochs without a better validation score the best network so far is
    restored and the learning rate divided by 10; the second time, training
    stops with the best network. ``sample_weight`` weights each row's term of
    the objective (and the standardisation, and the validation score): an
    integer weight counts a row that many times in expectation, while the
    noise draws and mini-batches of stochastic training differ from those of
    repeated rows, so the two fits agree only up to training noise.

    :meth:`partial_fit` runs one epoch over the rows it is given, with the
    same optimizer state across calls and no early stopping, as
    :meth:`sklearn.neural_network.MLPClassifier.partial_fit`; its first call
    fixes ``mean_`` and ``scale_`` from its rows.

    The fitted network is a dict of float32 NumPy arrays, so the estimator
    pickles and copies without torch; scoring, sampling and embedding need
    torch, and compute in float64. With :func:`skops.io.load`, trust
    ``skprob.density.VAEDensity``.

    References
    ----------
    .. [1] D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes",
       ICLR 2014.
    .. [2] Y. Burda, R. Grosse and R. Salakhutdinov, "Importance Weighted
       Autoencoders", ICLR 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from skprob import VAEDensity
    >>> X = np.random.RandomState(0).normal(size=(200, 3))
    >>> vae = VAEDensity(2, max_iter=20, early_stopping=False, random_state=0).fit(X)
    >>> vae.score_samples(X[:2]).shape, vae.sample(5, random_state=0).shape
    ((2,), (5, 3))
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like"],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "n_score_samples": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "min_variance": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        n_components=16,
        *,
        hidden_layer_sizes=(256, 256),
        n_importance_samples=8,
        n_score_samples=1000,
        max_iter=300,
        batch_size=64,
        learning_rate=1e-3,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        min_variance=1e-3,
        random_state=None,
        verbose=False,
        device="cpu",
        n_jobs=None,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_importance_samples = n_importance_samples
        self.n_score_samples = n_score_samples
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.min_variance = min_variance
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the encoder and decoder to the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows (finite; float32 or float64).
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows (see Notes).

        Returns
        -------
        self : object
            Fitted estimator.
        """
        core = self._core()
        X, sample_weight = self._validate(X, sample_weight, reset=True)
        rng = check_random_state(self.random_state)
        with core.threads(self.n_jobs):
            self._start(core, X, sample_weight, rng)
            val = self._validation_mask(sample_weight, rng)
            if val is None:
                self._train(core, X, sample_weight, None, None, self.max_iter)
            else:
                self._train(
                    core,
                    X[~val],
                    sample_weight[~val],
                    X[val],
                    sample_weight[val],
                    self.max_iter,
                )
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """One epoch over the rows of ``X``; the first call also initialises.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training rows.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows.

        Returns
        -------
        self : object
            The estimator, trained one more epoch.
        """
        core = self._core()
        first_call = not hasattr(self, "_varying")
        X, sample_weight = self._validate(X, sample_weight, reset=first_call)
        with core.threads(self.n_jobs):
            if first_call:
                rng = check_random_state(self.random_state)
                self._start(core, X, sample_weight, rng)
            self._train(core, X, sample_weight, None, None, 1)
        return self

    def _core(self):
        """The torch module, after checking that ``device`` exists."""
        core = _torch_core()
        core.check_device(self.device)
        return core

    def _validate(self, X, sample_weight, reset):
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=reset)
        # C order: the column means (pairwise sums) do not depend on the layout
        X = np.ascontiguousarray(X, dtype=np.float64)
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        if not sample_weight.sum() > 0:  # scikit-learn < 1.7 lets all zeros pass
            raise ValueError(
                "sample_weight must contain at least one non-zero weight: the "
                "rows of weight zero carry no information."
            )
        return X, sample_weight

    def _start(self, core, X, sample_weight, rng):
        """Standardisation, initial network and seeds (first call of a fit)."""
        hidden = np.asarray(self.hidden_layer_sizes)
        if hidden.ndim != 1 or (
            hidden.size and (hidden.dtype.kind not in "iu" or hidden.min() < 1)
        ):
            raise ValueError(
                "hidden_layer_sizes must be a sequence of positive integers (or "
                f"() for linear maps); got {self.hidden_layer_sizes!r}."
            )
        self.mean_, self.scale_, constant = _standardization(X, sample_weight)
        self._varying = ~constant
        seeds = rng.randint(np.iinfo(np.int32).max, size=3)
        self._network = None
        if self._varying.any():  # constant features stay outside the network
            self._network = core.init_network(
                int(self._varying.sum()),
                self.n_components,
                tuple(int(h) for h in hidden),
                seeds[0],
            )
        self._optimizer = None
        self._training_seed = int(seeds[1])
        self._score_seed = int(seeds[2])
        self.n_iter_ = 0
        self.loss_curve_ = []
        self.validation_scores_ = None
        self.best_validation_score_ = None

    def _validation_mask(self, sample_weight, rng):
        """Rows held out for early stopping (None: train on all of them)."""
        n = len(sample_weight)
        if not self.early_stopping or n < 2:
            return None
        n_validation = min(n - 1, max(1, int(round(self.validation_fraction * n))))
        mask = np.zeros(n, dtype=bool)
        mask[rng.permutation(n)[:n_validation]] = True
        if sample_weight[mask].sum() <= 0 or sample_weight[~mask].sum() <= 0:
            return None  # a split without weight can neither score nor train
        return mask

    def _offset(self, X, sample_weight):
        """Weighted mean of the terms outside the network, nats per row."""
        outside = self._outside_log_density(X)
        return float(np.average(outside, weights=sample_weight))

    def _train(self, core, X, sample_weight, X_val, val_weight, n_epochs):
        """Train the network for ``n_epochs`` (early stopping with ``X_val``)."""
        if self._network is None:  # every feature is constant: nothing to learn
            return
        validating = X_val is not None
        if validating:
            noise = np.random.RandomState(self._score_seed).standard_normal(
                (max(self.n_importance_samples, 32), self.n_components)
            )
        # a seed per call: partial_fit calls draw new noise and row orders
        seed = np.random.SeedSequence([self._training_seed, self.n_iter_])
        result = core.train(
            self._network,
            self._optimizer,
            self._standardize(X),
            sample_weight,
            self._standardize(X_val) if validating else None,
            val_weight,
            n_epochs=n_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            n_importance_samples=self.n_importance_samples,
            n_iter_no_change=self.n_iter_no_change,
            min_variance=self.min_variance,
            seed=int(seed.generate_state(1)[0]),
            validation_noise=noise if validating else None,
            device=self.device,
            offset=self._offset(X, sample_weight),
            val_offset=self._offset(X_val, val_weight) if validating else 0.0,
            verbose=bool(self.verbose),
            first_epoch=self.n_iter_,
        )
        self._network = result["network"]
        self._optimizer = result["optimizer_state"]
        self.n_iter_ += len(result["objectives"])
        self.loss_curve_.extend(-bound for bound in result["objectives"])
        if validating:
            self.validation_scores_ = result["validation_scores"]
            self.best_validation_score_ = result["best_validation_score"]
            if not result["stopped"]:
                warnings.warn(
                    f"VAEDensity reached max_iter={self.max_iter} epochs before "
                    "early stopping ended training; increase max_iter.",
                    ConvergenceWarning,
                )

    # ---------------------------------------------------------- prediction

    def _checked(self, X):
        """Rows validated against the fitted estimator (float32 or float64)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return np.ascontiguousarray(X)  # the same sums whatever the layout

    def _standardize(self, X):
        """The network's input: standardised varying features, float64, C order."""
        v = self._varying
        Z = (X[:, v].astype(np.float64, copy=False) - self.mean_[v]) / self.scale_[v]
        return np.ascontiguousarray(Z)

    def _outside_log_density(self, X):
        """Per row: the Jacobian ``-sum(log scale_)`` and the constant features'
        ``log N(x_j; mean_j, min_variance)``."""
        c = ~self._varying
        deviation = X[:, c].astype(np.float64, copy=False) - self.mean_[c]
        constant = -0.5 * (
            deviation**2 / self.min_variance + np.log(2 * np.pi * self.min_variance)
        ).sum(axis=1)
        return constant - np.sum(np.log(self.scale_[self._varying]))

    def _score_noise(self):
        """The fixed (n_score_samples, n_components) noise of every score."""
        rng = np.random.RandomState(self._score_seed)
        return rng.standard_normal((self.n_score_samples, self.n_components))

    def score_samples(self, X):
        """Log-density of each row, in nats, of the data as given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            Importance-sampling estimate of ``log q(x)`` with
            ``n_score_samples`` samples (see Notes), float64. Deterministic: a
            row gets the same score whatever other rows are scored with it.
        """
        X = self._checked(X)
        core = self._core()
        scores = self._outside_log_density(X)
        if self._network is not None:
            with core.threads(self.n_jobs):
                scores += core.score_rows(
                    self._network,
                    self._standardize(X),
                    self._score_noise(),
                    self.min_variance,
                    self.device,
                )
        return scores

    def score(self, X, y=None):
        """Mean log-likelihood of the rows (nats per row).

        The mean, as :meth:`sklearn.mixture.GaussianMixture.score`, so that
        scores of sets of different sizes compare; note that
        :meth:`sklearn.neighbors.KernelDensity.score` returns the sum.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.
        y : None
            Ignored.

        Returns
        -------
        log_likelihood : float
            ``score_samples(X).mean()``.
        """
        return float(np.mean(self.score_samples(X)))

    def transform(self, X):
        """Latent embedding: the mean of the encoder ``p(z|x)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to embed.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Encoder means, in the floating dtype of ``X``.
        """
        X = self._checked(X)
        core = self._core()
        if self._network is None:  # no varying feature: the prior's mean
            return np.zeros((X.shape[0], self.n_components), dtype=X.dtype)
        with core.threads(self.n_jobs):
            Z = core.encoder_mean(self._network, self._standardize(X), self.device)
        return Z.astype(X.dtype, copy=False)

    def sample(self, n_samples=1, random_state=None):
        """Draw rows from the fitted density.

        ``z ~ N(0, I)``, then ``x ~ q(x|z)``, returned in the units of the
        data.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws (None: NumPy's global generator), as in
            :meth:`sklearn.neighbors.KernelDensity.sample`.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Drawn rows, float64.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(
                f"n_samples must be a positive integer; got {n_samples!r}."
            )
        core = self._core()
        rng = check_random_state(random_state)
        latent = rng.standard_normal((n_samples, self.n_components))
        noise = rng.standard_normal((n_samples, self.n_features_in_))
        v = self._varying
        rows = np.empty_like(noise)
        # constant features: N(mean_, min_variance), as score_samples has them
        rows[:, ~v] = self.mean_[~v] + np.sqrt(self.min_variance) * noise[:, ~v]
        if self._network is not None:
            with core.threads(self.n_jobs):
                drawn = core.sample_rows(
                    self._network, latent, noise[:, v], self.min_variance, self.device
                )
            rows[:, v] = drawn * self.scale_[v] + self.mean_[v]
        return rows

    @property
    def _n_features_out(self):
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
