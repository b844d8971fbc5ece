"""kernel_matrix(..., store=FOLDER): the shared tile store (lantk.tiles), its integrity and
resumption in one process, and two processes of JAX's multi-controller runtime
(jax.distributed on localhost, CPU) sharing the work of one kernel."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from _counting import Counting as _Counting

from lantk import tiles
from lantk._x64 import x64
from lantk.kernels import kernel_matrix

ROOT = Path(__file__).resolve().parents[1]


class Counting(_Counting):
    spec = "test:rbf-counting-store"


@x64
def _rbf_ref(x1, x2):
    return np.asarray(jnp.exp(-0.5 * ((x1[:, None] - x2[None]) ** 2).sum(-1)))


def _x(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 5))


def _journal_lines(folder):
    return {p.name: [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
            for p in sorted(Path(folder).glob("journal.p*.jsonl"))}


def _upper_tiles(n, t):
    return {(i, j, min(t, n - i), min(t, n - j))
            for i in range(0, n, t) for j in range(0, n, t) if j >= i}


# ---------------------------------------------------------------------------------------
# one process


def test_store_resumes_after_interruption_and_serves_a_finished_matrix(tmp_path):
    x, total = _x(37), 15  # 5 row tiles of 8: 15 upper-triangle tiles
    store = tmp_path / "k"
    with pytest.raises(Exception, match="simulated interruption"):
        kernel_matrix(Counting(fail_after=6), x, tile=8, store=store, progress=False)
    (lines,) = _journal_lines(store).values()
    assert len(lines) == 6  # what finished before the failure was journaled

    counting = Counting()
    k = kernel_matrix(counting, x, tile=8, store=store, progress=False)
    assert counting.calls == total - 6
    assert isinstance(k, np.memmap) and k.dtype == np.float64 and k.shape == (37, 37)
    np.testing.assert_allclose(k, _rbf_ref(x, x), rtol=1e-13)
    assert np.array_equal(k, k.T)
    entries = [tuple(e["tile"]) for e in _journal_lines(store)["journal.p0.jsonl"]]
    assert sorted(entries) == sorted(_upper_tiles(37, 8))  # each tile journaled once
    # the store is a few files, however many tiles it holds
    assert sorted(p.name for p in store.iterdir()) == ["journal.p0.jsonl", "meta.json",
                                                       "ntk.npy"]

    def never(x1, x2=None, get="ntk"):  # a finished store is read, not even compiled
        raise AssertionError("kernel_fn was traced")

    again = kernel_matrix(never, x, tile=None, store=store, key=Counting.spec, progress=False)
    np.testing.assert_array_equal(again, k)


def test_store_equals_the_in_memory_result_for_x2_and_several_gets(tmp_path):
    def two(x1, x2=None, get=("nngp", "ntk")):
        x2 = x1 if x2 is None else x2
        nngp = x1 @ x2.T
        out = {"nngp": nngp, "ntk": nngp + jnp.exp(-((x1[:, None] - x2[None]) ** 2).sum(-1))}
        return out[get] if isinstance(get, str) else tuple(out[g] for g in get)

    two.spec = "test:linear+rbf"
    x1, x2 = _x(20), _x(13, seed=1)
    want = kernel_matrix(two, x1, x2, get=("nngp", "ntk"), tile=8, progress=False)
    got = kernel_matrix(two, x1, x2, get=("nngp", "ntk"), tile=8,
                        store=tmp_path / "k", progress=False)
    np.testing.assert_array_equal(got.ntk, want.ntk)
    np.testing.assert_array_equal(got.nngp, want.nngp)
    (lines,) = _journal_lines(tmp_path / "k").values()
    assert len(lines) == 3 * 2  # every tile of the rectangle, none mirrored


def test_torn_or_altered_tiles_are_recomputed_not_served(tmp_path):
    x, store = _x(24), tmp_path / "k"
    first = np.array(kernel_matrix(Counting(), x, tile=8, store=store, progress=False))
    arr = np.load(store / "ntk.npy", mmap_mode="r+")
    arr[0:8, 8:16] += 1e-9   # an upper tile altered in place
    arr[20, 4] = 7.0         # the mirror half of the tile at rows 0-8, columns 16-24 torn
    arr.flush()
    del arr
    with open(store / "journal.p0.jsonl", "ab") as f:
        f.write(b'{"tile": [8, 8, 8, 8], "sha2')  # a journal line torn by a crash
    counting = Counting()
    with pytest.warns(RuntimeWarning, match="does not match its journaled checksum") as rec:
        k = kernel_matrix(counting, x, tile=8, store=store, progress=False)
    assert counting.calls == 2 and len(rec) == 2
    np.testing.assert_array_equal(k, first)
    again = Counting()  # the recomputed tiles were journaled on lines of their own
    np.testing.assert_array_equal(kernel_matrix(again, x, tile=8, store=store,
                                                progress=False), first)
    assert again.calls == 0


def test_a_store_for_another_computation_is_an_error(tmp_path):
    x, store = _x(12), tmp_path / "k"
    kernel_matrix(Counting(), x, tile=4, store=store, progress=False)
    with pytest.raises(ValueError, match="made for another computation: its inputs_sha256"):
        kernel_matrix(Counting(), x + 1e-12, tile=4, store=store, progress=False)
    with pytest.raises(ValueError, match="its kernel is 'test:rbf-counting-store', this "
                                         "call's is 'another kernel'"):
        other = Counting()
        other.spec = "another kernel"
        kernel_matrix(other, x, tile=4, store=store, progress=False)
    with pytest.raises(ValueError, match="its dtype is"):
        kernel_matrix(Counting(), x, tile=4, store=store, dtype=np.float32, progress=False)
    with pytest.raises(ValueError, match="holds 4x4 tiles, but tile=6"):
        kernel_matrix(Counting(), x, tile=6, store=store, progress=False)
    with pytest.raises(ValueError, match="not both"):
        kernel_matrix(Counting(), x, store=store, cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="store needs a way to identify the kernel"):
        kernel_matrix(lambda a, b=None, get="ntk": a @ a.T, x, store=tmp_path / "n",
                      progress=False)
    (store / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        kernel_matrix(Counting(), x, tile=4, store=store, progress=False)


def test_owner_deals_tiles_round_robin():
    assert [tiles.owner(k, 2) for k in range(5)] == [0, 1, 0, 1, 0]
    assert [tiles.owner(k, 1) for k in range(3)] == [0, 0, 0]


# ---------------------------------------------------------------------------------------
# two processes (jax.distributed on localhost)


WORKER = textwrap.dedent(
    """
    import json, sys
    import jax
    process_id, port, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    # JAX 0.10 uses gloo for CPU collectives by default: the barrier needs nothing more
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=process_id, initialization_timeout=60)
    import numpy as np
    from lantk.kernels import kernel_matrix
    from tests.test_distributed import Counting, _x

    assert jax.process_count() == 2 and jax.process_index() == process_id
    sym, rect = Counting(), Counting()
    k = kernel_matrix(sym, _x(40), tile=8, store=f"{folder}/sym", progress=False)
    r = kernel_matrix(rect, _x(40), _x(19, seed=1), tile=8, store=f"{folder}/rect",
                      progress=False)
    np.save(f"{folder}/sym.p{process_id}.npy", k)
    np.save(f"{folder}/rect.p{process_id}.npy", r)
    print(json.dumps({"sym": sym.calls, "rect": rect.calls}))
    jax.distributed.shutdown()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(folder: Path, timeout: float = 120.0) -> list[dict]:
    """Run WORKER as processes 0 and 1 of one jax.distributed job; their tile counts."""
    env = dict(os.environ, JAX_PLATFORMS="cpu",  # tests/ too, as pytest has it, for _counting
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    env.pop("XLA_FLAGS", None)
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), str(port), str(folder)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = []
    try:
        for i, p in enumerate(procs):
            try:
                out, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                pytest.fail(f"process {i} did not finish within {timeout:.0f} s; its stderr:\n"
                            f"{err[-3000:]}")
            assert p.returncode == 0, f"process {i} failed ({p.returncode}):\n{err[-3000:]}"
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return outs


