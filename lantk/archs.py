"""The architectures of the book (spec §2), each as ``(init_fn, apply_fn, kernel_fn)``.

All are built from :mod:`lantk.stax` layers, so ``kernel_fn`` is the infinite-width
NNGP/NTK of exactly the finite network that ``init_fn``/``apply_fn`` define (NTK
parameterisation), and ``kernel_fn.spec`` describes the architecture.

Defaults: hidden layers use ``W_std = sqrt(2)`` (the He/ReLU scale, so the activations keep
their scale through depth, as in Arora et al.'s CNTK), no biases (``b_std=None``), and the
``Dense(1)`` readout uses ``W_std = 1``. Every function takes these as arguments; the
neural-tangents agreement holds for any values. :func:`cnn` and :func:`paper_cnn` take
``outputs`` (``Dense(outputs)``, one output per class for a multi-class network); the kernel
is the same for any number of outputs (the output units are independent and identically
distributed).
"""

from __future__ import annotations

import math

import numpy as np

from lantk import stax
from lantk._checks import as_float_array, check_int, flat_inputs

__all__ = ["ARCHS", "build", "cnn", "fc", "paper_cnn", "two_layer_relu", "two_layer_relu_kernel"]

_SQRT2 = math.sqrt(2.0)


def paper_cnn(k: int = 1, *, W_std: float = _SQRT2, b_std=None, readout_W_std: float = 1.0,
              filter_shape=(3, 3), outputs: int = 1):
    """The CNN of the label-aware experiments: ``Conv(16)``, then three groups each
    ``[Relu, Conv(c, stride s), Relu, Conv(c)]`` with ``(c, s) = (16k, 1), (32k, 2), (64k, 2)``,
    then ``Flatten``, ``Dense(outputs)``. All convolutions are 3x3 with SAME padding.

    ``k = 1`` for the kernel (the kernel does not depend on widths); the finite baseline uses
    ``k = 4``. Its kernel is the CNTK of Arora et al. (2019) for this architecture.
    ``outputs`` (default 1; C for a C-class network) does not change the kernel.

    Example:
        >>> import numpy as np
        >>> init_fn, apply_fn, kernel_fn = paper_cnn(1)
        >>> x = np.random.default_rng(0).standard_normal((3, 32, 32, 3)).astype(np.float32)
        >>> kernel_fn(x, None, "ntk").shape
        (3, 3)
    """
    k = check_int(k, "k")
    outputs = _check_outputs(outputs)
    fs = _check_filter_shape(filter_shape)

    def conv(c, s=1):
        return stax.Conv(c, fs, strides=(s, s), padding="SAME", W_std=W_std, b_std=b_std)

    layers = [conv(16)]
    for c, s in ((16 * k, 1), (32 * k, 2), (64 * k, 2)):
        layers += [stax.Relu(), conv(c, s), stax.Relu(), conv(c)]
    layers += [stax.Flatten(), stax.Dense(outputs, W_std=readout_W_std, b_std=b_std)]
    return stax.serial(*layers)


def _check_outputs(outputs) -> int:
    if isinstance(outputs, bool) or not isinstance(outputs, (int, np.integer)) or outputs < 1:
        raise ValueError(f"outputs must be a positive integer, got {outputs!r}")
    return int(outputs)


def _check_filter_shape(filter_shape) -> tuple:
    if isinstance(filter_shape, str) or not hasattr(filter_shape, "__len__"):
        raise ValueError(f"filter_shape must be a tuple of positive integers such as (3, 3), "
                         f"got {filter_shape!r}")
    return tuple(filter_shape)


