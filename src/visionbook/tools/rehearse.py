"""Rehearse full mode without a network: every chapter's full-mode branches, on stand-in files.

``python -m visionbook.tools.rehearse`` (``.ci/run`` runs it after the tests):

1. :func:`write_standins` writes a stand-in for every file that full mode downloads, in the
   real file's on-disk format: MNIST's and Fashion-MNIST's four gzipped idx files, CIFAR-10's
   python batches in its ``.tar.gz``, and torchvision's weights files of ResNet-18 and of
   Faster R-CNN (MobileNet-V3, 320 pixels), state dicts of the same architectures saved with
   ``torch.save``. A manifest maps each real URL to its stand-in and the stand-in's checksums.
2. Every chapter that has a full-mode branch (its code calls ``config.full()`` or
   ``config.quick_or_full``) is executed in a fresh kernel, two at a time, with
   ``VISIONBOOK_FULL=1``, ``VISIONBOOK_REHEARSAL`` naming the manifest, the network switch on
   (``VISIONBOOK_OFFLINE=0``) and an empty ``VISIONBOOK_HOME``: every data set and every weights
   file comes through :func:`visionbook.data.download` from its stand-in (``file://``), checked
   against the stand-in's checksums and written atomically into the cache, and every full-mode
   branch runs, the ImageNet and COCO sections included. A URL without a stand-in is refused,
   so nothing reaches the network.
3. The run fails if a cell raises or if a chapter still prints that a section was "not
   executed". Lengths (epochs, steps, seeds) are the quick run's (:func:`visionbook.config.
   quick_or_full`), and a missed threshold check is printed, not raised
   (:func:`visionbook.checks.check_at_least`): the stand-ins' numbers mean nothing. What is
   rehearsed is that full mode's code, loaders and file formats work; what full mode measures is
   not.

The MNIST stand-in holds exactly the bundled sample's 4,000/1,000 split, so the chapters that
train on digits compute what the quick build computes. The other stand-ins' contents are made up
(Fashion-MNIST: the same digits; CIFAR-10: 32x32 crops of the bundled photographs with labels
0-9 in turn; weights: random, seeded). Introduced in CONTRIBUTING.md.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch

from visionbook._validate import _expect_path, _file_digest
from visionbook.checks import REHEARSAL_NOTE

NOT_EXECUTED = re.compile(r"not executed", re.IGNORECASE)


def _digests(path: Path) -> dict[str, str]:
    return {"md5": _file_digest(path, "md5"), "sha256": _file_digest(path, "sha256")}


def _idx_bytes(array: np.ndarray) -> bytes:
    """An idx file (LeCun's format): magic 0x08 (unsigned bytes) and the rank, big-endian sizes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _write_idx_set(folder: Path, images: list[np.ndarray], labels: list[np.ndarray]) -> list[Path]:
    """The four gzipped idx files of an MNIST-style set (train, then test), under their real
    names."""
    names = [
        ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    ]
    paths = []
    for (image_name, label_name), X, y in zip(names, images, labels):
        for name, array in ((image_name, X), (label_name, y)):
            path = folder / name
            path.write_bytes(gzip.compress(_idx_bytes(array), mtime=0))
            paths.append(path)
    return paths


def _cifar_archive(folder: Path, seed: int = 0) -> tuple[Path, dict[str, str]]:
    """CIFAR-10's python version: five training batches and a test batch (pickled dicts with
    'data' uint8 (N, 3072) in R, G, B planes and 'labels'), 'batches.meta', in the tar.gz."""
    from torchvision.datasets import CIFAR10

    from visionbook.data import CIFAR10_CLASSES, sample_image

    photos = [sample_image(n) for n in ("astronaut", "cat", "coffee", "motorcycle", "rocket")]
    rng = np.random.default_rng(seed)

    def crops(n: int) -> np.ndarray:
        out = np.empty((n, 3, 32, 32), dtype=np.uint8)
        for i in range(n):
            photo = photos[rng.integers(len(photos))]
            top, left = (int(rng.integers(s - 32)) for s in photo.shape[1:])
            out[i] = (photo[:, top : top + 32, left : left + 32] * 255).round().byte().numpy()
        return out.reshape(n, 3072)

    batches = {name: 100 for name, _ in CIFAR10.train_list} | {"test_batch": 200}
    members: dict[str, bytes] = {}
    for k, (name, n) in enumerate(batches.items()):
        entry = {
            "batch_label": f"stand-in batch {k + 1}",
            "labels": [i % 10 for i in range(n)],
            "data": crops(n),
            "filenames": [f"standin_{k}_{i}.png" for i in range(n)],
        }
        members[name] = pickle.dumps(entry, protocol=2)
    meta = {"num_cases_per_batch": 100, "label_names": list(CIFAR10_CLASSES), "num_vis": 3072}
    members[CIFAR10.meta["filename"]] = pickle.dumps(meta, protocol=2)
    archive = folder / CIFAR10.filename
    with tarfile.open(archive, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"{CIFAR10.base_folder}/{name}")
            info.size, info.mtime = len(payload), 0
            tar.addfile(info, io.BytesIO(payload))
    return archive, {name: hashlib.md5(p).hexdigest() for name, p in members.items()}


def _weights_files(folder: Path) -> dict[str, Path]:
    """Random-weight state dicts of ResNet-18 and of the COCO Faster R-CNN, named as
    torchvision names them."""
    from torchvision.models import ResNet18_Weights, resnet18
    from torchvision.models.detection import FasterRCNN_MobileNet_V3_Large_320_FPN_Weights

    from visionbook.detect import _coco_architecture

    made = {}
    for weights, build in (
        (ResNet18_Weights.DEFAULT, lambda: resnet18(weights=None)),
        (FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.DEFAULT, _coco_architecture),
    ):
        torch.manual_seed(0)
        path = folder / weights.url.rsplit("/", 1)[-1]
        torch.save(build().state_dict(), path)
        made[weights.url] = path
    return made


def write_standins(folder: str | os.PathLike) -> Path:
    """Write a stand-in for every file full mode downloads, and their manifest.

    Args:
        folder (str | PathLike): an existing, empty folder.

    Returns:
        pathlib.Path: the manifest, ``folder/manifest.json``, for ``VISIONBOOK_REHEARSAL``:
        ``{"files": {url: {"path", "md5", "sha256"[, "members"]}}}``.

    >>> write_standins(tempfile.mkdtemp()).name  # doctest: +SKIP
    'manifest.json'

    Introduced in CONTRIBUTING.md.
    """
    from torchvision.datasets import CIFAR10, MNIST, FashionMNIST

    from visionbook.data import load_mnist

    folder = _expect_path(folder, "folder")
    if not folder.is_dir() or any(folder.iterdir()):
        raise ValueError(f"expected an existing, empty folder for the stand-ins, got {folder}")
    files: dict[str, dict] = {}

    def add(url: str, path: Path, **extra: object) -> None:
        files[url] = {"path": str(path.resolve()), **_digests(path), **extra}

    mnist = load_mnist(full=False)  # the bundled sample's split, as uint8 again
    as_bytes = [
        (mnist.X_train * 255).round().byte()[:, 0].numpy(),
        (mnist.X_test * 255).round().byte()[:, 0].numpy(),
    ]
    labels = [mnist.y_train.byte().numpy(), mnist.y_test.byte().numpy()]
    for cls, images, targets in (
        (MNIST, as_bytes, labels),
        (FashionMNIST, [as_bytes[0][:600], as_bytes[1][:100]], [labels[0][:600], labels[1][:100]]),
    ):
        sub = folder / cls.__name__
        sub.mkdir()
        for path in _write_idx_set(sub, images, targets):
            for mirror in cls.mirrors:
                add(mirror + path.name, path)
    archive, members = _cifar_archive(folder)
    add(CIFAR10.url, archive, members=members)
    for url, path in _weights_files(folder).items():
        add(url, path)
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"files": files}, indent=1) + "\n")
    return manifest


