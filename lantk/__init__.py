"""lantk: Label-Aware Neural Tangent Kernels in JAX.

Importing lantk does not change JAX's configuration: JAX's 64-bit mode (``jax_enable_x64``)
stays as you set it, so your own ``jnp.ones(3)`` is float32 by default before and after
``import lantk``. lantk switches 64-bit mode on by itself, for the calling thread and only
while one of its functions runs: the regression and linear-algebra path computes in float64,
``dtype=np.float64`` (the default of :func:`lantk.kernels.kernel_matrix`) is honoured, and the
``lantk.stax`` kernels keep the dtype of their inputs (float64 for float64 inputs). Kernels can
still be computed in float32 for speed by passing ``dtype=np.float32`` (or float32 inputs).

Most results are NumPy arrays. The ``lantk.stax`` functions (``init_fn``, ``apply_fn``,
``kernel_fn``) and :func:`lantk.empirical.empirical_ntk` return JAX arrays, float64 ones for
float64 inputs; with x64 off, JAX computes on them in float32 (``jnp`` operations and
``jax.jit`` truncate 64-bit arrays), so take ``np.asarray(...)`` of them first, or opt in to
float64 everywhere:

* ``lantk.enable_x64()`` -- switch JAX's 64-bit mode on globally (what ``import lantk`` did
  before; ``lantk.enable_x64(False)`` switches it off again);
* ``with jax.enable_x64(True): ...`` -- JAX's own context manager (JAX >= 0.8), for one block
  of code.
"""

from lantk._x64 import enable_x64 as enable_x64  # public: opt in to x64 globally

__version__ = "0.1.0"


def __getattr__(name):  # lazy: keep `import lantk` cheap
    if name == "LANTKClassifier":
        from lantk.classifier import LANTKClassifier

        return LANTKClassifier
    raise AttributeError(f"module 'lantk' has no attribute {name!r}")
