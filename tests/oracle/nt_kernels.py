"""Oracle: neural-tangents 0.6.5 kernels and finite networks for lantk's tests.

Usage (with the side environment's interpreter)::

    python nt_kernels.py IN.npz OUT.npz

IN.npz holds ``specs`` (strings: lantk ``kernel_fn.spec`` expressions), and for each spec i
inputs ``x1_i`` and optionally ``x2_i`` (or shared ``x1``/``x2``), and ``seed``. For spec i,
OUT.npz gets ``nngp_i``, ``ntk_i`` (x1 vs x2, or x1 vs x1), ``sym_ntk_i`` (``x2=None``), the
leaves of ``init_fn(PRNGKey(seed), x1.shape)`` as ``param_i_j``, and
``apply_i = apply_fn(params, x1)``. Everything runs in float64.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _nt import eval_spec, import_nt


def main(inp: str, out: str) -> None:
    jax, _, stax = import_nt(x64=True)
    import numpy as np

    data = np.load(inp)
    specs = [str(s) for s in data["specs"]]
    seed = int(data["seed"]) if "seed" in data.files else 0
    res = {}
    for i, spec in enumerate(specs):
        x1 = np.asarray(data[f"x1_{i}" if f"x1_{i}" in data.files else "x1"], np.float64)
        key2 = f"x2_{i}" if f"x2_{i}" in data.files else "x2"
        x2 = np.asarray(data[key2], np.float64) if key2 in data.files else None
        init_fn, apply_fn, kernel_fn = eval_spec(spec, stax)
        k = kernel_fn(x1, x2, ("nngp", "ntk"))
        res[f"nngp_{i}"] = np.asarray(k.nngp)
        res[f"ntk_{i}"] = np.asarray(k.ntk)
        res[f"sym_ntk_{i}"] = np.asarray(kernel_fn(x1, None, "ntk"))
        _, params = init_fn(jax.random.PRNGKey(seed), x1.shape)
        leaves = jax.tree_util.tree_leaves(params)
        for j, leaf in enumerate(leaves):
            res[f"param_{i}_{j}"] = np.asarray(leaf)
        res[f"n_params_{i}"] = np.asarray(len(leaves))
        res[f"apply_{i}"] = np.asarray(apply_fn(params, x1))
    np.savez(out, **res)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
