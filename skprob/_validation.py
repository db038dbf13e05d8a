"""Input validation shared by the plain-array functions.

The estimators validate with scikit-learn's ``validate_data``; the public
functions (``can_adjust``, ``entropy_normalize``, the Gaussian distances, ...)
take arrays directly and use this module, so that both accept and reject the
same kinds of arrays.
"""

import numpy as np

__all__ = ["as_real_array", "check_prior"]


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
        For complex values, strings or objects that are not numbers, and any
        other dtype (dates, records); the message names ``name`` and the dtype.
    """
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
    """Class prior as float64 summing to one: finite, non-negative, not all zero."""
    prior = as_real_array(prior, name).astype(np.float64, copy=False)
    if prior.shape != (n_classes,):
        raise ValueError(
            f"{name} has shape {prior.shape}; expected ({n_classes},), one prior "
            "per class."
        )
    if not np.all(np.isfinite(prior)) or np.any(prior < 0) or prior.sum() == 0:
        raise ValueError(
            f"{name} must be finite, non-negative and not all zero; got {prior!r}."
        )
    return prior / prior.sum()
