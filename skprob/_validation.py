"""Input validation shared by the estimators and the plain-array functions.

The estimators validate with scikit-learn's ``validate_data``; the public
functions (``can_adjust``, ``entropy_normalize``, the Gaussian distances, ...)
take arrays directly and use this module, so that both accept and reject the
same kinds of arrays. Parameters (numbers, options) of both are checked by
scikit-learn's constraint system (``_parameter_constraints`` and
``validate_params``, see :mod:`skprob._sklearn`).
"""

import warnings

import numpy as np
from scipy import sparse

__all__ = ["as_real_array", "check_prior", "resolve_prior"]


def as_real_array(values, name):
    """``values`` as an ndarray of real numbers; a clear error for anything else.

    Booleans, integers and floats pass unchanged (no copy). Objects and strings
    that hold numbers are converted to float64, as scikit-learn's
    ``check_array`` converts them for the estimators. Complex numbers are an
    error, not a silently dropped imaginary part.

    Parameters
    ----------
    values : array-like
    name : str
        Name of the argument, for the error message.

    Returns
    -------
    array : ndarray of kind bool, int, uint or float

    Raises
    ------
    ValueError
        For scipy.sparse input, complex values, strings or objects that are
        not numbers, and any other dtype (dates, records); the message names
        ``name`` and the dtype.
    """
    if sparse.issparse(values):
        raise ValueError(
            f"{name} is a scipy.sparse matrix; sparse input is not supported. "
            f"Pass a dense array ({name}.toarray())."
        )
    array = np.asarray(values)
    kind = array.dtype.kind
    if kind in "biuf":
        return array
    if kind == "c":
        raise ValueError(
            f"{name} must hold real numbers; got complex values (dtype {array.dtype})."
        )
    if kind in "OUS":
        try:
            return array.astype(np.float64)
        except (TypeError, ValueError) as error:  # e.g. 'a', None, 1j
            raise ValueError(
                f"{name} must hold real numbers; its values (dtype "
                f"{array.dtype}) are not all numbers: {error}"
            ) from None
    raise ValueError(f"{name} must hold real numbers; got dtype {array.dtype}.")


def check_prior(prior, n_classes, name="prior"):
    """Class prior as float64 summing to one: finite, non-negative, not all zero.

    Priors of any finite magnitude are accepted (``[1e308, 1e308]`` is
    uniform): when their sum overflows, they are divided by their largest
    entry first.
    """
    prior = as_real_array(prior, name).astype(np.float64, copy=False)
    if prior.shape != (n_classes,):
        raise ValueError(
            f"{name} has shape {prior.shape}; expected ({n_classes},), one prior "
            "per class."
        )
    if not np.all(np.isfinite(prior)) or np.any(prior < 0) or not np.any(prior > 0):
        raise ValueError(
            f"{name} must be finite, non-negative and not all zero; got {prior!r}."
        )
    with np.errstate(over="ignore"):  # an overflowing sum is handled below
        total = prior.sum()
    if not np.isfinite(total):  # entries near the largest float: scale first
        prior = prior / prior.max()
        total = prior.sum()
    return prior / total


def resolve_prior(prior, class_weight, name="prior"):
    """The class prior an estimator uses: given, uniform, or the class frequencies.

    Parameters
    ----------
    prior : array-like of shape (n_classes,), "uniform" or None
        The estimator's parameter. An array that does not sum to one is
        rescaled, with a warning.
    class_weight : ndarray of shape (n_classes,)
        Sum of sample weights of each class in the training data.
    name : str, default="prior"
        Name of the parameter, for the messages.

    Returns
    -------
    prior : ndarray of shape (n_classes,), float64, summing to one
    """
    n_classes = len(class_weight)
    if isinstance(prior, str):  # "uniform"
        return np.full(n_classes, 1.0 / n_classes)
    if prior is not None:
        normalized = check_prior(prior, n_classes, name=name)
        with np.errstate(over="ignore"):  # a sum beyond the float range is not 1
            total = np.sum(as_real_array(prior, name), dtype=np.float64)
        if not np.isclose(total, 1.0):
            warnings.warn(
                f"The {name} do not sum to 1. Renormalizing.", UserWarning, stacklevel=3
            )
        return normalized
    total = class_weight.sum()
    if not total > 0:
        raise ValueError("sample_weight sums to zero; the prior is undefined.")
    return class_weight / total
