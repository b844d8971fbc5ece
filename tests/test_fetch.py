"""Downloading, verifying and reading data files, without the network.

A local HTTP server (127.0.0.1, an ephemeral port) serves archives built in ``tmp_path``:
small synthetic MNIST / CIFAR-10 files for most tests, and the shared real files for the
end-to-end ones (skipped when ``LANTK_DATA_DIR`` is unset). Expected MD5s are overridden to
the served archives' MD5s.
"""

import gzip
import hashlib
import http.server
import io
import json
import os
import pickle
import socket
import tarfile
import threading
import time
import warnings

import numpy as np
import pytest

from lantk import data

MNIST_NAMES = [*data.MNIST_FILES["train"], *data.MNIST_FILES["test"]]


# ----------------------------------------------------------------------------- building files
def _idx(arr: np.ndarray, dims=None) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    dims = arr.shape if dims is None else dims
    head = bytes([0, 0, 0x08, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
    return head + arr.tobytes()


def _mnist_blobs(n_train=40, n_test=20, seed=0, shared=0) -> dict:
    """The four gzip IDX files of a tiny MNIST; ``shared`` test images copied from train."""
    rng = np.random.default_rng(seed)
    x_tr = rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8)
    x_te = rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8)
    x_te[:shared] = x_tr[-shared:] if shared else x_te[:0]
    y_tr = np.arange(n_train) % 10
    y_te = np.arange(n_test) % 10
    raw = {
        "train-images-idx3-ubyte.gz": _idx(x_tr), "train-labels-idx1-ubyte.gz": _idx(y_tr),
        "t10k-images-idx3-ubyte.gz": _idx(x_te), "t10k-labels-idx1-ubyte.gz": _idx(y_te),
    }
    return {k: gzip.compress(v, mtime=0) for k, v in raw.items()}


def _cifar_batch(n=20, seed=0, data=None, labels=None) -> bytes:
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"synthetic",
        b"labels": list(np.arange(n) % 10) if labels is None else labels,
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8) if data is None else data,
        b"filenames": [b"img%d.png" % i for i in range(n)],
    }
    batch[b"labels"] = [int(v) for v in batch[b"labels"]]
    return pickle.dumps(batch, protocol=2)


def _cifar_blobs(n=20, seed=0, shared=0) -> dict:
    blobs = {f"data_batch_{i}": _cifar_batch(n, seed + i) for i in range(1, 6)}
    test = np.random.default_rng(seed + 99).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    if shared:
        train = pickle.loads(blobs["data_batch_3"], encoding="bytes")[b"data"]
        test[:shared] = train[:shared]
    blobs["test_batch"] = _cifar_batch(n, data=test)
    blobs["batches.meta"] = pickle.dumps({b"label_names": [c.encode() for c in data.CIFAR10_CLASSES]},
                                         protocol=2)
    return blobs


