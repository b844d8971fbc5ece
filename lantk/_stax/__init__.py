"""Implementation of :mod:`lantk.stax`: infinite-width NNGP/NTK kernels with neural-tangents'
``stax`` interface for the layers the book needs.

Semantics follow neural-tangents 0.6.5 (``parameterization='ntk'`` by default, ``'standard'``
for Dense/Conv/ConvTranspose, ``channel_axis=-1``, inputs ``(N, *spatial, C)``, filters
``(*spatial, I, O)``), so code written for ``neural_tangents.stax`` with these layers runs
unchanged and gives the same numbers.

Internal representation
-----------------------
A kernel is propagated as a :class:`_State` with the *batch axes last* (pairs of inputs are the
innermost, contiguous axes, which makes the spatial box sums of convolutions plain shifted
slices of contiguous blocks):

* ``nngp``/``ntk``: ``(*S, N1, N2)`` in the *diagonal* mode (only same-pixel covariances are
  tracked: enough when every pixel-mixing layer is eventually followed by a ``Flatten``
  readout), or ``(*S, *S, N1, N2)`` in the *full* mode (all pixel pairs: needed by
  ``GlobalAvgPool``);
* ``var1``/``var2``: per-input covariances (the diagonal of the batch-batch covariance),
  ``(*S, N)`` in the diagonal mode and ``(*S, *S, N)`` in the full mode.

The mode is chosen per network by neural-tangents' requirement algebra (``Diagonal`` with
``>>``): diagonal iff all later layers allow it. The whole computation is one ``jax.jit``-ed
function per (shapes, dtype, ``get``) and does not compute the NTK when only the NNGP is asked
for. Results are returned in neural-tangents' layout (batch axes first; in the full mode
spatial axes interleaved as ``(N1, N2, H, H, W, W)``).

Speed (CPU) comes from three choices, each measured on the CNTK of ``paper_cnn(1)``:

* the ReLU angle uses a vectorisable ``arctan2`` (:func:`_angle`; ``jnp.arctan2`` costs
  ~25 ns per element on XLA:CPU);
* the ReLU outputs are materialised (:func:`_materialise`) so that XLA does not fuse the ReLU
  into, and recompute it in, every shifted slice of the next box sum;
* box sums pad once and add shifted slices separably (faster than ``reduce_window``).

Identical input pairs (found by an exact fingerprint of their bits) get correlation exactly 1
at every pixel, so the diagonal of a Gram matrix carries no ``sqrt(eps)`` rounding from the
ReLU angle.
"""

from __future__ import annotations

from lantk._stax.branching import (  # noqa: F401
    FanInConcat,
    FanInSum,
    FanOut,
)
from lantk._stax.combinators import (  # noqa: F401
    parallel,
    repeat,
    serial,
)
from lantk._stax.elementwise import (  # noqa: F401
    ABRelu,
    Abs,
    Cos,
    Erf,
    Gelu,
    LeakyRelu,
    Rbf,
    Relu,
    Sigmoid_like,
    Sign,
    Sin,
)
from lantk._stax.kernel import (  # noqa: F401
    KernelFn,
)
from lantk._stax.linear import (  # noqa: F401
    Conv,
    ConvTranspose,
    Dense,
    DenseUnscaled,
    Dropout,
    Flatten,
    Identity,
)
from lantk._stax.normalization import (  # noqa: F401
    LayerNorm,
)
from lantk._stax.pooling import (  # noqa: F401
    AvgPool,
    GlobalAvgPool,
    GlobalSumPool,
    SumPool,
)

__all__ = [
    "ABRelu",
    "Abs",
    "AvgPool",
    "Conv",
    "ConvTranspose",
    "Cos",
    "Dense",
    "DenseUnscaled",
    "Dropout",
    "Erf",
    "FanInConcat",
    "FanInSum",
    "FanOut",
    "Flatten",
    "Gelu",
    "GlobalAvgPool",
    "GlobalSumPool",
    "Identity",
    "KernelFn",
    "LayerNorm",
    "LeakyRelu",
    "Rbf",
    "Relu",
    "Sigmoid_like",
    "Sign",
    "Sin",
    "SumPool",
    "parallel",
    "repeat",
    "serial",
]
