"""lantk.parallel: independent jobs in single-threaded worker processes, one per core, when asked."""

import os

import numpy as np
import pytest

from lantk import archs, experiments, parallel


def _where():
    """Run in a worker: the cores it may use and its XLA flags."""
    return sorted(os.sched_getaffinity(0)), os.environ.get("XLA_FLAGS", "")


def _fails(x):
    if x == 2:
        raise ArithmeticError(f"job with x={x} fails")
    return x


def test_results_come_back_in_job_order_whatever_the_workers():
    jobs = [dict(base=b, exp=2) for b in range(7)]
    seen = []
    for workers in (0, 2):
        got = parallel.map_jobs(pow, jobs, workers=workers, on_result=lambda i, r: seen.append(i))
        assert got == [b * b for b in range(7)]
    assert sorted(seen) == list(range(7)) * 2 or sorted(seen) == sorted(list(range(7)) * 2)


def test_each_worker_is_pinned_to_its_own_core_and_single_threaded():
    cores = sorted(os.sched_getaffinity(0))
    n = min(2, len(cores))
    got = parallel.map_jobs(_where, [{}] * (4 * n), workers=n)
    assert all(len(c) == 1 for c, _ in got)  # one core each
    assert {c[0] for c, _ in got} <= set(cores[:n])
    assert all(parallel.SINGLE_THREAD_FLAGS in f for _, f in got)
    here = parallel.map_jobs(_where, [{}], workers=0)[0]
    assert here[0] == cores  # workers=0: this process, untouched
    assert parallel.map_jobs(_where, [{}])[0] == here  # the default: this process
    assert parallel.cores() == cores


def test_a_failing_job_raises_its_own_error_naming_the_job():
    with pytest.raises(ArithmeticError, match="x=2 fails") as e:
        parallel.map_jobs(_fails, [dict(x=i) for i in range(4)], workers=2)
    assert any("job 2 of 4" in n for n in getattr(e.value, "__notes__", []))
    with pytest.raises(ArithmeticError):
        parallel.map_jobs(_fails, [dict(x=2)], workers=0)


def test_jobs_of_different_kinds_share_one_pool():
    jobs = [dict(base=3, exp=2), dict(x=5), dict(base=2, exp=5)]
    for workers in (0, 2):
        assert parallel.map_jobs([pow, _fails, pow], jobs, workers=workers) == [9, 5, 32]
    with pytest.raises(ValueError, match="one per job"):
        parallel.map_jobs([pow, pow], jobs)


@pytest.mark.parametrize("jobs, workers, match", [
    ([(1, 2)], 0, "jobs must be dicts"),
    ([{}], -1, "workers must be"),
    ([{}], 1.5, "workers must be"),
])
def test_bad_arguments_are_named(jobs, workers, match):
    with pytest.raises(ValueError, match=match):
        parallel.map_jobs(pow, jobs, workers=workers)


def test_describe_says_how_the_jobs_run():
    assert parallel.describe(0, 5) == "this process"
    assert parallel.describe(4, 2) == "2 worker processes of one thread each"
    assert parallel.describe(1, 3) == "1 worker process of one thread each"


def test_a_pair_run_gives_the_same_numbers_on_one_or_two_workers():
    """Every job runs on one thread, so the trained network and the kernel methods do not
    depend on how many workers shared the jobs."""
    job = dict(dataset="digits", n_train=40, n_val=20, n_test=30, kernel_arch="paper_cnn",
               methods=["ntk", "kr-v1", "oracle"], c_grid=[0.1, 1.0], kernel_dtype="float32",
               network=dict(arch=("cnn", {"depth": 1, "width": 8}), epochs=3, seed=0,
                            batch_size=16, patience=2, monitor="loss"))
    jobs = [dict(job, classes=c, seed=0) for c in ((3, 5), (4, 9))]
    one = parallel.map_jobs(experiments.binary_pair_run, jobs, workers=1)
    two = parallel.map_jobs(experiments.binary_pair_run, jobs, workers=2)
    for a, b in zip(one, two):
        assert a["class_names"] == b["class_names"] and a["n_train"] == 40
        assert set(a["results"]) == {"ntk", "kr-v1", "oracle", "cnn"}
        for m in a["results"]:
            np.testing.assert_array_equal(a["results"][m]["correct"], b["results"][m]["correct"])
        assert a["network"]["epochs"] == b["network"]["epochs"]
        assert a["results"]["oracle"]["accuracy"] >= a["results"]["ntk"]["accuracy"]
    assert one[0]["class_names"] != one[1]["class_names"]


