"""The fast Johnson-Lindenstrauss transform of FJLT-V1/V2's sketch-and-solve: the
Walsh-Hadamard transform and the sparse Gaussian projection (Ailon & Chazelle 2009)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp


def _fwht(x: np.ndarray) -> np.ndarray:
    """Unnormalised Walsh-Hadamard transform (Sylvester order) along axis 0 of ``(L, c)``.

    ``H_L`` is a Kronecker product of small dense Hadamard matrices, applied axis by axis with
    matrix products (BLAS), which beats log₂L memory-bound butterfly passes in NumPy.
    """
    L, c = x.shape
    lg = L.bit_length() - 1
    if lg == 0:
        return x.copy()
    parts = [6] * (lg // 6) + ([lg % 6] if lg % 6 else [])
    y = np.ascontiguousarray(x.T)  # (c, L): every factor is then one (batched) matrix product
    done = 1
    for b in parts:
        d = 1 << b
        after = L // (done * d)
        Hd = _hadamard(d)
        if after == 1:
            y = y.reshape(-1, d) @ Hd  # Hd is symmetric
        else:
            y = np.matmul(Hd, y.reshape(-1, d, after))
        done *= d
    return y.reshape(c, L).T


_HADAMARD_CACHE: dict = {}


def _hadamard(d: int) -> np.ndarray:
    if d not in _HADAMARD_CACHE:
        _HADAMARD_CACHE[d] = sla.hadamard(d).astype(np.float64)
    return _HADAMARD_CACHE[d]


@dataclass
class _SketchPlan:
    """The random FJLT ``S = P · (H_N/√N) · D`` of Ailon & Chazelle (2009), ``k × N``.

    ``D``: random signs (drawn per block); ``H_N``: Walsh-Hadamard over the padded length
    ``N = 2^m``; ``P``: sparse Gaussian, ``s`` nonzeros per row at uniform positions, each
    ``g · √(N / (k s))`` with ``g ~ N(0, 1)`` (so ``E‖Sx‖² = ‖x‖²``).
    """

    N: int
    L: int
    k: int
    s: int
    rows: np.ndarray    # (k·s,) row of each nonzero of P
    pos: np.ndarray     # (k·s,) column of each nonzero (0 <= pos < N)
    val: np.ndarray     # (k·s,) value
    seed: int

    @classmethod
    def make(cls, n_rows: int, k: int, seed: int, L_max: int = 1 << 18, s: int | None = None):
        N = 1 << max(0, (n_rows - 1).bit_length())
        L = min(N, L_max)
        if s is None:
            s = int(min(N, max(1, math.ceil(math.log(N) ** 2)))) if N > 1 else 1
        rng = np.random.default_rng([seed, 2])
        rows = np.repeat(np.arange(k), s)
        pos = rng.integers(0, N, size=k * s)
        val = rng.standard_normal(k * s) * math.sqrt(N / (k * s))
        return cls(N, L, k, s, rows, pos, val, seed)

    def signs(self, block: int) -> np.ndarray:
        return np.random.default_rng([self.seed, 1, block]).choice(
            np.array([-1.0, 1.0]), size=self.L)

    def dense(self, n_rows: int) -> np.ndarray:
        """The explicit ``k × n_rows`` matrix (padding columns dropped): for tests only."""
        D = np.concatenate([self.signs(a) for a in range(self.N // self.L)])
        Hn = sla.hadamard(self.N).astype(np.float64) / math.sqrt(self.N)
        Pm = np.zeros((self.k, self.N))
        np.add.at(Pm, (self.rows, self.pos), self.val)
        return (Pm @ Hn @ np.diag(D))[:, :n_rows]

    def apply(self, row_source, n_rows: int, n_cols: int) -> np.ndarray:
        """``S X`` for the ``n_rows × n_cols`` matrix ``X`` given block by block by
        ``row_source(t0, t1)``; never holds more than one ``L × n_cols`` block.

        ``H_N = H_A ⊗ H_L`` (``A = N/L`` blocks), so ``(H_N D x)[a'L + j] =
        Σ_a H_A[a', a] (H_L D_a x_a)[j]`` and ``P H_N D x = Σ_a M_a (H_L D_a x_a)`` with
        ``M_a = Σ_a' H_A[a', a] P_a'`` (``H_A[a', a] = (−1)^popcount(a' & a)``): one sparse
        product per block with the same sparsity pattern and block-dependent signs.
        """
        A = self.N // self.L
        blk_of = self.pos // self.L
        j_of = self.pos % self.L
        order = np.lexsort((j_of, self.rows))
        rows, blk, jj, val = self.rows[order], blk_of[order], j_of[order], self.val[order]
        indptr = np.searchsorted(rows, np.arange(self.k + 1))
        out = np.zeros((self.k, n_cols))
        for a in range(A):
            t0 = a * self.L
            if t0 >= n_rows:
                break  # all-zero padding blocks contribute nothing
            t1 = min(n_rows, t0 + self.L)
            xa = np.zeros((self.L, n_cols))
            xa[: t1 - t0] = row_source(t0, t1)
            xa *= self.signs(a)[:, None]
            ua = _fwht(xa)
            sign = 1.0 - 2.0 * (np.bitwise_count(blk & a) & 1)
            Ma = sp.csr_matrix((val * sign, jj, indptr), shape=(self.k, self.L))
            out += Ma @ ua
        return out / math.sqrt(self.N)


def sketch_rows(p: int, eps: float, n_rows: int) -> int:
    """Sketch size ``k = ⌈d ln d / ε²⌉`` for ``d = p + 2`` columns (intercept, ``p``
    features, response), at least ``d + 1`` and at most the number of rows."""
    d = p + 2
    return int(min(n_rows, max(d + 1, math.ceil(d * math.log(d) / eps ** 2))))

