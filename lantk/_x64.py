"""JAX's 64-bit mode, switched on only while lantk computes.

``import lantk`` leaves JAX's global configuration alone (a user's ``jnp.ones(3)`` stays
float32). The functions of lantk that compute with JAX are wrapped in :func:`x64`: while one of
them runs, ``jax_enable_x64`` is on for the calling thread only (JAX's thread-local
configuration context), so float64 inputs and ``dtype=np.float64`` arguments are honoured and
results are the same as with x64 switched on globally. On return the caller's setting is back.

Two things follow for code outside lantk when x64 is off globally:

* NumPy results (most of lantk) are unaffected;
* JAX arrays that lantk returns (the ``lantk.stax`` ``init_fn``/``apply_fn``/``kernel_fn`` and
  :func:`lantk.empirical.empirical_ntk`) keep their float64 dtype, but JAX computes on them in
  float32 outside x64 mode (``jnp`` operations and ``jax.jit`` truncate 64-bit inputs):
  convert them with ``np.asarray`` first, or call :func:`lantk.enable_x64` once.

JAX versions: ``jax.enable_x64`` (a configuration state usable as a context manager, JAX >=
0.8) when present, else ``jax.experimental.enable_x64`` (older JAX), else, as a last resort,
the global flag set and restored around the call (not thread-safe).
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import jax

__all__ = ["enable_x64", "local_x64", "x64", "x64_enabled"]


def x64_enabled() -> bool:
    """Whether JAX's 64-bit mode is on for the calling thread (globally or in a context)."""
    return bool(jax.config.jax_enable_x64)


def _state_context():
    """``new_val -> context manager`` from JAX's own thread-local x64 state, or None."""
    state = getattr(jax, "enable_x64", None)
    if state is not None and hasattr(state, "value") and callable(state):  # jax >= 0.8
        return state
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from jax.experimental import enable_x64 as experimental  # jax < 0.8
    except ImportError:
        return None
    return experimental


_CONTEXT = _state_context()


@contextlib.contextmanager
def _global_fallback():
    previous = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


def local_x64():
    """A context manager in which JAX's 64-bit mode is on (for the calling thread)."""
    return _global_fallback() if _CONTEXT is None else _CONTEXT(True)


def x64(fn):
    """Decorator: run ``fn`` with JAX's 64-bit mode on (see the module docstring)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with local_x64():
            return fn(*args, **kwargs)

    return wrapper


def enable_x64(enable: bool = True) -> None:
    """Switch JAX's 64-bit mode on (or off, ``enable=False``) globally, for the whole process.

    lantk does not need it (its functions switch x64 on while they run); call it when your own
    JAX code should compute in float64 too, e.g. ``jnp`` arithmetic on the float64 kernels that
    ``lantk.stax`` returns. Equivalent to ``jax.config.update("jax_enable_x64", enable)``;
    call it before creating the arrays it should affect.
    """
    jax.config.update("jax_enable_x64", bool(enable))
