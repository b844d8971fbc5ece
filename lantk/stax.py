"""Infinite-width NNGP/NTK kernels with neural-tangents' ``stax`` interface.

Each layer returns ``(init_fn, apply_fn, kernel_fn)`` with neural-tangents 0.6.5 semantics
(NTK parameterisation by default, ``channel_axis=-1``, images ``(N, H, W, C)``, filters
``HWIO``):

* ``init_fn(key, input_shape) -> (output_shape, params)``;
* ``apply_fn(params, x)`` — the finite network;
* ``kernel_fn(x1, x2=None, get=None)`` — the infinite-width kernels. ``get`` is a string
  (that array), a tuple of strings among ``'nngp', 'ntk', 'cov1', 'cov2'`` (a namedtuple), or
  ``None`` (a namedtuple with ``nngp`` and ``ntk``). ``get='nngp'`` does not compute the NTK.
  The computation runs in the inputs' floating dtype (float32 in, float32 out; float64 in,
  float64 out; integers are promoted to float64).

All three run with JAX's 64-bit mode on, whatever the global setting (see :mod:`lantk`):
``init_fn`` draws float64 parameters, and float64 inputs are never truncated. They return JAX
arrays; with x64 off globally, JAX computes on those in float32, so take ``np.asarray`` of a
result (or call :func:`lantk.enable_x64`) before further ``jnp`` arithmetic in float64.

Bad arguments fail when the layer is built, with a ``ValueError`` that names them (a width
``Dense(0)``, a filter shape, strides, a padding name, a NaN scale); ``apply_fn`` checks the
parameters it is given against the layer (``params[i] (layer i of serial): ...`` when they
come from another architecture or other inputs).

``kernel_fn.spec`` is a stable string describing the architecture and every hyper-parameter
(a Python expression in these layer names), suitable as a cache key.

Which covariances are propagated is decided by the whole network, as in neural-tangents: with
a ``Flatten`` readout only same-pixel covariances are kept (cost linear in the number of
pixels; a convolution is a box sum over its filter window); ``GlobalAvgPool`` needs all
pixel pairs.

Example:
    >>> import numpy as np
    >>> from lantk import stax
    >>> init_fn, apply_fn, kernel_fn = stax.serial(
    ...     stax.Conv(16, (3, 3), padding="SAME"), stax.Relu(), stax.Flatten(), stax.Dense(1))
    >>> x = np.random.default_rng(0).standard_normal((4, 8, 8, 3))
    >>> kernel_fn(x, None, "ntk").shape
    (4, 4)
    >>> kernel_fn.spec
    "serial(Conv(16, (3, 3), strides=(1, 1), padding='SAME', W_std=1.0, b_std=None), Relu(), Flatten(), Dense(1, W_std=1.0, b_std=None))"

References: Jacot, Gabriel & Hongler (2018), the NTK; Cho & Saul (2009), arc-cosine kernels
(the ReLU maps); Arora et al. (2019), the convolutional NTK; Novak et al. (2020), neural-
tangents, whose interface and semantics this module follows.

Branches: ``FanOut(n)`` copies its input, ``parallel(*layers)`` maps a list of inputs
(``init_fn`` returns the list of output shapes), ``FanInSum()`` adds the branches (a branch
ending in its own Dense/Conv is independent of the others; copies of one same activation, such
as ``Identity()`` shortcuts, count ``m**2`` times; other correlated sums raise
``NotImplementedError``) and ``FanInConcat()`` concatenates channels (the channel-weighted
mean of the branch kernels); ``repeat(layer, n)`` stacks ``n`` copies. Pooling: ``AvgPool``,
``SumPool`` (box sums over each of the two pixel indices; they mix pixels, so the network keeps
all pixel pairs) and ``GlobalSumPool``. ``Dropout(rate, mode)`` with neural-tangents' keep-rate
convention.

Parameterisations: ``Dense``, ``Conv`` and ``ConvTranspose`` take neural-tangents'
``parameterization='ntk'`` (the default) or ``'standard'`` (weights ``N(0, W_std**2 s[0] /
fan_in)`` without the ``1/sqrt(fan_in)`` in the forward pass, with neural-tangents' width
scalings ``s``; same NNGP, and an NTK whose weight term is the unnormalised input covariance
``(fan_in / s[0]) K``, so it depends on the finite widths). ``LayerNorm(axis, eps)``
divides the covariances by ``sqrt(Q(x) Q(x'))``, ``Q`` the mean same-pixel variance over the
normalised axes plus ``eps`` (channel axis, optionally spatial axes too).
``ConvTranspose`` is a transposed convolution (padding ``'VALID'`` or ``'SAME'``).

Nonlinearities (closed-form kernel maps, formulas in their docstrings): ``Relu``,
``LeakyRelu``, ``ABRelu``, ``Abs``, ``Erf``, ``Sigmoid_like`` (an erf fit of the logistic
sigmoid), ``Gelu`` (``approximate=True`` changes ``apply_fn`` only, as in neural-tangents),
``Sin``, ``Cos``, ``Rbf`` (NNGP ``exp(-gamma E (u - v)^2)``) and ``Sign`` (whose NTK factor is
0, as in neural-tangents).

``DenseUnscaled`` (no ``1/sqrt(fan_in)``; the first layer of the book's two-layer network) is a
lantk addition. Differences from neural-tangents: only ``batch_axis=0`` and
``channel_axis=-1``; no masking; ``LayerNorm`` does not normalise over the batch axis and
``ConvTranspose`` has no ``'CIRCULAR'`` padding; float32 inputs are computed in float32
(neural-tangents upcasts to float64 when x64 is on); the ReLU-family layers take no
``do_stabilize`` argument (their maps are always evaluated in the stable ``arctan2`` form);
in the full mode ``Sign``'s covariances between two pixels of one input are
``1 - 2 theta / pi`` (neural-tangents 0.6.5 sets them all to 1, which changes the kernel when a
pooling and another nonlinearity follow ``Sign``).

The implementation lives in the private package ``lantk._stax``, split along neural-tangents'
lines: ``requirements`` (the requirement algebra and argument checks), ``kernel`` (the kernel
state, :class:`KernelFn`, export), ``linear``, ``normalization``, ``elementwise``, ``pooling``,
``branching``, ``combinators``, and ``_numerics`` (the clamped square root and the vectorised
``arctan2``).
"""

from lantk import _stax
from lantk._stax import (  # noqa: F401  (the public layers, re-exported)
    ABRelu,
    Abs,
    AvgPool,
    Conv,
    ConvTranspose,
    Cos,
    Dense,
    DenseUnscaled,
    Dropout,
    Erf,
    FanInConcat,
    FanInSum,
    FanOut,
    Flatten,
    Gelu,
    GlobalAvgPool,
    GlobalSumPool,
    Identity,
    KernelFn,
    LayerNorm,
    LeakyRelu,
    Rbf,
    Relu,
    Sigmoid_like,
    Sign,
    Sin,
    SumPool,
    parallel,
    repeat,
    serial,
)

__all__ = list(_stax.__all__)