def full_mode_chapters(notebooks: list[Path]) -> list[Path]:
    """The chapters whose code has a full-mode branch (calls config.full or quick_or_full).

    Introduced in CONTRIBUTING.md.
    """
    import nbformat

    if not isinstance(notebooks, list | tuple):
        raise TypeError(f"expected notebooks as a list of paths, got {type(notebooks).__name__}")
    found = []
    for nb in [_expect_path(nb, f"notebooks[{i}]") for i, nb in enumerate(notebooks)]:
        cells = nbformat.read(nb, as_version=4).cells
        code = "\n".join(c.source for c in cells if c.cell_type == "code")
        if "config.full()" in code or "config.quick_or_full(" in code:
            found.append(nb)
    return found


def _rehearse_one(notebook: Path, env: dict, timeout: int, out: Path) -> dict:
    """Execute one chapter in full mode on the stand-ins; what it printed that matters."""
    import nbformat

    saved = out / notebook.name
    command = [
        sys.executable,
        "-m",
        "visionbook.tools.runtimes",
        "--one",
        str(notebook),
        "--workdir",
        str(notebook.parent),
        "--timeout",
        str(timeout),
        "--save",
        str(saved),
    ]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    result = {"chapter": notebook.stem, "seconds": round(time.perf_counter() - start, 1)}
    if done.returncode != 0:
        return {**result, "error": done.stderr[-3000:]}
    texts = [
        out_.get("text", "")
        for cell in nbformat.read(saved, as_version=4).cells
        if cell.cell_type == "code"
        for out_ in cell.get("outputs", [])
    ]
    lines = [line for text in texts for line in text.splitlines()]
    return {
        **result,
        "not_executed": [line for line in lines if NOT_EXECUTED.search(line)],
        "reported": [line for line in lines if REHEARSAL_NOTE in line],
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: write the stand-ins, execute the full-mode chapters on them, report."""
    from visionbook.tools.bookbuild import ROOT, _longest_first, chapters

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter's")
    parser.add_argument("--jobs", type=int, default=2, help="chapters at once (default 2)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"expected --jobs >= 1, got {args.jobs}")
    todo = _longest_first(full_mode_chapters(args.notebooks or chapters(ROOT)))
    work = Path(tempfile.mkdtemp(prefix="visionbook-rehearsal-"))
    try:
        return _rehearse(todo, work, args.jobs, args.timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the stand-ins and the cache: about 250 MB


def _rehearse(todo: list[Path], work: Path, jobs: int, timeout: int) -> int:
    (work / "standins").mkdir()
    (work / "home").mkdir()
    start = time.perf_counter()
    manifest = write_standins(work / "standins")
    print(f"[rehearse] stand-ins written in {time.perf_counter() - start:.0f} s", flush=True)
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    env = {
        **os.environ,
        "VISIONBOOK_FULL": "1",
        "VISIONBOOK_OFFLINE": "0",
        "VISIONBOOK_REHEARSAL": str(manifest),
        "VISIONBOOK_HOME": str(work / "home"),
        "VISIONBOOK_PROGRESS": "0",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }
    failed = 0
    with ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(_rehearse_one, nb, env, timeout, work) for nb in todo]
        for future in as_completed(futures):
            r = future.result()
            problems = ([r["error"]] if "error" in r else []) + [
                f"still says: {line}" for line in r.get("not_executed", [])
            ]
            failed += bool(problems)
            status = "FAILED" if problems else "ok"
            print(f"[rehearse] {r['chapter']}: {status} in {r['seconds']:.0f} s", flush=True)
            for line in problems + [f"reported: {line}" for line in r.get("reported", [])]:
                print(f"    {line}", flush=True)
    print(
        f"[rehearse] {len(todo)} chapters in full mode on stand-ins, {failed} failed, "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