def test_two_processes_share_one_kernel_and_resume(tmp_path):
    x, y = _x(40), _x(19, seed=1)
    want_sym = kernel_matrix(Counting(), x, tile=8, progress=False)
    want_rect = kernel_matrix(Counting(), x, y, tile=8, progress=False)
    upper = _upper_tiles(40, 8)  # 5 row tiles: 15 upper tiles

    start = time.monotonic()
    counts = _two_processes(tmp_path)
    elapsed = time.monotonic() - start
    assert elapsed < 60, f"two processes took {elapsed:.0f} s"
    # every process returns the whole matrix, equal to the one-process result
    for p in (0, 1):
        np.testing.assert_array_equal(np.load(tmp_path / f"sym.p{p}.npy"), want_sym)
        np.testing.assert_array_equal(np.load(tmp_path / f"rect.p{p}.npy"), want_rect)
    # tiles dealt round-robin: 8 + 7 of the 15 upper tiles, 8 + 7 of the 5x3 rectangle
    assert [c["sym"] for c in counts] == [8, 7] and [c["rect"] for c in counts] == [8, 7]
    journals = _journal_lines(tmp_path / "sym")
    assert sorted(journals) == ["journal.p0.jsonl", "journal.p1.jsonl"]
    done = [tuple(e["tile"]) for lines in journals.values() for e in lines]
    assert len(done) == len(set(done)) == 15 and set(done) == upper  # each exactly once
    order = sorted(upper)  # row-major: the order tiles are dealt in
    for p in (0, 1):
        assert {tuple(e["tile"]) for e in journals[f"journal.p{p}.jsonl"]} == set(order[p::2])

    # a run killed before journaling: drop two of process 0's tiles and one of process 1's
    for p, drop in ((0, 2), (1, 1)):
        path = tmp_path / "sym" / f"journal.p{p}.jsonl"
        path.write_text("".join(line + "\n" for line in path.read_text().splitlines()[drop:]))
    arr = np.load(tmp_path / "sym" / "ntk.npy", mmap_mode="r+")
    dropped = set(order[0:4:2]) | {order[1]}
    for i, j, rows, cols in dropped:  # and their bytes never written
        arr[i:i + rows, j:j + cols] = 0.0
        arr[j:j + cols, i:i + rows] = 0.0
    arr.flush()
    del arr
    counts = _two_processes(tmp_path)
    assert [c["sym"] for c in counts] == [2, 1] and [c["rect"] for c in counts] == [0, 0]
    for p in (0, 1):
        np.testing.assert_array_equal(np.load(tmp_path / f"sym.p{p}.npy"), want_sym)
    done = [tuple(e["tile"]) for lines in _journal_lines(tmp_path / "sym").values()
            for e in lines]
    assert len(done) == len(set(done)) == 15 and set(done) == upper