def cnn(depth: int, readout: str = "flatten", width: int = 128, *, W_std: float = _SQRT2,
        b_std=None, readout_W_std: float = 1.0, filter_shape=(3, 3), outputs: int = 1):
    """CNN-V (``readout='flatten'``) / CNN-GAP (``readout='gap'``): ``depth`` times
    ``[Conv(width, 3x3, stride 1, SAME), Relu]``, then ``Flatten`` or ``GlobalAvgPool``, then
    ``Dense(outputs)``.

    ``outputs`` (default 1; C for a network trained on C classes) does not change the kernel.
    CNN-GAP's kernel needs all pixel-pair covariances: cost grows with (pixels)^2 (a fast
    path keeps them in cache, lantk/_stax/fullpath.py; about 40 entries per second on 32x32
    images on 2 CPU cores, benchmarks/bench_gap.py), so it suits small images (e.g. 8x8
    digits) or a GPU.

    ``depth`` may be a list of increasing depths: the blocks up to the first depth, then
    ``FanOut`` into one branch per depth (the remaining blocks and a readout), so ``kernel_fn``
    returns one kernel per depth, each exactly the kernel of ``cnn`` at that depth (readout
    ``"flatten"`` only), while
    :func:`lantk.kernels.kernel_matrix` computes the shared first blocks once. (Meant for
    kernels: the finite network shares those blocks' weights between its heads.)

    Example:
        >>> import jax
        >>> init_fn, apply_fn, kernel_fn = cnn(2, width=8, outputs=10)
        >>> init_fn(jax.random.PRNGKey(0), (5, 8, 8, 1))[0]
        (5, 10)
    """
    depths = depth if isinstance(depth, (list, tuple)) else [depth]
    depths = [check_int(d, "depth") for d in depths]
    if not depths or any(b <= a for a, b in zip(depths, depths[1:])):
        raise ValueError(f"depths must be increasing positive integers, got {list(depths)}")
    width = check_int(width, "width")
    outputs = _check_outputs(outputs)
    filter_shape = _check_filter_shape(filter_shape)
    readouts = {"flatten": stax.Flatten, "gap": stax.GlobalAvgPool}
    if not isinstance(readout, str) or readout not in readouts:
        raise ValueError(f"readout must be 'flatten' or 'gap', got {readout!r}")
    if len(depths) > 1 and readout != "flatten":
        raise ValueError("a list of depths needs readout='flatten' (the CNTK-GAP's fast path "
                         "takes one depth per network): build one network per depth")

    def blocks(n):
        layers = []
        for _ in range(n):
            layers += [stax.Conv(width, tuple(filter_shape), strides=(1, 1), padding="SAME",
                                 W_std=W_std, b_std=b_std), stax.Relu()]
        return layers

    def head():
        return [readouts[readout](), stax.Dense(outputs, W_std=readout_W_std, b_std=b_std)]

    first = depths[0]
    if len(depths) == 1:
        return stax.serial(*blocks(first), *head())
    return stax.serial(*blocks(first), stax.FanOut(len(depths)), stax.parallel(
        *[stax.serial(*blocks(d - first), *head()) for d in depths]))


def fc(depth: int, width: int = 512, *, W_std: float = _SQRT2, b_std=None,
       readout_W_std: float = 1.0):
    """Fully connected ReLU network: ``Flatten``, ``depth`` times ``[Dense(width), Relu]``,
    ``Dense(1)``. Accepts ``(N, d)`` or image inputs (flattened first)."""
    depth = check_int(depth, "depth")
    width = check_int(width, "width")
    layers = [stax.Flatten()]
    for _ in range(int(depth)):
        layers += [stax.Dense(width, W_std=W_std, b_std=b_std), stax.Relu()]
    layers += [stax.Dense(1, W_std=readout_W_std, b_std=b_std)]
    return stax.serial(*layers)


def two_layer_relu(width: int = 1024):
    """The spec's two-layer ReLU network, both layers trained, no bias:
    ``f(x) = m^{-1/2} sum_r a_r relu(w_r^T x)`` with ``w_r ~ N(0, I_d)``, ``a_r ~ N(0, 1)``,
    ``m = width``. Parameters: ``[(W, None), (), (a, None)]`` with ``W`` of shape ``(d, m)``
    (columns ``w_r``) and ``a`` of shape ``(m, 1)``.

    ``kernel_fn`` is its infinite-width kernel: ``ntk`` equals the closed form
    ``K(x,x') = x^T x' (pi - theta)/(2 pi) + |x||x'| (sin theta + (pi - theta) cos theta)/(2 pi)``
    (:func:`two_layer_relu_kernel`), ``nngp`` is the second term alone. Inputs are ``(N, d)``
    (images are flattened first).

    The first layer has no ``1/sqrt(d)`` factor (neural-tangents' ``Dense`` has one: its
    equivalent is ``Dense(width, W_std=sqrt(d))``).

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 0.0], [0.0, 2.0]])
        >>> _, _, kernel_fn = two_layer_relu()
        >>> np.round(np.asarray(kernel_fn(x, None, "ntk")), 4)  # K(x, x) = |x|^2
        array([[1.    , 0.3183],
               [0.3183, 4.    ]])
    """
    width = check_int(width, "width")
    return stax.serial(stax.Flatten(), stax.DenseUnscaled(width), stax.Relu(),
                       stax.Dense(1, W_std=1.0))


