"""lantk.kernels.kernel_matrix: tiles, symmetry, dtypes, memory checks, the on-disk cache
and several devices."""

import collections
import doctest
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from _counting import Counting  # the counted RBF kernel (shared with test_distributed)

from lantk import kernels
from lantk._x64 import x64
from lantk.kernels import kernel_matrix

ROOT = Path(__file__).resolve().parents[1]


def relu_kernels(x1, x2=None, get="ntk"):
    """Closed-form NNGP and NTK of a two-layer ReLU network (Cho & Saul 2009; Jacot et al.
    2018): with θ the angle between x and x',
    NNGP = ‖x‖‖x'‖(sin θ + (π − θ) cos θ) / 2π and NTK = xᵀx'(π − θ)/2π + NNGP."""
    x2 = x1 if x2 is None else x2
    x1, x2 = x1.reshape(len(x1), -1), x2.reshape(len(x2), -1)
    dot = x1 @ x2.T
    norms = jnp.linalg.norm(x1, axis=1)[:, None] * jnp.linalg.norm(x2, axis=1)[None, :]
    cross = jnp.sqrt(jnp.maximum(norms**2 - dot**2, 0.0))  # ‖x‖‖x'‖ sin θ
    theta = jnp.arctan2(cross, dot)
    nngp = (cross + (jnp.pi - theta) * dot) / (2 * jnp.pi)
    out = {"nngp": nngp, "ntk": dot * (jnp.pi - theta) / (2 * jnp.pi) + nngp}
    return out[get] if isinstance(get, str) else tuple(out[g] for g in get)


relu_kernels.spec = "test:relu-two-layer"


def rbf(x1, x2=None, get="ntk"):
    x2 = x1 if x2 is None else x2
    return jnp.exp(-0.5 * ((x1[:, None] - x2[None]) ** 2).sum(-1))


# The kernels above are plain JAX functions, as a user writes them: kernel_matrix must run
# them in float64 without JAX's global x64 mode. The direct calls that serve as references
# switch x64 on themselves.
relu_ref, rbf_ref = x64(relu_kernels), x64(rbf)


def _x(n, seed=0, features=(5,)):
    return np.random.default_rng(seed).normal(size=(n, *features))


def _tiles(cache_dir):
    return sorted(Path(cache_dir).glob("*/*.npz"))


# ---------------------------------------------------------------------------------------
# values


@pytest.mark.parametrize(
    "n1, n2, tile",
    [(37, None, 8), (37, 23, 8), (5, 11, 3), (37, None, 37), (37, 23, 100), (6, None, 1)],
)
def test_matches_direct_call(n1, n2, tile):
    x1 = _x(n1)
    x2 = None if n2 is None else _x(n2, seed=1)
    k = kernel_matrix(relu_kernels, x1, x2, tile=tile, progress=False)
    direct = np.asarray(relu_ref(x1, x2))
    assert isinstance(k, np.ndarray) and k.dtype == np.float64
    assert k.shape == (n1, n1 if n2 is None else n2)
    # the diagonal of this closed form is only accurate to ~sqrt(eps) (sin θ near θ = 0)
    np.testing.assert_allclose(k, direct, rtol=1e-12, atol=1e-7)
    np.testing.assert_allclose(
        kernel_matrix(rbf, x1, x2, tile=tile, progress=False),
        rbf_ref(x1, x2), rtol=1e-13, atol=1e-15,
    )


def test_image_inputs_and_jax_arrays():
    x1 = _x(9, features=(4, 4, 3))
    x2 = x64(jnp.asarray)(_x(7, seed=1, features=(4, 4, 3)))  # a float64 JAX array
    assert x2.dtype == jnp.float64
    k = kernel_matrix(relu_kernels, x1, x2, tile=4, progress=False)
    np.testing.assert_allclose(k, relu_ref(x1, np.asarray(x2)), rtol=1e-12)
    assert isinstance(k, np.ndarray)


