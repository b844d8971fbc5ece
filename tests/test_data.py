import gzip
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from lantk import data


# ----------------------------------------------------------------------------- digits (embedded)
def test_digits_fixed_split():
    xtr, ytr = data.load("digits", "train")
    xte, yte = data.load("digits", "test")
    assert xtr.shape == (1348, 8, 8, 1) and xte.shape == (449, 8, 8, 1)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.int64
    assert xtr.max() == 255 and xtr.min() == 0
    # the documented rule: image i is a test image iff i % 4 == 3
    from sklearn.datasets import load_digits

    target = load_digits().target
    np.testing.assert_array_equal(yte, target[3::4])
    np.testing.assert_array_equal(np.sort(np.concatenate([ytr, yte])), np.sort(target))


def test_binary_task_balanced_deterministic_disjoint():
    t1 = data.binary_task("digits", classes=(3, 8), n_train=40, n_test=20, n_val=10, seed=1)
    t2 = data.binary_task("digits", classes=(3, 8), n_train=40, n_test=20, n_val=10, seed=1)
    t3 = data.binary_task("digits", classes=(3, 8), n_train=40, n_test=20, n_val=10, seed=2)
    np.testing.assert_array_equal(t1.X_train, t2.X_train)
    np.testing.assert_array_equal(t1.y_test, t2.y_test)
    assert not np.array_equal(t1.idx_train, t3.idx_train)
    assert t1.X_train.shape == (40, 8, 8, 1) and t1.X_val.shape == (10, 8, 8, 1)
    assert set(t1.y_train.tolist()) == {-1.0, 1.0}
    assert (t1.y_train == 1).sum() == 20 and (t1.y_test == 1).sum() == 10
    assert not set(t1.idx_val) & set(t1.idx_train)
    assert t1.X_train.min() >= -1.0 and t1.X_train.max() <= 1.0
    # labels follow the classes: +1 is the first class
    _, y_all = data.load("digits", "train")
    assert np.all(y_all[t1.idx_train[t1.y_train == 1]] == 3)


def test_preprocessing_options():
    t = data.binary_task("digits", classes=(0, 1), n_train=30, n_test=10, flatten=True, standardize=True)
    assert t.X_train.shape == (30, 64)
    # standardised with training statistics: training mean ~0, std ~1 per channel
    assert abs(t.X_train.mean()) < 1e-9 and abs(t.X_train.std() - 1) < 1e-9


def test_multiclass_task_and_one_hot():
    t = data.multiclass_task("digits", n_train=50, n_test=20)
    assert sorted(set(t.y_train.tolist())) == list(range(10))
    assert np.bincount(t.y_train).tolist() == [5] * 10
    Y = data.one_hot_centred(t.y_train)
    np.testing.assert_allclose(Y.sum(axis=1), 0.0, atol=1e-12)
    T = Y @ Y.T
    same = t.y_train[:, None] == t.y_train[None, :]
    assert np.all(T[same] > 0) and np.all(T[~same] < 0)


# ----------------------------------------------------------------------------- bad input
def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'; available: digits, mnist, cifar10"):
        data.load("svhn")


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        data.load("digits", "valid")


def test_unknown_class():
    with pytest.raises(ValueError, match="unknown class 'cow' for cifar10; available: airplane"):
        data.binary_task("cifar10", classes=("cow", "cat"), root="/nonexistent")
    with pytest.raises(ValueError, match="unknown class 12 for digits"):
        data.binary_task("digits", classes=(12, 3))


def test_equal_classes():
    with pytest.raises(ValueError, match="classes must be distinct"):
        data.binary_task("digits", classes=(3, 3))


def test_binary_needs_two_classes():
    with pytest.raises(ValueError, match="exactly two classes"):
        data.binary_task("digits", classes=(1, 2, 3))


def test_more_samples_than_exist():
    with pytest.raises(ValueError, match=r"asked for 500 train images of class 3 .*only 136 are available"):
        data.binary_task("digits", classes=(3, 8), n_train=1000)


def test_largest_balanced_is_the_limit():
    _, y = data.load("digits", "train")
    n = data.largest_balanced("digits", ["3", 8])
    assert n == 2 * min(np.sum(y == 3), np.sum(y == 8))
    t = data.binary_task("digits", classes=(3, 8), n_train=n)   # the largest size works
    assert len(t.y_train) == n and t.y_train.sum() == 0
    with pytest.raises(ValueError, match="only"):
        data.binary_task("digits", classes=(3, 8), n_train=n + 2)
    with pytest.raises(ValueError, match="unknown dataset"):
        data.largest_balanced("svhn", [0, 1])


def test_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        data.load("mnist", "train", root=tmp_path)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg
    assert "lantk data fetch mnist" in msg


