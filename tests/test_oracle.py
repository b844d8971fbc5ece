"""Agreement with neural-tangents 0.6.5, run in a pinned side environment.

neural-tangents 0.6.5 cannot be imported with current JAX, so it runs under its own
interpreter (tests/oracle/venv.py: ``$LANTK_ORACLE_VENV`` or ``.oracle-venv`` at the repo root,
created with the pinned recipe when missing). Inputs and outputs travel through .npz files.
In CI a side environment that cannot be created is a failure; locally the tests skip only
when pip cannot reach the package index.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from lantk import archs, stax

ORACLE_DIR = Path(__file__).resolve().parent / "oracle"
sys.path.insert(0, str(ORACLE_DIR))
import venv as oracle_venv

pytestmark = pytest.mark.oracle

RTOL = 1e-6
TWO_LAYER_D = 7


@pytest.fixture(scope="session")
def oracle_python() -> Path:
    try:
        return oracle_venv.ensure()
    except oracle_venv.OracleEnvError as e:
        if os.environ.get("CI"):
            pytest.fail(f"neural-tangents oracle environment unavailable in CI: {e}")
        if e.offline:
            pytest.skip(f"no network for pip, cannot build the oracle environment: {e}")
        pytest.fail(str(e))


def run_oracle(py: Path, tmp_path: Path, cases, seed=0) -> dict:
    """cases: [(spec, x1, x2 or None)]; one subprocess for all of them."""
    inp, out = tmp_path / "in.npz", tmp_path / "out.npz"
    arrays = {"specs": np.array([c[0] for c in cases]), "seed": seed}
    for i, (_, x1, x2) in enumerate(cases):
        arrays[f"x1_{i}"] = np.asarray(x1, np.float64)
        if x2 is not None:
            arrays[f"x2_{i}"] = np.asarray(x2, np.float64)
    np.savez(inp, **arrays)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    env["JAX_PLATFORMS"] = "cpu"
    r = subprocess.run([str(py), str(ORACLE_DIR / "nt_kernels.py"), str(inp), str(out)],
                       capture_output=True, text=True, env=env, timeout=1800, check=False)
    assert r.returncode == 0, f"oracle script failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    with np.load(out) as d:
        return {k: d[k] for k in d.files}


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _myrtle(depth, width, W_std=math.sqrt(2.0), b_std=0.0):
    """The Myrtle network of Shankar et al. (2020) as neural-tangents' Myrtle-kernel example
    builds it: blocks of SAME 3 x 3 convolutions and ReLUs, 2 x 2 average poolings, a Dense
    readout (depth 5: 2, 1, 1 convolutions per block)."""
    blocks = {5: (2, 1, 1), 7: (2, 2, 2), 10: (3, 3, 3)}[depth]
    layers = []
    for i, n in enumerate(blocks):
        for _ in range(n):
            layers += [stax.Conv(width, (3, 3), W_std=W_std, b_std=b_std, padding="SAME"),
                       stax.Relu()]
        layers += [stax.AvgPool((2, 2), strides=(2, 2))] * (3 if i == 2 else 1)
    return stax.serial(*layers, stax.Flatten(), stax.Dense(10, W_std, b_std))


def _wide_resnet(block_size, k, num_classes):
    """neural-tangents' README WideResnet."""
    def block(channels, strides=(1, 1), channel_mismatch=False):
        main = stax.serial(stax.Relu(), stax.Conv(channels, (3, 3), strides, padding="SAME"),
                           stax.Relu(), stax.Conv(channels, (3, 3), padding="SAME"))
        shortcut = stax.Identity() if not channel_mismatch else stax.Conv(
            channels, (3, 3), strides, padding="SAME")
        return stax.serial(stax.FanOut(2), stax.parallel(main, shortcut), stax.FanInSum())

    def group(n, channels, strides=(1, 1)):
        return stax.serial(block(channels, strides, channel_mismatch=True),
                           *[block(channels) for _ in range(n - 1)])

    return stax.serial(stax.Conv(16, (3, 3), padding="SAME"), group(block_size, int(16 * k)),
                       group(block_size, int(32 * k), (2, 2)),
                       group(block_size, int(64 * k), (2, 2)), stax.AvgPool((8, 8)),
                       stax.Flatten(), stax.Dense(num_classes, 1.0, 0.0))


