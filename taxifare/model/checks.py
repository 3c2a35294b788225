"""Structure checks for what a model file contains, before anything trusts it.

A model file comes from storage: a valid pickle of our classes can still carry arrays of the
wrong type or shape. Checking them once at load time turns such a file into a clear load error
(503 with a reason) instead of an exception on every request.
"""

import numpy as np


def require_array(value: object, name: str, dtype: type, ndim: int) -> np.ndarray:
    """`value` itself, if it is a numpy array of this dtype and number of dimensions; ValueError otherwise."""
    if not isinstance(value, np.ndarray) or value.dtype != np.dtype(dtype) or value.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d {np.dtype(dtype).name} array")
    return value


def require_indices(value: np.ndarray, name: str, bound: int) -> None:
    """Every entry of an index array lies in [0, bound)."""
    if value.size and (value.min() < 0 or value.max() >= bound):
        raise ValueError(f"{name} has indices outside 0..{bound - 1}")