def test_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LANTK_DATA_DIR", str(tmp_path))
    assert data.data_root() == tmp_path
    monkeypatch.delenv("LANTK_DATA_DIR")
    assert str(data.data_root()).endswith(os.path.join(".cache", "lantk"))


# ----------------------------------------------------------------------------- fetch (offline)
def test_fetch_verifies_md5_and_installs(data_dir, tmp_path):
    src = data_dir / "mnist"
    files = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    dest = data.fetch("mnist", tmp_path / "root", base_urls=[src.as_uri()], files=files, progress=False)
    for f in files:
        assert data.md5sum(dest / f) == data.MNIST_MD5[f]
    x, y = data.load("mnist", "test", root=tmp_path / "root")
    assert x.shape == (10000, 28, 28, 1) and len(y) == 10000
    assert not list(dest.glob("*.partial"))


def test_fetch_rejects_corrupt_download(data_dir, tmp_path):
    bad = tmp_path / "mirror"
    bad.mkdir()
    good = data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz"
    blob = bytearray(good.read_bytes())
    blob[100] ^= 0xFF  # one flipped byte
    (bad / good.name).write_bytes(bytes(blob))
    root = tmp_path / "root"
    with pytest.raises(OSError, match="checksum mismatch for t10k-labels-idx1-ubyte.gz"):
        data.fetch("mnist", root, base_urls=[bad.as_uri()], files=[good.name], progress=False)
    assert not (root / "mnist" / good.name).exists()
    assert not list((root / "mnist").glob("*"))  # nothing partial left behind
    # a truncated file is rejected too, and a later good mirror is used
    (bad / good.name).write_bytes(good.read_bytes()[:500])
    dest = data.fetch("mnist", root, base_urls=[bad.as_uri(), good.parent.as_uri()],
                      files=[good.name], progress=False)
    assert data.md5sum(dest / good.name) == data.MNIST_MD5[good.name]


def test_fetch_unknown_file(tmp_path):
    with pytest.raises(ValueError, match="unknown MNIST files"):
        data.fetch("mnist", tmp_path, files=["nope.gz"])


def test_truncated_idx_is_an_error(data_dir, tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    for f in data.MNIST_FILES["test"]:
        shutil.copy(data_dir / "mnist" / f, d / f)
    raw = gzip.decompress((d / "t10k-images-idx3-ubyte.gz").read_bytes())
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[:-1000]))
    with pytest.raises(ValueError, match="truncated"):
        data.load("mnist", "test", root=tmp_path)


# ----------------------------------------------------------------------------- real data
def test_real_data_counts(data_dir):
    info = data.info(data_dir)
    assert info["cifar10"]["train"]["images"] == 5170 and info["cifar10"]["test"]["images"] == 1017
    assert info["mnist"]["train"]["images"] == 17435 and info["mnist"]["test"]["images"] == 10000
    assert info["digits"]["train"]["images"] + info["digits"]["test"]["images"] == 1797
    import json

    manifest = json.loads((data_dir / "MANIFEST.json").read_text())
    per_class = np.sum([manifest[f"cifar-10-batches-py/data_batch_{i}"]["per_class"]
                        for i in range(1, 6)], axis=0)
    assert info["cifar10"]["train"]["per_class"] == per_class.tolist()


def test_cifar_images_and_task(data_dir):
    x, _y = data.load("cifar10", "test", root=data_dir)
    assert x.shape == (1017, 32, 32, 3) and x.dtype == np.uint8
    t = data.binary_task("cifar10", classes=("cat", "dog"), root=data_dir)
    assert t.X_train.shape[1:] == (32, 32, 3)
    assert len(t.y_train) == 505 + 484  # every cat and dog image when n_train is None
    assert t.class_names == ("cat", "dog")


def test_cli_data_info(data_dir):
    out = subprocess.run([sys.executable, "-m", "lantk.cli", "data", "info", "--root", str(data_dir)],
                         capture_output=True, text=True, check=True).stdout
    assert "cifar10  train   5170 images" in out and "mnist    test   10000 images" in out
    assert "cat=505" in out


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "lantk.cli", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "data" in out


def test_choose_dataset(tmp_path, data_dir):
    assert data.available("digits", tmp_path)
    assert not data.available("cifar10", tmp_path)
    assert data.choose_dataset("cifar10", tmp_path) == "digits"
    assert data.choose_dataset("cifar10", data_dir) == "cifar10"


@pytest.mark.parametrize("kwargs, match", [
    ({"n_train": 0}, "n_train must be an integer >= 1"),
    ({"n_train": 3.5}, "n_train must be an integer >= 1"),
    ({"n_test": -2}, "n_test must be an integer >= 1"),
    ({"n_val": 2.5}, "n_val must be an integer >= 0"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"seed": 1.5}, "seed must be an integer >= 0"),
])
def test_task_sizes_and_seed_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.binary_task("digits", (3, 8), **{"n_train": 10, "n_test": 10, **kwargs})
