"""lantk: Label-Aware Neural Tangent Kernels in JAX.

Importing lantk turns on JAX's 64-bit mode (``jax_enable_x64``): the regression and
linear-algebra path of the book runs in float64. Kernels can still be computed in float32
for speed by passing ``dtype=jnp.float32`` where a function offers it.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"


def __getattr__(name):  # lazy: keep `import lantk` cheap
    if name == "LANTKClassifier":
        from lantk.classifier import LANTKClassifier

        return LANTKClassifier
    raise AttributeError(f"module 'lantk' has no attribute {name!r}")