def test_symmetric_is_exact_and_computes_only_upper_tiles():
    x = _x(37)
    counting = Counting()
    k = kernel_matrix(counting, x, tile=8, progress=False)
    assert np.array_equal(k, k.T)
    assert counting.calls == 5 * 6 // 2  # 5 row tiles: the upper triangle, diagonal included
    np.testing.assert_allclose(k, rbf_ref(x, x), rtol=1e-13)
    k = kernel_matrix(relu_kernels, x, tile=8, progress=False, get=("nngp", "ntk"))
    assert np.array_equal(k.ntk, k.ntk.T) and np.array_equal(k.nngp, k.nngp.T)


def test_get_tuple_returns_namedtuple():
    x1, x2 = _x(13), _x(10, seed=1)
    both = kernel_matrix(relu_kernels, x1, x2, get=("ntk", "nngp"), tile=4, progress=False)
    assert both._fields == ("ntk", "nngp")
    np.testing.assert_allclose(both.ntk, relu_ref(x1, x2, get="ntk"), rtol=1e-12)
    np.testing.assert_allclose(both.nngp, relu_ref(x1, x2, get="nngp"), rtol=1e-12)
    assert not np.allclose(both.ntk, both.nngp)
    nngp = kernel_matrix(relu_kernels, x1, x2, get="nngp", tile=4, progress=False)
    np.testing.assert_array_equal(nngp, both.nngp)


@pytest.mark.parametrize("wrap", [dict, "namedtuple"])
def test_get_tuple_accepts_dict_and_namedtuple_results(wrap):
    Kern = collections.namedtuple("Kern", ["nngp", "ntk"])

    def kernel_fn(x1, x2=None, get=("nngp", "ntk")):
        parts = relu_kernels(x1, x2, get=("nngp", "ntk"))
        return dict(zip(("nngp", "ntk"), parts)) if wrap is dict else Kern(*parts)

    x = _x(11)
    k = kernel_matrix(kernel_fn, x, get=("ntk", "nngp"), tile=4, progress=False)
    np.testing.assert_allclose(k.ntk, relu_ref(x, get="ntk"), rtol=1e-12, atol=1e-7)


def test_float32_and_float64():
    x = _x(21, features=(6,))
    k64 = kernel_matrix(relu_kernels, x, tile=8, progress=False)
    k32 = kernel_matrix(relu_kernels, x, tile=8, dtype=np.float32, progress=False)
    k32j = kernel_matrix(relu_kernels, x, tile=8, dtype=jnp.float32, progress=False)
    assert k64.dtype == np.float64 and k32.dtype == np.float32
    np.testing.assert_array_equal(k32, k32j)
    assert np.array_equal(k32, k32.T)
    np.testing.assert_allclose(k32, k64, rtol=2e-3, atol=2e-3)  # sqrt(eps32) on the diagonal
    assert not np.array_equal(k32.astype(np.float64), k64)


def test_empty_inputs():
    k = kernel_matrix(rbf, np.zeros((0, 3)), _x(4, features=(3,)), progress=False)
    assert k.shape == (0, 4) and k.dtype == np.float64


@pytest.mark.parametrize("progress", [False, True])
def test_progress_bar(progress, capsys):
    x = _x(30)
    k = kernel_matrix(rbf, x, tile=7, progress=progress)
    np.testing.assert_allclose(k, rbf_ref(x, x), rtol=1e-13)
    err = capsys.readouterr().err
    if progress:
        assert "entries/s" in err and "memory per device" in err
    else:
        assert err == ""


