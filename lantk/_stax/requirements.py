"""Layer descriptions and argument checks: neural-tangents' ``Diagonal`` requirement
algebra (which covariances a network propagates), the :class:`_Layer` record and the validators
the layers share."""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Sequence

import jax
import numpy as np
from jax import random

from lantk._checks import check_int, check_real

_NO, _MAYBE, _YES = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class _Diag:
    input: int = _YES
    output: int = _NO

    def __rshift__(self, other: _Diag) -> _Diag:
        if self.output == _YES:
            return self
        if self.output > _NO and other.input > _NO:
            inp = self.input
        elif self.output == _NO and other.input < _YES:
            inp = _NO
        else:
            inp = min(self.input, other.input)
        return _Diag(input=inp, output=other.output)

    def __and__(self, other: _Diag) -> _Diag:
        """Requirement of parallel branches: the most demanding of each."""
        return _Diag(input=min(self.input, other.input), output=min(self.output, other.output))

    def __bool__(self) -> bool:
        return self.input == _YES and self.output > _NO


def _fmt(x) -> str:
    return "None" if x is None else repr(float(x))


class ApplyError(ValueError):
    """An ``apply_fn`` got parameters or inputs that do not fit its layer; :func:`serial`
    adds the layer's index to the message."""


def _describe(params, limit: int = 160) -> str:
    """A short description of a parameter pytree: its structure with leaves as shapes."""
    try:
        shown = repr(jax.tree_util.tree_map(lambda leaf: tuple(np.shape(leaf)), params))
    except Exception:  # pragma: no cover - exotic pytrees
        shown = type(params).__name__
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _std(value, name: str, allow_none: bool = False):
    """A weight/bias standard deviation: a finite number >= 0 (``None`` if allowed)."""
    return check_real(value, name, nonnegative=True, allow_none=allow_none)


def _no_params(spec: str):
    """``apply_fn`` of a parameterless layer: check that it got no parameters."""

    def check(params):
        if jax.tree_util.tree_leaves(params):
            raise ApplyError(f"{spec} has no parameters, but got {_describe(params)} (the "
                              f"parameters do not match the architecture)")

    return check


def _int_tuple(value, name: str) -> tuple:
    """A non-empty tuple of positive integers (a filter shape or strides)."""
    if isinstance(value, str) or not isinstance(value, Sequence) and not isinstance(
            value, np.ndarray):
        raise ValueError(f"{name} must be a tuple of positive integers such as (3, 3), got "
                         f"{value!r}")
    items = tuple(value)
    if not items:
        raise ValueError(f"{name} is empty: give one positive integer per spatial axis")
    try:
        return tuple(check_int(v, name) for v in items)
    except ValueError:
        raise ValueError(f"{name} must be a tuple of positive integers, got {value!r}") from None


def _input_shape(input_shape, spec: str) -> tuple:
    """``init_fn``'s ``input_shape`` as a tuple of ints (``-1`` allowed for the batch)."""
    try:
        shape = tuple(input_shape)
        ok = all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape)
    except TypeError:
        ok = False
    if not ok or len(shape) < 1 or any(d < 1 for d in shape[1:]) or shape[0] < -1:
        raise ValueError(f"{spec}: input_shape must be a tuple of integers (N, ..., C) with "
                         f"positive sizes (N may be -1), got {input_shape!r}")
    if len(shape) < 2:
        raise ValueError(f"{spec}: input_shape must have a batch axis and a feature axis, "
                         f"got {shape}")
    return shape


def _dimension_numbers(n_sp: int):
    letters = "".join(c for c in string.ascii_uppercase if c not in "NCIO")[:n_sp]
    return ("N" + letters + "C", letters + "IO", "N" + letters + "C")


def _check_nt_defaults(batch_axis, channel_axis, parameterization="ntk"):
    """Check the layout arguments (only neural-tangents' defaults) and return the canonical
    ``parameterization`` (see :func:`_parameterization`)."""
    if batch_axis != 0 or channel_axis != -1:
        raise NotImplementedError("lantk layers use batch_axis=0 and channel_axis=-1")
    return _parameterization(parameterization)


_PARAMETERIZATIONS = ("ntk", "standard")


def _parameterization(value, layer: str = "") -> str:
    """``'ntk'`` or ``'standard'`` (case-insensitive, as neural-tangents lowercases it)."""
    prefix = f"{layer}: " if layer else ""
    if not isinstance(value, str) or value.lower() not in _PARAMETERIZATIONS:
        raise ValueError(f"{prefix}parameterization must be 'ntk' or 'standard', got "
                         f"{value!r}")
    return value.lower()


def _width_scalings(s, layer: str) -> tuple:
    """neural-tangents' ``s``: a pair of positive integers (input and output width
    scalings of a standard-parameterisation layer)."""
    if isinstance(s, str) or not isinstance(s, (Sequence, np.ndarray)) or len(s) != 2:
        raise ValueError(f"{layer}: s must be a pair of positive integers (the input and "
                         f"output width scalings), got {s!r}")
    try:
        return tuple(check_int(v, f"{layer}: s") for v in s)
    except ValueError:
        raise ValueError(f"{layer}: s must be a pair of positive integers, got {s!r}") from None


def _split_rng(kwargs: dict, n: int) -> list:
    """Pop ``rng`` from ``kwargs`` and split it into ``n`` keys (``None`` s without one), as
    ``jax.example_libraries.stax.serial``/``parallel`` do, so that e.g. two Dropout layers
    draw independent masks."""
    rng = kwargs.pop("rng", None)
    if rng is None:
        return [None] * n
    return list(random.split(rng, n))
