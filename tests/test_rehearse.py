"""The full-mode rehearsal's stand-ins: real on-disk formats, fetched through the download path.

Each loader of full mode (MNIST's and Fashion-MNIST's idx files, CIFAR-10's python batches,
torchvision's weights files) reads its stand-in after :func:`visionbook.data.download` fetched it
from the manifest's ``file://`` source with the network blocked, checked its checksums and cached
it; a corrupt stand-in or a URL without one is refused. The chapters themselves are rehearsed by
``python -m visionbook.tools.rehearse`` in ``.ci/run``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from no_network import blocked
from torchvision.models import ResNet18_Weights
from torchvision.models.detection import FasterRCNN_MobileNet_V3_Large_320_FPN_Weights

from visionbook import checks, config, data, detect, transfer
from visionbook.tools import rehearse
from visionbook.tools.bookbuild import ROOT, chapters


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("standins")
    return rehearse.write_standins(folder)


@pytest.fixture
def rehearsal(standins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A rehearsal's environment: full mode, network switch on, the network itself blocked."""
    monkeypatch.setenv("VISIONBOOK_FULL", "1")
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "0")
    monkeypatch.setenv("VISIONBOOK_REHEARSAL", str(standins))
    monkeypatch.setenv("VISIONBOOK_HOME", str(tmp_path / "home"))
    with blocked() as attempts:
        yield tmp_path / "home"
    assert attempts == []


def test_mnist_standin_is_the_bundled_sample_in_idx_files(rehearsal: Path) -> None:
    full, sample = data.load_mnist(), data.load_mnist(full=False)
    for got, expected in zip(full[:4], sample[:4]):
        assert torch.equal(got, expected)
    raw = rehearsal / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == [
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    ]  # fmt: skip


def test_fashion_mnist_and_cifar10_load_from_their_formats(rehearsal: Path) -> None:
    fashion = data.load_fashion_mnist()
    assert fashion.X_train.shape == (600, 1, 28, 28) and fashion.X_test.shape == (100, 1, 28, 28)
    assert fashion.classes == data.FASHION_CLASSES
    cifar = data.load_cifar10()
    assert cifar.X_train.shape == (500, 3, 32, 32) and cifar.X_test.shape == (200, 3, 32, 32)
    assert cifar.y_train.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert 0 <= cifar.X_train.min() and cifar.X_train.max() <= 1 and cifar.X_train.std() > 0.05
    assert not list((rehearsal).glob("*.tar.gz")), "the archive is removed once extracted"


def test_weights_standins_load_into_the_books_networks(rehearsal: Path) -> None:
    assert transfer.imagenet_weights_available()
    model, _ = transfer.resnet18_transfer(10)
    assert model.fc.out_features == 10
    detector = detect.faster_rcnn(pretrained=True)
    assert detector.roi_heads.box_predictor.cls_score.out_features == 91
    cached = data.pretrained_path(ResNet18_Weights.DEFAULT)
    assert cached.parent == rehearsal / "weights" and cached.is_file()
    # a second load reads the cache, not the stand-in
    shutil.copy(cached, cached.with_suffix(".bak"))
    assert set(data.pretrained(ResNet18_Weights.DEFAULT)) == set(model.state_dict())


def test_a_corrupt_standin_is_refused_and_nothing_is_cached(
    standins: Path, rehearsal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = json.loads(standins.read_text())
    url = FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.DEFAULT.url
    bad = tmp_path / "bad.pth"
    bad.write_bytes(Path(manifest["files"][url]["path"]).read_bytes()[:-10])
    manifest["files"][url]["path"] = str(bad)
    altered = tmp_path / "manifest.json"
    altered.write_text(json.dumps(manifest))
    monkeypatch.setenv("VISIONBOOK_REHEARSAL", str(altered))
    with pytest.raises(data.DataUnavailableError, match="checksum mismatch"):
        detect.faster_rcnn(pretrained=True)
    assert not data.pretrained_path(FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.DEFAULT).exists()


def test_a_url_without_a_standin_is_refused(rehearsal: Path) -> None:
    with pytest.raises(data.DataUnavailableError, match="no stand-in for https://example.org/x"):
        data.download("https://example.org/x", rehearsal / "x")
    assert not (rehearsal / "x").exists()


def test_a_rehearsal_takes_quick_lengths_and_reports_missed_thresholds(
    rehearsal: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    assert config.quick_or_full(8, 12) == 8
    checks.check_at_least(0.2, 0.5, "stand-in accuracy")
    assert capsys.readouterr().out == (
        f"✗ stand-in accuracy: 0.2 is below the required 0.5 {checks.REHEARSAL_NOTE}\n"
    )
    with pytest.raises(AssertionError):  # exact checks still raise
        checks.check_equal(1, 2, "one")
    monkeypatch.delenv("VISIONBOOK_REHEARSAL")
    assert config.quick_or_full(8, 12) == 12
    with pytest.raises(AssertionError, match="above the allowed"):
        checks.check_at_most(0.9, 0.5, "stand-in error")


def test_bad_manifests_and_folders_are_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VISIONBOOK_REHEARSAL", str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="readable stand-in manifest"):
        config.rehearsal()
    (tmp_path / "m.json").write_text('{"files": {"https://x": "not a dict"}}')
    monkeypatch.setenv("VISIONBOOK_REHEARSAL", str(tmp_path / "m.json"))
    with pytest.raises(ValueError, match="expected .* to hold"):
        config.rehearsal()
    with pytest.raises(ValueError, match="empty folder"):
        rehearse.write_standins(tmp_path)


def test_every_chapter_with_a_full_mode_branch_is_rehearsed() -> None:
    found = {nb.stem for nb in rehearse.full_mode_chapters(chapters(ROOT))}
    expected = {"attention", "cnn", "detection", "diffusion", "gans", "interpretability",
                "self_supervised", "transfer"}  # fmt: skip
    assert found == expected
    for nb in chapters(ROOT):  # a chapter reading the switch itself would be missed
        code = "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]
                       if c["cell_type"] == "code")  # fmt: skip
        assert not re.search(r"environ\S*\(?[\"']VISIONBOOK_FULL", code), nb.name


def test_cifar_batches_are_checked_at_every_load(
    rehearsal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data.load_cifar10()
    batch = rehearsal / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-1])  # damaged after extraction
    with pytest.raises(data.DataUnavailableError, match="data_batch_3 does not match its MD5"):
        data.load_cifar10()
    # outside a rehearsal the real files' MD5s apply: a stand-in is refused
    monkeypatch.delenv("VISIONBOOK_REHEARSAL")
    with pytest.raises(data.DataUnavailableError, match="data_batch_1 does not match its MD5"):
        data.load_cifar10()
