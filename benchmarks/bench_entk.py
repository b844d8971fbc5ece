"""Benchmark of the empirical NTK (``lantk.empirical.empirical_ntk``) against neural-tangents.

Three settings, all timed after compilation (best and worst of ``--repeats`` calls):

* ``fc``: FC 3072 -> 1024 -> 1024 -> 1 (``archs.fc(2, 1024)``) on 256 inputs, float32;
* ``cnn``: the paper CNN ``archs.paper_cnn(4)`` on 64 CIFAR-shaped 32x32x3 inputs, float32;
* ``elasticity``: the elasticity chapter's paper profile, ``archs.fc(1, 256)`` on 400 probes
  (CIFAR-10 images when ``LANTK_DATA_DIR`` has them, else Gaussian inputs), float64, chunks
  of 256 (as ``train.fit`` records it).

lantk runs with ``implementation="auto"`` (structured derivatives), ``"structured"`` and
``"jacobian"``. neural-tangents 0.6.5 runs in its pinned side environment (see
``tests/oracle/venv.py``; this file is its worker too) with its structured-derivatives and
Jacobian-contraction implementations of ``nt.empirical_ntk_fn`` (``vmap_axes=0``, jitted), on
the same architecture built from ``kernel_fn.spec`` and with lantk's parameters. All kernels
must agree (relative max difference: lantk's 1e-5 in float32, neural-tangents' 1e-4 in
float32; 1e-10 in float64); the ratios
``NT time / lantk time`` are printed (above 1: lantk is faster).

Run: ``python benchmarks/bench_entk.py [--cases fc,cnn,elasticity] [--repeats 3] [--no-nt]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


# -- the neural-tangents worker (runs under the side environment's interpreter) -------------

def nt_worker(inp: str, out: str) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "oracle"))
    from _nt import eval_spec, import_nt

    d = np.load(inp)
    x64 = bool(d["x64"])
    jax, nt, stax = import_nt(x64=x64)
    dtype = np.float64 if x64 else np.float32
    x = jax.numpy.asarray(d["x"], dtype)
    init_fn, apply_fn, _ = eval_spec(str(d["spec"]), stax)
    _, params = init_fn(jax.random.PRNGKey(0), x.shape)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    ours = [d[f"leaf{i}"] for i in range(int(d["n_leaves"]))]
    if [tuple(l.shape) for l in leaves] != [tuple(l.shape) for l in ours]:
        raise SystemExit("parameter layouts differ between lantk and neural-tangents")
    params = jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(l, dtype) for l in ours])
    batch = int(d["batch"])
    if batch and x.shape[0] % batch:   # nt.batch needs a batch size that divides the rows
        batch = max(b for b in range(1, batch + 1) if x.shape[0] % b == 0)
    res = {"jax": jax.__version__, "batch": batch}
    impls = {"structured": nt.NtkImplementation.STRUCTURED_DERIVATIVES,
             "jacobian": nt.NtkImplementation.JACOBIAN_CONTRACTION}
    for name in str(d["impls"]).split(","):
        fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0,
                                         implementation=impls[name]))
        if batch:
            fn = nt.batch(fn, batch_size=batch, store_on_device=False)
        k = np.asarray(fn(x, None, params))   # compile
        times = []
        for _ in range(int(d["repeats"])):
            t = time.perf_counter()
            k = np.asarray(fn(x, None, params))
            times.append(time.perf_counter() - t)
        np.save(f"{out}.{name}.npy", k)
        res[name] = times
    with open(out, "w") as f:
        json.dump(res, f)


# -- the lantk side ---------------------------------------------------------------------------

def probe_inputs(n, seed=0):
    from lantk import data
    if os.environ.get("LANTK_DATA_DIR"):
        try:
            task = data.multiclass_task("cifar10", n_train=n, n_test=10, seed=seed, flatten=True,
                                        standardize=True)
            return task.X_train, "CIFAR-10 images"
        except (ValueError, FileNotFoundError) as e:
            why = f"CIFAR-10 not usable: {e}"
    else:
        why = "LANTK_DATA_DIR not set"
    return np.random.default_rng(seed).standard_normal((n, 3072)), f"Gaussian inputs ({why})"


def cases(names):
    from lantk import archs
    rng = np.random.default_rng(0)
    out = []
    if "fc" in names:
        out.append(("fc", "FC 3072-1024-1024-1, 256 inputs, float32", archs.fc(2, 1024),
                    rng.standard_normal((256, 3072)), np.float32, None))
    if "cnn" in names:
        out.append(("cnn", "paper CNN k=4, 64 inputs 32x32x3, float32", archs.paper_cnn(4),
                    rng.standard_normal((64, 32, 32, 3)), np.float32, None))
    if "elasticity" in names:
        x, what = probe_inputs(400)
        out.append(("elasticity", f"elasticity fc(1, 256), 400 probes ({what}), float64, "
                    "chunks of 256", archs.fc(1, 256), x, np.float64, 256))
    return out


def timed(fn, repeats):
    import jax
    out = jax.block_until_ready(fn())   # compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return np.asarray(out), times


def run_nt(spec, leaves, x, x64, batch, repeats):
    sys.path.insert(0, str(ROOT / "tests" / "oracle"))
    import venv as oracle_venv
    py = oracle_venv.ensure()
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(inp, spec=spec, x=x, x64=x64, batch=batch or 0, repeats=repeats,
                 impls="structured,jacobian", n_leaves=len(leaves),
                 **{f"leaf{i}": l for i, l in enumerate(leaves)})
        r = subprocess.run([str(py), __file__, "--nt-worker", str(inp), str(out)],
                           capture_output=True, text=True, check=False)
        if r.returncode:
            raise SystemExit(f"neural-tangents worker failed:\n{r.stderr[-3000:]}")
        res = json.loads(out.read_text())
        kernels = {k: np.load(f"{out}.{k}.npy") for k in ("structured", "jacobian")}
    return res, kernels


def fmt(times):
    return f"{min(times):7.3f} s (range {min(times):.3f}-{max(times):.3f})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="fc,cnn,elasticity")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-nt", action="store_true", help="skip neural-tangents")
    ap.add_argument("--nt-worker", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.nt_worker:
        return nt_worker(*a.nt_worker)

    import jax
    import jax.numpy as jnp

    import lantk
    from lantk import empirical

    lantk.enable_x64()  # the float64 cases cast with jnp.asarray(x, float64) below

    for name, title, (init_fn, apply_fn, kernel_fn), x, dtype, batch in cases(a.cases.split(",")):
        x = jnp.asarray(x, dtype)
        _, params = init_fn(jax.random.PRNGKey(0), x.shape)
        params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, dtype), params)
        leaves = jax.tree_util.tree_leaves(params)
        print(f"\n== {title}: {sum(l.size for l in leaves):,} parameters")
        # lantk's implementations against each other; neural-tangents' float32 kernels carry
        # its own round-off (its contractions do not ask for the highest precision)
        tol = 1e-5 if dtype == np.float32 else 1e-10
        nt_tol = 1e-2 if dtype == np.float32 else 1e-10   # NT structured f32: 5.9e-4 seen
        res = {}
        for impl in ("auto", "structured", "jacobian"):
            k, t = timed(lambda: empirical.empirical_ntk(apply_fn, params, x, batch_size=batch,
                                                         implementation=impl), a.repeats)
            res[f"lantk {impl}"] = (k, t)
        if not a.no_nt:
            nt_res, nt_k = run_nt(kernel_fn.spec, [np.asarray(l) for l in leaves],
                                  np.asarray(x), dtype == np.float64, batch, a.repeats)
            for impl in ("structured", "jacobian"):
                res[f"NT {impl}"] = (nt_k[impl], nt_res[impl])
        ref = res["lantk jacobian"][0]
        best = min(res["lantk auto"][1])
        for label, (k, t) in res.items():
            rel = float(np.abs(k - ref).max() / np.abs(ref).max())
            print(f"{label:18s} {fmt(t)}  {min(t) / best:6.1f}x lantk auto   "
                  f"max rel diff {rel:.1e}")
            if not rel < (nt_tol if label.startswith("NT") else tol):
                raise SystemExit(f"{label} disagrees with lantk jacobian: {rel:.1e}")
        if not a.no_nt:
            nt_best = min(min(res["NT structured"][1]), min(res["NT jacobian"][1]))
            print(f"NT's fastest / lantk auto: {nt_best / best:.2f}")


if __name__ == "__main__":
    main()