def test_doctests():
    result = doctest.testmod(kernels, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 2 and result.failed == 0


def test_fc_kernel_from_archs(tmp_path):
    archs = pytest.importorskip("lantk.archs")
    _, _, kernel_fn = archs.fc(2)
    x = _x(13, features=(6,))
    get = ("nngp", "ntk")
    direct = kernel_fn(x, None, get=get)
    # no key=: the cache is keyed by the architecture's own kernel_fn.spec
    k = kernel_matrix(kernel_fn, x, get=get, tile=4, cache_dir=tmp_path, progress=False)
    for name in get:
        np.testing.assert_allclose(getattr(k, name), getattr(direct, name), rtol=1e-12,
                                   atol=1e-7)
    meta = json.loads(next(tmp_path.glob("*/meta.json")).read_text())
    assert meta["kernel"] == kernel_fn.spec and len(_tiles(tmp_path)) == 4 * 5 // 2
    cached = kernel_matrix(kernel_fn, x, get=get, tile=4, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(cached.ntk, k.ntk)


@pytest.mark.slow
def test_paper_cnn_kernel_from_archs():
    archs = pytest.importorskip("lantk.archs")
    _, _, kernel_fn = archs.paper_cnn()
    x1, x2 = _x(5, features=(8, 8, 1)), _x(3, seed=1, features=(8, 8, 1))
    k = kernel_matrix(kernel_fn, x1, x2, tile=2, progress=False)
    np.testing.assert_allclose(k, kernel_fn(x1, x2, get="ntk"), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((_x(4), _x(4, features=(6,))), {}, "same feature shape"),
        ((_x(4, features=(2, 3)), _x(4, features=(3, 2))), {}, "same feature shape"),
        ((np.array([[1.0, np.nan], [0.0, 1.0]]),), {}, "x1 contains 1 NaN or infinite"),
        ((_x(3, features=(2,)), np.array([[0.0, 1.0], [np.inf, 0.0]])), {},
         "x2 contains 1 NaN or infinite values .* row 1"),
        ((np.arange(4.0),), {}, r"shape \(n, \*features\)"),
        ((np.array([["a", "b"]]),), {}, "real numeric"),
        ((_x(4),), {"get": "ntkk"}, "unknown get='ntkk'"),
        ((_x(4),), {"get": ()}, "unknown get"),
        ((_x(4),), {"get": ("ntk", "ntk")}, "unknown get"),
        ((_x(4),), {"get": ("ntk", "cov")}, "unknown get"),
        ((_x(4),), {"tile": 0}, "tile must be a positive integer"),
        ((_x(4),), {"tile": -3}, "tile must be a positive integer"),
        ((_x(4),), {"tile": 2.5}, "tile must be a positive integer"),
        ((_x(4),), {"dtype": np.int32}, "dtype must be float32 or float64"),
    ],
)
def test_invalid_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        kernel_matrix(rbf, *args, progress=False, **kwargs)


def test_wrong_kernel_output_shape():
    with pytest.raises(ValueError, match="block of shape"):
        kernel_matrix(lambda a, b, get: (a @ b.T)[:, :1], _x(6), tile=3, progress=False)


# ---------------------------------------------------------------------------------------
# memory


def test_tile_too_large_names_one_that_fits():
    x = _x(64, features=(8,))
    budget = 64 * 1024
    with pytest.raises(ValueError, match=r"a 64x64 tile needs about .* use tile=(\d+)") as e:
        kernel_matrix(relu_kernels, x, tile=64, max_tile_bytes=budget, progress=False)
    suggested = int(e.value.args[0].rsplit("tile=", 1)[1].split()[0])
    assert 1 <= suggested < 64
    k = kernel_matrix(relu_kernels, x, tile=suggested, max_tile_bytes=budget, progress=False)
    np.testing.assert_allclose(k, relu_ref(x), rtol=1e-12, atol=1e-7)


def test_auto_tile_fits_the_budget(caplog):
    x = _x(64, features=(8,))
    with caplog.at_level("INFO", logger="lantk.kernels"):
        k = kernel_matrix(relu_kernels, x, max_tile_bytes=64 * 1024, progress=False)
    np.testing.assert_allclose(k, relu_ref(x), rtol=1e-12, atol=1e-7)
    (line,) = [r.getMessage() for r in caplog.records]
    side = int(line.split(" tiles of ")[1].split("x")[0])
    assert side < 64
    with caplog.at_level("INFO", logger="lantk.kernels"):
        kernel_matrix(relu_kernels, x, progress=False)  # the default budget: one tile
    assert "1 tiles of 64x64" in caplog.records[-1].getMessage()


def test_inputs_that_do_not_fit():
    with pytest.raises(ValueError, match="inputs alone need"):
        kernel_matrix(rbf, _x(100, features=(50,)), tile=4, max_tile_bytes=10_000,
                      progress=False)


# ---------------------------------------------------------------------------------------
# the cache


def test_cache_needs_a_key(tmp_path):
    with pytest.raises(ValueError, match="key="):
        kernel_matrix(rbf, _x(5), cache_dir=tmp_path, progress=False)
    kernel_matrix(rbf, _x(5), cache_dir=tmp_path, key="rbf:1", progress=False)
    with pytest.raises(TypeError, match="string"):
        kernel_matrix(rbf, _x(5), cache_dir=tmp_path, key=1, progress=False)


def test_cache_resumes_after_interruption(tmp_path):
    x, total = _x(37), 15  # 5 row tiles of 8: 15 upper-triangle tiles
    with pytest.raises(Exception, match="simulated interruption"):
        kernel_matrix(Counting(fail_after=6), x, tile=8, cache_dir=tmp_path, progress=False)
    assert len(_tiles(tmp_path)) == 6
    assert not list(tmp_path.glob("*/.*.tmp"))  # no temporary file left behind

    counting = Counting()
    k = kernel_matrix(counting, x, tile=8, cache_dir=tmp_path, progress=False)
    assert counting.calls == total - 6
    np.testing.assert_allclose(k, rbf_ref(x, x), rtol=1e-13)
    assert np.array_equal(k, k.T) and len(_tiles(tmp_path)) == total

    def never(x1, x2=None, get="ntk"):  # a finished matrix is read, not even compiled
        raise AssertionError("kernel_fn was traced")

    np.testing.assert_array_equal(
        kernel_matrix(never, x, tile=8, cache_dir=tmp_path, key=Counting.spec,
                      progress=False), k)


def test_corrupt_tiles_are_recomputed(tmp_path):
    x1, x2 = _x(20), _x(13, seed=1)
    first = kernel_matrix(Counting(), x1, x2, tile=8, cache_dir=tmp_path, progress=False)
    files = _tiles(tmp_path)
    assert len(files) == 3 * 2

    files[0].write_bytes(files[0].read_bytes()[:50])  # truncated
    raw = bytearray(files[1].read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # a garbled byte
    files[1].write_bytes(bytes(raw))
    with np.load(files[2]) as f:  # a valid file whose data no longer match the checksum
        arrays = dict(f)
    arrays["ntk"] = arrays["ntk"] + 1e-9
    np.savez(files[2], **arrays)
    with zipfile.ZipFile(files[3], "w") as z:  # a valid zip with the wrong content
        z.writestr("junk.npy", b"")

    counting = Counting()
    with pytest.warns(RuntimeWarning, match="cannot be used") as record:
        k = kernel_matrix(counting, x1, x2, tile=8, cache_dir=tmp_path, progress=False)
    assert counting.calls == 4 and len(record) == 4
    assert any("checksum mismatch" in str(w.message) for w in record)
    np.testing.assert_array_equal(k, first)

    again = Counting()  # the recomputed tiles were written back
    np.testing.assert_array_equal(
        kernel_matrix(again, x1, x2, tile=8, cache_dir=tmp_path, progress=False), first)
    assert again.calls == 0


def test_cache_key(tmp_path):
    x = _x(6)

    def folder(**kw):
        args = {"kernel_fn": relu_kernels, "x1": x, "x2": None, "tile": 4, "progress": False}
        args.update(kw)
        kernel_matrix(args.pop("kernel_fn"), args.pop("x1"), args.pop("x2"),
                      cache_dir=tmp_path, **args)
        return {p.parent.name for p in _tiles(tmp_path)}

    base = folder()
    assert folder() == base and folder(tile=3) == base  # the tile size is not in the key
    assert len(folder(get=("nngp", "ntk"))) == 2
    assert len(folder(get=("ntk", "nngp"))) == 2  # the order of get is not in the key
    assert len(folder(dtype=np.float32)) == 3
    assert len(folder(x2=x)) == 4
    assert len(folder(x1=x + 1e-12)) == 5
    with pytest.raises(ValueError, match="contradicts kernel_fn.spec"):
        folder(key="another kernel")  # a stax kernel is known by its own spec only
    meta = json.loads(next(iter(tmp_path.glob(f"{next(iter(base))}/meta.json"))).read_text())
    assert meta["kernel"] == relu_kernels.spec and meta["dtype"] == "float64"


def test_cached_dtype_is_kept(tmp_path):
    x = _x(9)
    k32 = kernel_matrix(relu_kernels, x, dtype=np.float32, tile=4, cache_dir=tmp_path,
                        progress=False)
    again = kernel_matrix(relu_kernels, x, dtype=np.float32, tile=4, cache_dir=tmp_path,
                          progress=False)
    assert again.dtype == np.float32
    np.testing.assert_array_equal(k32, again)


# ---------------------------------------------------------------------------------------
# several devices


TWO_DEVICES = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax, jax.numpy as jnp, numpy as np
    from lantk import kernels
    assert jax.device_count() == 2, jax.devices()

    seen = []  # which device of the mesh ran each tile

    def plain(x1, x2=None, get="ntk"):
        x2 = x1 if x2 is None else x2
        return jnp.exp(-0.5 * ((x1[:, None] - x2[None]) ** 2).sum(-1)) + x1 @ x2.T

    def kernel_fn(x1, x2=None, get="ntk"):
        jax.debug.callback(lambda i: seen.append(int(i)),
                           jax.lax.axis_index(kernels.TILE_AXIS))
        return plain(x1, x2, get)

    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(37, 5)), rng.normal(size=(29, 5))
    for args, steps in (((x1,), 8), ((x1, x2), 10)):
        seen.clear()
        both = kernels.kernel_matrix(kernel_fn, *args, tile=8, progress=False)
        assert sorted(set(seen)) == [0, 1] and len(seen) == 2 * steps, seen
        seen.clear()
        one = kernels.kernel_matrix(kernel_fn, *args, tile=8, progress=False,
                                    devices=jax.devices()[:1])
        assert set(seen) == {0}, seen
        assert np.array_equal(both, one)
        assert np.allclose(both, plain(*args))
    print("OK")
    """
)


def test_two_cpu_devices():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run([sys.executable, "-c", TWO_DEVICES], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("OK")


# --------------------------------------------------------------------------- trustworthy cache
def _paper_tiles(tmp_path, x, **kw):
    from lantk import archs

    kfn = archs.paper_cnn(1)[2]
    return kfn, kernel_matrix(kfn, x, tile=8, cache_dir=tmp_path, progress=False, **kw)


def test_swapped_tiles_are_recomputed_not_served(tmp_path):
    x = np.random.default_rng(0).standard_normal((24, 8, 8, 3))
    kfn, K = _paper_tiles(tmp_path, x)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    a, b = folder / "r8-16_c8-16.npz", folder / "r16-24_c16-24.npz"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    with pytest.warns(RuntimeWarning, match="holds the tile at"):
        K2 = kernel_matrix(kfn, x, tile=8, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(K2, K)


def test_a_tile_from_another_cache_is_not_served(tmp_path):
    x = np.random.default_rng(0).standard_normal((16, 8, 8, 3))
    kfn, K = _paper_tiles(tmp_path / "a", x)
    _, K_b = _paper_tiles(tmp_path / "b", x * 2)
    (fa,) = (tmp_path / "a").iterdir()
    (fb,) = (tmp_path / "b").iterdir()
    (fa / "r0-8_c0-8.npz").write_bytes((fb / "r0-8_c0-8.npz").read_bytes())
    with pytest.warns(RuntimeWarning, match="belongs to another kernel"):
        K2 = kernel_matrix(kfn, x, tile=8, cache_dir=tmp_path / "a", progress=False)
    np.testing.assert_array_equal(K2, K)


def test_a_key_that_contradicts_the_spec_is_refused(tmp_path):
    from lantk import archs

    x = np.random.default_rng(0).standard_normal((8, 8, 8, 3))
    base, other = archs.paper_cnn(1)[2], archs.cnn(2)[2]
    kernel_matrix(base, x, tile=8, cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="contradicts kernel_fn.spec"):
        kernel_matrix(other, x, tile=8, cache_dir=tmp_path, key=base.spec, progress=False)
    kernel_matrix(base, x, tile=8, cache_dir=tmp_path, key=base.spec, progress=False)  # agrees


def test_a_change_of_lantk_source_invalidates_the_tiles(tmp_path, monkeypatch):
    from lantk import kernels

    calls = []

    def rbf(x1, x2=None, get="ntk"):
        calls.append(1)
        x2 = x1 if x2 is None else x2
        return jnp.exp(-jnp.sum((x1[:, None] - x2[None]) ** 2, -1))

    x = _x(8)
    kernel_matrix(rbf, x, tile=4, cache_dir=tmp_path, key="rbf", progress=False)
    n = len(calls)
    kernel_matrix(rbf, x, tile=4, cache_dir=tmp_path, key="rbf", progress=False)
    assert len(calls) == n  # served from the cache (nothing traced again)
    monkeypatch.setattr(kernels, "_source_hash", lambda: "a changed ReLU map")
    kernels._COMPILED.clear()
    kernel_matrix(rbf, x, tile=4, cache_dir=tmp_path, key="rbf", progress=False)
    assert len(calls) > n
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


def test_tiles_follow_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        _paper_tiles(tmp_path, np.random.default_rng(0).standard_normal((8, 8, 8, 3)))
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in files)


@pytest.mark.parametrize("scale", [1e160])
def test_a_kernel_with_non_finite_entries_is_an_error_and_not_cached(tmp_path, scale):
    from lantk import archs

    kfn = archs.fc(2, 16)[2]
    x = _x(6) * scale
    with pytest.raises(ValueError, match="NaN or infinite ntk entries"):
        kernel_matrix(kfn, x, tile=3, cache_dir=tmp_path, progress=False)
    assert not list(tmp_path.rglob("*.npz"))

    def nan_kernel(x1, x2=None, get="ntk"):
        return jnp.full((len(x1), len(x1 if x2 is None else x2)), jnp.nan)

    with pytest.raises(ValueError, match="NaN or infinite"):
        kernel_matrix(nan_kernel, _x(4), tile=2, progress=False)


@pytest.mark.parametrize("depths", [[1, 2], [1, 2, 4]])
def test_a_network_with_a_head_per_depth_gives_each_depth_its_own_kernel(tmp_path, depths):
    """kernel_matrix on a network ending in stax.parallel returns one result per output, each
    equal to the kernel of the network of that depth alone, with get tuples, caches, stores
    and symmetric or cross blocks."""
    from lantk import archs

    rng = np.random.default_rng(0)
    x, z = rng.normal(size=(7, 5, 5, 2)), rng.normal(size=(4, 5, 5, 2))
    many = archs.cnn(depths, width=8, readout_W_std=0.3)[2]
    alone = [archs.cnn(d, width=8, readout_W_std=0.3)[2] for d in depths]
    for x2 in (None, z):
        out = kernel_matrix(many, x, x2, tile=3, progress=False)
        assert isinstance(out, list) and len(out) == len(depths)
        for got, k in zip(out, alone):
            np.testing.assert_allclose(got, kernel_matrix(k, x, x2, tile=3, progress=False),
                                       rtol=1e-13, atol=0)
        both = kernel_matrix(many, x, x2, get=("nngp", "ntk"), tile=4, progress=False)
        for got, k in zip(both, alone):
            want = kernel_matrix(k, x, x2, get=("nngp", "ntk"), tile=4, progress=False)
            assert got._fields == ("nngp", "ntk")
            np.testing.assert_allclose(got.nngp, want.nngp, rtol=1e-13, atol=0)
            np.testing.assert_allclose(got.ntk, want.ntk, rtol=1e-13, atol=0)
        cached = [kernel_matrix(many, x, x2, tile=3, progress=False, cache_dir=tmp_path / "c")
                  for _ in range(2)]
        stored = kernel_matrix(many, x, x2, tile=3, progress=False,
                               store=tmp_path / f"s{x2 is None}")
        for a, b, c, d in zip(out, *cached, stored):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(a, np.asarray(d))


def test_depths_of_a_multi_head_cnn_must_increase():
    from lantk import archs

    for bad in ([3, 3], [4, 3], []):
        with pytest.raises(ValueError, match="increasing"):
            archs.cnn(bad)
    with pytest.raises(ValueError, match="flatten"):
        archs.cnn([3, 4], readout="gap")