def _tar_gz(blobs: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for name, blob in blobs.items():
            info = tarfile.TarInfo(f"{data.CIFAR10_DIR}/{name}")
            info.size, info.mode, info.mtime = len(blob), 0o644, 0
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


def _write_folder(folder, blobs: dict):
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        (folder / name).write_bytes(blob)
    return folder


def _rewrite(path, blob: bytes):
    """Replace a file's bytes through a new file (a new inode: no stale in-process cache)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(blob)
    os.replace(tmp, path)


def _md5(blob: bytes) -> str:
    return hashlib.md5(blob).hexdigest()


# ----------------------------------------------------------------------------- the server
class _Server:
    """Serves ``files`` (name -> bytes) over HTTP; ``truncate`` names files sent half-way."""

    def __init__(self):
        self.files: dict = {}
        self.truncate: set = set()
        self.hits: list = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server API)
                name = self.path.lstrip("/")
                server.hits.append(name)
                blob = server.files.get(name)
                if blob is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                if name in server.truncate:  # the connection breaks off mid-file
                    self.wfile.write(blob[: len(blob) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(blob)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def md5(self) -> dict:
        return {name: _md5(blob) for name, blob in self.files.items()}

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for var in ("LANTK_DATA_MIRROR", "LANTK_DATA_MD5", "LANTK_OFFLINE"):
        monkeypatch.delenv(var, raising=False)


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused at once
    return f"http://127.0.0.1:{port}/"


def _cli(capsys, *args):
    """Run ``lantk ARGS`` in this process: (exit status, stdout, stderr)."""
    from lantk import cli

    capsys.readouterr()
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def _installed(folder) -> list:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ----------------------------------------------------------------------------- fetch end to end
def test_fetch_mnist_over_http_then_verify(server, tmp_path):
    server.files.update(_mnist_blobs())
    root = tmp_path / "root"
    actions = {}
    dest = data.fetch("mnist", root, base_urls=[server.url], md5=server.md5(), progress=False,
                      actions=actions)
    assert actions == {f: "downloaded" for f in MNIST_NAMES}
    assert sorted(server.hits) == sorted(MNIST_NAMES)
    assert _installed(dest) == sorted([*MNIST_NAMES, "MANIFEST.json"])  # no .partial left
    report = data.verify("mnist", root)
    assert report.ok and [c.status for c in report.files] == ["ok"] * 4, str(report)
    assert "sha256 matches" in str(report)
    x, y = data.load("mnist", "train", root)
    assert x.shape == (40, 28, 28, 1) and y.tolist() == [i % 10 for i in range(40)]


def test_fetch_cifar_archive_over_http_then_verify(server, tmp_path):
    server.files[data.CIFAR10_ARCHIVE] = _tar_gz(_cifar_blobs())
    root = tmp_path / "root"
    dest = data.fetch("cifar10", root, base_urls=server.url, md5=server.md5(), progress=False)
    assert server.hits == [data.CIFAR10_ARCHIVE]
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no staging or archive left
    report = data.verify("cifar10", root)
    assert report.ok and len(report.files) == 7, str(report)
    x, y = data.load("cifar10", "train", root)
    assert x.shape == (100, 32, 32, 3) and x.dtype == np.uint8 and y.max() == 9
    assert (dest / "MANIFEST.json").is_file()


def test_fetch_of_good_files_downloads_nothing(server, tmp_path, monkeypatch, capsys):
    server.files.update(_mnist_blobs())
    server.files[data.CIFAR10_ARCHIVE] = _tar_gz(_cifar_blobs())
    root = tmp_path / "root"
    for name in ("mnist", "cifar10"):
        data.fetch(name, root, base_urls=[server.url], md5=server.md5(), progress=False)
    server.hits.clear()
    for name in ("mnist", "cifar10"):
        actions = {}
        data.fetch(name, root, base_urls=[server.url], md5=server.md5(), progress=False,
                   actions=actions)
        assert actions and set(actions.values()) == {"verified"}
    assert server.hits == []
    # the command line says so, with the mirror and checksums from the environment
    monkeypatch.setenv("LANTK_DATA_MIRROR", server.url)
    monkeypatch.setenv("LANTK_DATA_MD5", json.dumps(server.md5()))
    rc, out, err = _cli(capsys, "data", "fetch", "mnist", "--root", str(root), "--quiet")
    assert rc == 0, err
    assert "4 files verified" in out and "nothing downloaded" in out
    assert server.hits == []


def test_interrupted_download_installs_nothing_and_a_retry_succeeds(server, tmp_path):
    server.files.update(_mnist_blobs())
    name = "t10k-images-idx3-ubyte.gz"
    server.truncate.add(name)
    root = tmp_path / "root"
    with pytest.raises(data.FetchError, match=f"download of {name} .* was interrupted") as e:
        data.fetch("mnist", root, base_urls=[server.url], files=[name], md5=server.md5(),
                   progress=False)
    assert e.value.network
    assert _installed(root / "mnist") == []
    server.truncate.clear()
    data.fetch("mnist", root, base_urls=[server.url], files=[name], md5=server.md5(), progress=False)
    assert (root / "mnist" / name).read_bytes() == server.files[name]


def test_interrupted_cifar_archive_installs_nothing(server, tmp_path):
    server.files[data.CIFAR10_ARCHIVE] = _tar_gz(_cifar_blobs())
    server.truncate.add(data.CIFAR10_ARCHIVE)
    root = tmp_path / "root"
    with pytest.raises(data.FetchError, match="interrupted"):
        data.fetch("cifar10", root, base_urls=[server.url], md5=server.md5(), progress=False)
    assert _installed(root) == []
    server.truncate.clear()
    data.fetch("cifar10", root, base_urls=[server.url], md5=server.md5(), progress=False)
    assert data.verify("cifar10", root).ok


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_checksum_mismatch_is_refused(server, tmp_path, dataset):
    server.files.update(_mnist_blobs())
    server.files[data.CIFAR10_ARCHIVE] = _tar_gz(_cifar_blobs())
    wrong = {k: "0" * 32 for k in server.files}
    root = tmp_path / "root"
    with pytest.raises(data.FetchError, match="checksum mismatch") as e:
        data.fetch(dataset, root, base_urls=[server.url], md5=wrong, progress=False)
    assert not e.value.network
    assert [p for p in root.rglob("*") if p.is_file()] == []


# ----------------------------------------------------------------------------- the book's fetch
def test_ensure_book_data_fetches_what_is_missing(server, tmp_path):
    server.files.update(_mnist_blobs())
    server.files[data.CIFAR10_ARCHIVE] = _tar_gz(_cifar_blobs())
    root = tmp_path / "root"
    out = io.StringIO()
    got = data.ensure_book_data(root=root, base_urls=[server.url], md5=server.md5(),
                                progress=False, stream=out)
    assert got == {"mnist": True, "cifar10": True} and out.getvalue() == ""
    assert data.verify(root=root).ok
    server.hits.clear()
    assert data.ensure_book_data(root=root, base_urls=[server.url], stream=out) == got
    assert server.hits == [] and out.getvalue() == ""


def test_ensure_book_data_offline(server, tmp_path, monkeypatch):
    server.files.update(_mnist_blobs())
    monkeypatch.setenv("LANTK_OFFLINE", "1")
    out = io.StringIO()
    got = data.ensure_book_data(root=tmp_path, base_urls=[server.url], md5=server.md5(), stream=out)
    assert got == {"mnist": False, "cifar10": False}
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "LANTK_OFFLINE=1" in lines[0] and "embedded digits" in lines[0]
    assert server.hits == []


def test_ensure_book_data_unreachable_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("LANTK_DATA_MIRROR", _closed_port_url())
    out = io.StringIO()
    t0 = time.monotonic()
    got = data.ensure_book_data(root=tmp_path / "root", stream=out, progress=False)
    assert time.monotonic() - t0 < 5
    assert got == {"mnist": False, "cifar10": False}
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "could not fetch mnist, cifar10" in lines[0] and "embedded digits" in lines[0]
    assert [p for p in (tmp_path / "root").rglob("*") if p.is_file()] == []


# ----------------------------------------------------------------------------- verify
def test_verify_names_a_flipped_byte_and_a_truncated_file(server, tmp_path, capsys):
    server.files.update(_mnist_blobs())
    root = tmp_path / "root"
    data.fetch("mnist", root, base_urls=[server.url], md5=server.md5(), progress=False)
    flipped = root / "mnist" / "train-labels-idx1-ubyte.gz"
    blob = bytearray(flipped.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    flipped.write_bytes(bytes(blob))
    cut = root / "mnist" / "t10k-images-idx3-ubyte.gz"
    cut.write_bytes(cut.read_bytes()[:-10])
    report = data.verify("mnist", root)
    assert not report.ok
    assert sorted(c.path.name for c in report.failed) == sorted([flipped.name, cut.name])
    text = str(report)
    assert f"mnist/{flipped.name}" in text and f"mnist/{cut.name}" in text
    assert "lantk data fetch mnist --force" in text
    rc, out, _ = _cli(capsys, "data", "verify", "mnist", "--root", str(root))
    assert rc == 1 and flipped.name in out and "FAILED" in out


def test_verify_without_checksums_and_missing_files(tmp_path):
    _write_folder(tmp_path / data.CIFAR10_DIR, {"data_batch_1": _cifar_batch(), "notes.txt": b"x"})
    report = data.verify("cifar10", tmp_path)
    status = {c.path.name: c.status for c in report.files}
    assert status["notes.txt"] == "unchecked"          # visible, not a failure
    assert status["data_batch_1"] == "failed"          # not the official file, no manifest
    assert status["test_batch"] == "missing"
    assert "no checksum recorded" in str(report)
    empty = data.verify(root=tmp_path / "nothing")
    assert empty.ok and empty.files == [] and "nothing to verify" in str(empty)


def test_fetch_refuses_bad_existing_files_unless_forced(server, tmp_path, monkeypatch, capsys):
    server.files.update(_mnist_blobs())
    root = tmp_path / "root"
    data.fetch("mnist", root, base_urls=[server.url], md5=server.md5(), progress=False)
    bad = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(b"junk")
    server.hits.clear()
    with pytest.raises(data.DataFileError, match="lantk data fetch mnist --force") as e:
        data.fetch("mnist", root, base_urls=[server.url], md5=server.md5(), progress=False)
    assert str(bad) in str(e.value) and server.hits == [] and bad.read_bytes() == b"junk"
    monkeypatch.setenv("LANTK_DATA_MIRROR", server.url)
    rc, _, err = _cli(capsys, "data", "fetch", "mnist", "--root", str(root), "--quiet")
    assert rc == 2 and "--force" in err and str(bad) in err
    actions = {}
    data.fetch("mnist", root, base_urls=[server.url], md5=server.md5(), progress=False,
               force=True, actions=actions)
    assert actions[bad.name] == "replaced" and server.hits == [bad.name]
    assert data.verify("mnist", root).ok


# ----------------------------------------------------------------------------- corrupt files
def _gz_variants(blobs):
    good = blobs["t10k-images-idx3-ubyte.gz"]
    raw = gzip.decompress(good)
    crc = bytearray(good)
    crc[-6] ^= 0xFF  # the CRC32 in the gzip trailer
    count = bytearray(raw)
    count[7] += 1    # the header announces one image more than the file holds
    return {
        "not gzip": b"this is not a gzip file" * 4,
        "truncated gzip": good[: len(good) // 2],
        "crc": bytes(crc),
        "header count": gzip.compress(bytes(count)),
        "extra payload": gzip.compress(raw + bytes(784)),
        "wrong magic": gzip.compress(b"\x00\x00\x09\x03" + raw[4:]),
    }


@pytest.mark.parametrize("variant", ["not gzip", "truncated gzip", "crc", "header count",
                                     "extra payload", "wrong magic"])
def test_corrupt_mnist_file_gives_a_clear_error(tmp_path, variant):
    blobs = _mnist_blobs()
    folder = _write_folder(tmp_path / "mnist", blobs)
    target = folder / "t10k-images-idx3-ubyte.gz"
    _rewrite(target, _gz_variants(blobs)[variant])
    with pytest.raises(data.DataFileError) as e:
        data.load("mnist", "test", tmp_path)
    msg = str(e.value)
    assert str(target) in msg and "lantk data fetch mnist --force" in msg
    # no raw gzip / zlib / EOFError traceback chained to it
    assert e.value.__cause__ is None and (e.value.__context__ is None or e.value.__suppress_context__)


def test_mnist_label_count_and_range(tmp_path):
    blobs = _mnist_blobs()
    folder = _write_folder(tmp_path / "mnist", blobs)
    _rewrite(folder / "t10k-labels-idx1-ubyte.gz", gzip.compress(_idx(np.zeros(19))))
    with pytest.raises(data.DataFileError, match="20 images but .* 19 labels"):
        data.load("mnist", "test", tmp_path)
    _rewrite(folder / "t10k-labels-idx1-ubyte.gz", gzip.compress(_idx(np.full(20, 11))))
    with pytest.raises(data.DataFileError, match="label 11, outside 0..9"):
        data.load("mnist", "test", tmp_path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


@pytest.mark.parametrize("variant, match", [
    ("truncated", "cannot be unpickled"),
    ("garbage", "cannot be unpickled"),
    ("empty", "cannot be unpickled"),
    ("short data", "holds 60000 pixel values for 20 labels"),
    ("label range", "outside 0..9"),
    ("label count", "pixel values for 19 labels"),
    ("not a dict", "not a CIFAR-10 batch"),
    ("no labels", "no 'data' and 'labels'"),
    ("foreign global", "refusing the global"),
])
def test_corrupt_cifar_batch_gives_a_clear_error(tmp_path, variant, match):
    good = _cifar_batch()
    rng = np.random.default_rng(1)
    blob = {
        "truncated": good[: len(good) // 2],
        "garbage": bytes(rng.integers(0, 256, 5000, dtype=np.uint8)),
        "empty": b"",
        "short data": _cifar_batch(data=rng.integers(0, 256, (20, 3000), dtype=np.uint8)),
        "label range": _cifar_batch(labels=[10] * 20),
        "label count": _cifar_batch(labels=[1] * 19),
        "not a dict": pickle.dumps([1, 2, 3], protocol=2),
        "no labels": pickle.dumps({b"data": b""}, protocol=2),
        "foreign global": pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=2),
    }[variant]
    folder = _write_folder(tmp_path / data.CIFAR10_DIR, _cifar_blobs())
    target = folder / "data_batch_2"
    _rewrite(target, blob)
    with pytest.raises(data.DataFileError, match=match) as e:
        data.load("cifar10", "train", tmp_path)
    assert str(target) in str(e.value) and "lantk data fetch cifar10 --force" in str(e.value)


def test_info_reports_a_corrupt_file_without_a_traceback(tmp_path, capsys):
    _write_folder(tmp_path / data.CIFAR10_DIR, _cifar_blobs())
    _write_folder(tmp_path / "mnist", _mnist_blobs())
    bad = tmp_path / data.CIFAR10_DIR / "test_batch"
    _rewrite(bad, bad.read_bytes()[:1000])
    rc, out, _ = _cli(capsys, "data", "info", "--root", str(tmp_path))
    assert rc == 1
    assert "cifar10  test   ERROR:" in out and str(bad) in out and "--force" in out
    assert "mnist    test      20 images" in out


def test_load_warns_when_a_well_formed_file_differs_from_the_manifest(server, tmp_path):
    server.files[data.CIFAR10_ARCHIVE] = _tar_gz(_cifar_blobs())
    root = tmp_path / "root"
    data.fetch("cifar10", root, base_urls=[server.url], md5=server.md5(), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", data.DataChecksumWarning)
        data.load("cifar10", "test", root)  # matches its manifest: no warning
    target = root / data.CIFAR10_DIR / "data_batch_4"
    _rewrite(target, _cifar_batch(seed=123))  # valid, but not what was installed
    with pytest.warns(data.DataChecksumWarning, match="data_batch_4 does not match the sha256") as w:
        x, _ = data.load("cifar10", "train", root)
    assert "lantk data fetch cifar10 --force" in str(w[0].message) and len(x) == 100


# ----------------------------------------------------------------------------- train/test overlap
@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_training_split_sharing_test_images_is_refused(tmp_path, dataset):
    if dataset == "mnist":
        _write_folder(tmp_path / "mnist", _mnist_blobs(shared=3))
    else:
        _write_folder(tmp_path / data.CIFAR10_DIR, _cifar_blobs(shared=3))
    with pytest.raises(data.DataOverlapError, match=f"^{dataset} in .*: 3 test image"):
        data.load(dataset, "train", tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(data.DataOverlapError):  # cached: the test split is not read again
        data.load(dataset, "train", tmp_path)
    assert time.perf_counter() - t0 < 0.5
    x, _ = data.load(dataset, "test", tmp_path)  # the test split alone is fine
    assert len(x) == 20
    assert "3 test image" in data.info(tmp_path)[dataset]["train"]["error"]


def test_shared_images_counts_exact_duplicates_only():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(50, 5, 5, 3), dtype=np.uint8)  # 75 bytes: not a multiple of 8
    b = rng.integers(0, 256, size=(30, 5, 5, 3), dtype=np.uint8)
    assert data.shared_images(a, b) == 0
    b[[2, 7, 9]] = a[[0, 0, 49]]
    assert data.shared_images(a, b) == 3
    b[11] = a[3]
    b[11, 0, 0, 0] ^= 1  # one value off: not a duplicate
    assert data.shared_images(a, b) == 3


# ----------------------------------------------------------------------------- the shared real files
@pytest.fixture(scope="module")
def real_archives(tmp_path_factory, data_dir):
    out = {f: (data_dir / "mnist" / f).read_bytes() for f in MNIST_NAMES}
    batches = {f: (data_dir / data.CIFAR10_DIR / f).read_bytes()
               for f in [*data.CIFAR10_FILES["train"], *data.CIFAR10_FILES["test"], "batches.meta"]}
    out[data.CIFAR10_ARCHIVE] = _tar_gz(batches)
    return out


def test_real_files_over_http_end_to_end(server, tmp_path, real_archives):
    server.files.update(real_archives)
    # the t10k files are the official ones: no override needed for them
    assert all(_md5(server.files[f]) == data.MNIST_MD5[f] for f in data.MNIST_FILES["test"])
    root = tmp_path / "root"
    out = io.StringIO()
    got = data.ensure_book_data(root=root, base_urls=[server.url], md5=server.md5(),
                                progress=False, stream=out)
    assert got == {"mnist": True, "cifar10": True} and out.getvalue() == ""
    report = data.verify(root=root)
    assert report.ok and len(report.files) == 11, str(report)
    assert "the official file (md5 matches)" in str(report)  # t10k, batches.meta
    counts = data.info(root)
    assert counts["mnist"]["train"]["images"] == 17435 and counts["mnist"]["test"]["images"] == 10000
    assert counts["cifar10"]["train"]["images"] == 5170 and counts["cifar10"]["test"]["images"] == 1017


def test_shared_data_has_no_train_test_overlap(data_dir):
    for name in data.DATASETS:
        x_tr, _ = data.load(name, "train", data_dir)   # would raise DataOverlapError
        x_te, _ = data.load(name, "test", data_dir)
        assert data.shared_images(x_tr, x_te) == 0, name


def test_shared_data_verifies(data_dir, capsys):
    report = data.verify(root=data_dir)
    assert report.ok and len(report.files) == 11 and not report.unchecked, str(report)
    rc, out, _ = _cli(capsys, "data", "verify", "--root", str(data_dir))
    assert rc == 0 and "11 files: 11 ok" in out


def test_a_download_is_announced_with_its_size(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")  # hides the bar, not the announcement
    server.files.update(_mnist_blobs())
    name = "t10k-images-idx3-ubyte.gz"
    data.fetch("mnist", tmp_path, base_urls=[server.url], files=[name], md5=server.md5(),
               progress=True)
    err = capsys.readouterr().err
    size = f"{len(server.files[name]) / 1000:.1f} kB"
    assert f"lantk: downloading {name} ({size}) from {server.url}{name}" in err


# ----------------------------------------------------------------------------- the book fetches
def test_the_book_fetches_what_its_chapters_need_then_runs_on_it(server, tmp_path, monkeypatch):
    """`lantk book` / `lantk run` call cli.fetch_book_data first: with a mirror it installs
    the datasets the profile's chapters ask for, and the chapters' configurations then pick
    the real data (no fallback notice); offline they fall back with the notice."""
    import json

    from lantk import cli, profiles

    server.files.update(_mnist_blobs(n_train=60, n_test=40))
    root = tmp_path / "root"
    monkeypatch.setenv("LANTK_DATA_DIR", str(root))
    monkeypatch.setenv("LANTK_DATA_MIRROR", server.url)
    monkeypatch.setenv("LANTK_DATA_MD5", json.dumps(server.md5()))
    before = profiles.NTK.resolve("default")
    assert before.dataset == "digits" and before.notice()
    assert cli.fetch_book_data("default", ["ntk"]) == {"mnist": True}
    after = profiles.NTK.resolve("default")
    assert after.dataset == "mnist" and after.notice() is None
    assert data.verify("mnist", root).ok


def test_lantk_book_offline_skips_the_download(server, tmp_path, monkeypatch, capsys):
    from lantk import cli
    from lantk.book import html

    server.files.update(_mnist_blobs())
    monkeypatch.setenv("LANTK_DATA_DIR", str(tmp_path / "root"))
    monkeypatch.setenv("LANTK_DATA_MIRROR", server.url)
    seen = {}
    monkeypatch.setattr(html, "build_book", lambda profile, **kw: seen.update(profile=profile)
                        or {"runs": [], "index": None})
    monkeypatch.setattr(cli, "_missing_book_extra", lambda: None)
    rc, out, err = _cli(capsys, "book", "--offline", "--no-build")
    assert rc == 0 and seen == {"profile": "default"} and server.hits == []
    notice = [line for line in err.splitlines() if "embedded digits" in line]
    assert len(notice) == 1 and "LANTK_OFFLINE=1" in notice[0]