def test_archs_build_names_an_architecture():
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 1)).astype(np.float32)
    k = archs.build(("cnn", {"depth": 2, "width": 4}))[2](x, None, "ntk")
    np.testing.assert_allclose(np.asarray(k), np.asarray(archs.cnn(2, width=4)[2](x, None, "ntk")))
    assert len(archs.build("paper_cnn")) == 3
    for bad in ("resnet", ("cnn", [3]), 3, ("cnn",)):
        with pytest.raises(ValueError, match="an architecture is a name"):
            archs.build(bad)


def test_multiclass_run_splits_the_kernel_methods_and_the_network_into_two_jobs():
    spec = dict(dataset="digits", seed=0, n_train=100, n_val=30, n_test=50)
    jobs = [dict(spec, kernel_arch=("cnn", {"depth": 1, "readout_W_std": 0.1}),
                 methods=["ntk", "oracle"], c_grid=[1.0]),
            dict(spec, network=dict(arch=("cnn", {"depth": 1, "width": 8}), epochs=2,
                                    batch_size=32, seed=0))]
    kern, net = parallel.map_jobs(experiments.multiclass_run, jobs, workers=2)
    assert kern["summary"] == net["summary"]  # the same task in both jobs
    assert set(kern["results"]) == {"ntk", "oracle"} and set(net["results"]) == {"cnn"}
    assert kern["network"] is None and net["network"]["epochs"] == 2
    assert len(net["network"]["history"]) == 2
    c = net["results"]["cnn"]["correct"]
    assert c.shape == (50,) and set(np.unique(c)) <= {0, 1}
    assert abs(c.mean() - net["results"]["cnn"]["accuracy"]) < 1e-12
    assert kern["results"]["ntk"]["accuracy"] > 0.5   # ten digit classes, chance is 0.1


def test_two_layer_pair_run_matches_the_steps_it_bundles():
    job = dict(dataset="digits", classes=(3, 5), seed=1, test_seed=0, n_train=40, n_val=20,
               n_test=30, c_grid=[0.1, 1.0], widths=[64], samples=50, epochs=2,
               methods=["ntk", "kr-v1"])
    run = experiments.two_layer_pair_run(**job)
    task = experiments.two_layer_task("digits", (3, 5), 1, n_train=40, n_val=20, n_test=30,
                                      test_seed=0)
    ref = experiments.two_layer_task("digits", (3, 5), 0, n_train=40, n_val=20, n_test=30)
    np.testing.assert_array_equal(task.idx_test, ref.idx_test)  # the first seed's test images
    blocks = experiments.closed_form_blocks(archs.two_layer_relu_kernel, task)
    direct = experiments.evaluate_methods(task, blocks, ["ntk"])
    got = {r["method"]: r for r in run["results"] if r["width"] is None}
    np.testing.assert_array_equal(got["ntk"]["correct"], direct["ntk"]["correct"])
    assert {(r["method"], r["width"]) for r in run["results"] if r["width"]} == \
        {("nth", 64), ("network", 64)}
    assert run["n_train"] == 40 and run["n_test"] == 30


def test_training_workers_is_one_per_core_on_the_cpu_and_none_on_an_accelerator(monkeypatch):
    monkeypatch.setattr(parallel, "cores", lambda: [0, 1])
    assert parallel.training_workers("cpu") == 2
    assert parallel.training_workers("gpu") == 0
    assert parallel.training_workers("tpu") == 0
    monkeypatch.setattr(parallel, "cores", lambda: [3])
    assert parallel.training_workers("cpu") == 0   # one core: no second worker to gain from
    monkeypatch.setattr(parallel, "cores", lambda: [0, 1, 2, 3])
    import jax
    assert parallel.training_workers() == (4 if jax.default_backend() == "cpu" else 0)