def two_layer_relu_kernel(x1, x2=None, get: str = "ntk") -> np.ndarray:
    """Closed form of the two-layer ReLU kernels of spec §2 (float64 NumPy); the one
    implementation that :func:`lantk.nth.two_layer_ntk` and the classifier's default kernel use.

    ``get='ntk'``: ``x^T x' (pi - theta)/(2 pi) + |x||x'| (sin theta + (pi - theta) cos theta)
    /(2 pi)``; ``get='nngp'``: the second term (the output covariance at initialisation).
    ``theta = arctan2(|x||x'| sin theta, x^T x')``; for nearly parallel pairs (theta below about
    0.01), where any formula in ``x^T x'`` keeps only half the float64 digits,
    ``theta = 2 arctan2(|u - v|, |u + v|)`` on the unit vectors ``u, v``, so that
    ``K(x, x) = |x|^2`` to round-off. Inputs are ``(N, ...)`` and are flattened;
    ``x2=None`` means ``x2 = x1``.

    Example:
        >>> float(two_layer_relu_kernel(np.array([[1.0, 0.0]]))[0, 0])  # x^T x / 2 + |x|^2 / 2
        1.0
    """
    if get not in ("ntk", "nngp"):
        raise ValueError(f"get must be 'ntk' or 'nngp', got {get!r}")
    a = flat_inputs(x1, "x1")
    b = a if x2 is None else flat_inputs(x2, "x2")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x1 and x2 have different dimensions: {a.shape[1]} vs {b.shape[1]}")
    sq1, sq2 = np.einsum("ij,ij->i", a, a), np.einsum("ij,ij->i", b, b)
    dot = a @ b.T
    prod2 = sq1[:, None] * sq2[None, :]
    cross = np.sqrt(np.maximum(prod2 - dot * dot, 0.0))       # |x||x'| sin theta
    theta = np.arctan2(cross, dot)
    # near theta = 0 the kernel is not smooth in x^T x' (theta ~ sqrt(2 (1 - cos theta))), so
    # redo those few pairs with an angle formula that is exact for identical points
    i, j = np.nonzero((cross * cross <= 1e-4 * prod2) & (dot > 0))
    if i.size:
        u = a[i] / np.sqrt(sq1[i])[:, None]
        v = b[j] / np.sqrt(sq2[j])[:, None]
        th = 2.0 * np.arctan2(np.linalg.norm(u - v, axis=1), np.linalg.norm(u + v, axis=1))
        theta[i, j] = th
        cross[i, j] = np.sqrt(prod2[i, j]) * np.sin(th)
    nngp = (cross + (np.pi - theta) * dot) / (2.0 * np.pi)
    if get == "nngp":
        return nngp
    return dot * (np.pi - theta) / (2.0 * np.pi) + nngp


ARCHS = ("paper_cnn", "cnn", "fc", "two_layer_relu")
"""The architectures :func:`build` knows by name."""


def build(spec):
    """``(init_fn, apply_fn, kernel_fn)`` of an architecture given by name: ``"paper_cnn"``
    or ``(name, {keyword arguments})``, e.g. ``("cnn", {"depth": 3, "width": 32})``.

    A name and arguments pickle where the functions do not: this is how a job run in a
    worker process (:func:`lantk.parallel.map_jobs`) says which network it needs.
    """
    if isinstance(spec, str):
        name, kwargs = spec, {}
    elif isinstance(spec, (tuple, list)) and len(spec) == 2:
        name, kwargs = spec
    else:
        name, kwargs = None, None
    if name not in ARCHS or not isinstance(kwargs, dict):
        raise ValueError(f"an architecture is a name among {ARCHS} or (name, {{arguments}}), "
                         f"got {spec!r}")
    return globals()[name](**kwargs)