def _networks():
    """name -> (lantk network, input shape)."""
    return {
        "fc": (archs.fc(3, width=64, b_std=0.1), (7, 11)),
        "fc_erf": (stax.serial(stax.Dense(32, W_std=1.3, b_std=0.2), stax.Erf(),
                               stax.Dense(32), stax.Relu(), stax.Dense(1)), (5, 6)),
        "cnn_flatten": (archs.cnn(3, "flatten", width=16, b_std=0.05), (4, 6, 5, 3)),
        "cnn_gap": (archs.cnn(2, "gap", width=16), (4, 5, 5, 2)),
        "paper_cnn": (archs.paper_cnn(1), (3, 8, 8, 3)),
        "conv_mixed": (stax.serial(stax.Conv(8, (2, 3), strides=(2, 1)), stax.Relu(),
                                   stax.Conv(8, (3, 3), padding="CIRCULAR", b_std=0.3),
                                   stax.LeakyRelu(0.1), stax.Conv(4, (3, 3), (2, 2), "SAME"),
                                   stax.Abs(), stax.Flatten(), stax.Dense(2)), (3, 7, 6, 2)),
        "gap_then_dense": (stax.serial(stax.Conv(8, (3, 3), padding="SAME"), stax.Relu(),
                                       stax.GlobalAvgPool(), stax.Dense(8, b_std=0.5),
                                       stax.Relu(), stax.Dense(1)), (3, 4, 4, 2)),
        # elementwise nonlinearities
        "fc_gelu": (stax.serial(stax.Dense(16, W_std=1.3, b_std=0.2), stax.Gelu(),
                                stax.Dense(1, b_std=0.1)), (5, 6)),
        "fc_gelu_tanh": (stax.serial(stax.Dense(16, W_std=1.3, b_std=0.2),
                                     stax.Gelu(approximate=True), stax.Dense(1)), (5, 6)),
        "fc_sigmoid_like": (stax.serial(stax.Dense(16, W_std=1.3, b_std=0.2),
                                        stax.Sigmoid_like(), stax.Dense(1)), (5, 6)),
        "fc_sin": (stax.serial(stax.Dense(16, W_std=1.3, b_std=0.2), stax.Sin(1.2, 0.8, 0.3),
                               stax.Dense(1)), (5, 6)),
        "fc_cos": (stax.serial(stax.Dense(16, W_std=1.3, b_std=0.2), stax.Cos(0.9, 1.1, -0.4),
                               stax.Dense(1, b_std=0.2)), (5, 6)),
        "fc_rbf": (stax.serial(stax.Dense(16, W_std=1.3, b_std=0.2), stax.Rbf(0.7),
                               stax.Dense(1)), (5, 6)),
        "fc_sign": (stax.serial(stax.Dense(16, W_std=1.3, b_std=0.2), stax.Sign(),
                                stax.Dense(1, b_std=0.3)), (5, 6)),
        "conv_gelu_cos": (stax.serial(
            stax.Conv(6, (3, 3), padding="SAME", b_std=0.2), stax.Gelu(), stax.AvgPool((2, 2)),
            stax.Conv(4, (2, 2)), stax.Cos(b=0.7, c=0.2), stax.Conv(4, (2, 2), b_std=0.1),
            stax.Rbf(0.5), stax.GlobalAvgPool(), stax.Dense(1)), (3, 7, 6, 2)),
        "conv_sign_sin": (stax.serial(
            stax.Conv(6, (3, 3), padding="SAME", b_std=0.2), stax.Sign(),
            stax.Conv(4, (2, 2), W_std=1.2), stax.Sin(b=0.9, c=-0.3), stax.Conv(4, (2, 2)),
            stax.Sigmoid_like(), stax.Flatten(), stax.Dense(2)), (3, 6, 5, 2)),
        # the full-mode fast path (lantk/_stax/fullpath.py) with biases, a Dense layer between
        # the convolutions, other ReLU-like maps, an even filter and GlobalSumPool
        "gap_mixed": (stax.serial(stax.Conv(6, (2, 3), padding="SAME", W_std=1.3, b_std=0.2),
                                  stax.LeakyRelu(0.1), stax.Dense(5, W_std=1.1, b_std=0.1),
                                  stax.Abs(), stax.Conv(4, (3, 3), padding="SAME"),
                                  stax.Relu(), stax.GlobalSumPool(), stax.Dense(1)),
                      (3, 5, 4, 2)),
        # linear / normalization / architectures
        "dense_standard": (stax.serial(
            stax.Dense(16, W_std=1.3, b_std=0.2, parameterization="standard"), stax.Relu(),
            stax.Dense(8, parameterization="standard", s=(1, 2)), stax.Erf(),
            stax.Dense(3, W_std=0.9, b_std=0.0, parameterization="standard", s=(2, 1))),
            (5, 6)),
        "conv_standard": (stax.serial(
            stax.Conv(6, (3, 3), padding="SAME", b_std=0.1, parameterization="standard"),
            stax.Relu(),
            stax.Conv(5, (2, 3), strides=(2, 1), W_std=1.4, parameterization="standard"),
            stax.Relu(),
            stax.Conv(4, (3, 3), padding="CIRCULAR", b_std=0.3, parameterization="standard"),
            stax.Relu(), stax.Flatten(), stax.Dense(2, b_std=0.1, parameterization="standard")),
            (3, 7, 6, 2)),
        "layernorm": (stax.serial(
            stax.Conv(6, (3, 3), padding="SAME", b_std=0.3), stax.LayerNorm(axis=(1, 2, 3)),
            stax.Relu(), stax.AvgPool((2, 2)), stax.Conv(6, (3, 3)),
            stax.LayerNorm(axis=(1, 3), eps=0.5), stax.Relu(), stax.Conv(4, (2, 2)),
            stax.LayerNorm(), stax.Erf(), stax.GlobalAvgPool(), stax.Dense(1)), (3, 6, 6, 2)),
        "conv_transpose": (stax.serial(
            stax.Conv(6, (2, 2), strides=(2, 2), padding="SAME"), stax.Relu(),
            stax.ConvTranspose(5, (3, 3), strides=(2, 2), padding="SAME", b_std=0.2),
            stax.Relu(), stax.ConvTranspose(4, (2, 3), strides=(1, 2), W_std=1.2),
            stax.Relu(), stax.ConvTranspose(4, (3, 2), strides=(3, 1),
                                            parameterization="standard", b_std=0.1),
            stax.Relu(), stax.Flatten(), stax.Dense(1)), (3, 5, 4, 2)),
        # Myrtle-5 needs 32 x 32 images (five 2 x 2 poolings), the README WideResnet at least
        # 29 x 29 (AvgPool((8, 8)) after two stride-2 groups); 2 + 1 images keep them quick.
        "myrtle5": (_myrtle(5, width=4), (2, 32, 32, 3)),
        "wide_resnet": (_wide_resnet(block_size=1, k=0.25, num_classes=2), (2, 29, 29, 3)),
    }


