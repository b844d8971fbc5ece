"""Helpers shared by the label-aware estimators (row blocks, variant names, flattening)."""

from __future__ import annotations

import numpy as np

from lantk._checks import as_float_array

_ROWS_BLOCK_ELEMS = 1 << 22  # elements per row block of an n×n pass (32 MiB of float64)


def _check_variant(variant, allowed=("v1", "v2")) -> str:
    v = str(variant).lower()
    if v not in allowed:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(allowed)}")
    return v


def _row_blocks(n_rows: int, n_cols: int):
    step = max(1, _ROWS_BLOCK_ELEMS // max(n_cols, 1))
    for s in range(0, n_rows, step):
        yield s, min(n_rows, s + step)


def _flatten(X, name: str) -> np.ndarray:
    arr = as_float_array(X, name)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (n, d) or (n, ...) images, got {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def _sym(A: np.ndarray) -> np.ndarray:
    A += A.T
    A *= 0.5
    return A