@pytest.fixture(scope="module")
def oracle_results(oracle_python, tmp_path_factory):
    nets = _networks()
    rng = np.random.default_rng(20240611)
    cases = []
    for (net, shape) in nets.values():
        x1 = rng.standard_normal(shape)
        x2 = rng.standard_normal((shape[0] - 1,) + shape[1:])
        cases.append((net[2].spec, x1, x2))
    # the spec's two-layer network is NT's Dense(m, W_std=sqrt(d)) -> Relu -> Dense(1)
    x1, x2 = rng.standard_normal((6, TWO_LAYER_D)), rng.standard_normal((4, TWO_LAYER_D))
    cases.append((f"serial(Dense(512, W_std={math.sqrt(TWO_LAYER_D)!r}), Relu(), Dense(1))",
                  x1, x2))
    o = run_oracle(oracle_python, tmp_path_factory.mktemp("oracle"), cases, seed=7)
    results = {}
    for i, (name, (net, _)) in enumerate(nets.items()):
        res = {k: o[f"{k}_{i}"] for k in ("nngp", "ntk", "sym_ntk", "apply")}
        res["params"] = [o[f"param_{i}_{j}"] for j in range(int(o[f"n_params_{i}"]))]
        results[name] = (net, cases[i][1], cases[i][2], res)
    i = len(nets)
    results["two_layer"] = (None, cases[i][1], cases[i][2], {"nngp": o[f"nngp_{i}"],
                                                              "ntk": o[f"ntk_{i}"]})
    return results


@pytest.mark.parametrize("name", list(_networks()))
def test_kernels_match_neural_tangents(oracle_results, name):
    (_, _, kernel_fn), x1, x2, o = oracle_results[name]
    k = kernel_fn(x1, x2, ("nngp", "ntk"))
    assert rel_err(k.nngp, o["nngp"]) < RTOL
    assert rel_err(k.ntk, o["ntk"]) < RTOL
    assert rel_err(kernel_fn(x1, x2, "nngp"), o["nngp"]) < RTOL  # get='nngp' alone
    assert rel_err(kernel_fn(x1, None, "ntk"), o["sym_ntk"]) < RTOL


@pytest.mark.parametrize("name", list(_networks()))
def test_finite_networks_match_neural_tangents(oracle_results, name):
    """Same parameter structure and shapes; the same outputs for the same parameters; and,
    with JAX's pre-0.5 PRNG mode (the one jax 0.4.23 uses), the same parameters per key (up to
    the last bit of ``random.normal``, whose implementation changed)."""
    (init_fn, apply_fn, _), x1, _, o = oracle_results[name]
    nt_leaves = o["params"]
    with jax.threefry_partitionable(False):
        _, params = init_fn(jax.random.PRNGKey(7), x1.shape)
    leaves, tree = jax.tree_util.tree_flatten(params)
    assert [leaf.shape for leaf in leaves] == [leaf.shape for leaf in nt_leaves]
    for a, b in zip(leaves, nt_leaves):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12, atol=1e-14)
    out = apply_fn(jax.tree_util.tree_unflatten(tree, nt_leaves), x1)
    np.testing.assert_allclose(np.asarray(out), o["apply"], rtol=1e-10, atol=1e-12)


def test_two_layer_relu_matches_neural_tangents_dense(oracle_results):
    """The spec's two-layer network is NT's Dense(m, W_std=sqrt(d)) -> Relu -> Dense(1)."""
    _, x1, x2, o = oracle_results["two_layer"]
    _, _, kernel_fn = archs.two_layer_relu(512)
    assert rel_err(kernel_fn(x1, x2, "ntk"), o["ntk"]) < RTOL
    assert rel_err(kernel_fn(x1, x2, "nngp"), o["nngp"]) < RTOL
    assert rel_err(archs.two_layer_relu_kernel(x1, x2), o["ntk"]) < RTOL
