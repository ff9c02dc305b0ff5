"""visionbook.plot: image grids, training curves and confusion matrices (matplotlib's Agg
backend)."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from visionbook.plot import (
    confusion_matrix,
    plot_confusion_matrix,
    plot_history,
    show_images,
    to_hwc,
)


def _shown(fig):
    """The axes of a figure that show an image, in order."""
    return [ax for ax in fig.axes if ax.images]


def test_to_hwc_layouts():
    x = torch.arange(60, dtype=torch.float32).reshape(3, 4, 5)
    assert np.array_equal(to_hwc(x), x.permute(1, 2, 0).numpy())
    assert to_hwc(torch.zeros(1, 4, 5)).shape == (4, 5)
    assert to_hwc(torch.zeros(4, 5)).shape == (4, 5)


@pytest.mark.parametrize(
    ("image", "shown"),
    [
        (torch.zeros(2, 4, 5), r"\(2, 4, 5\)"),
        (torch.zeros(1, 1, 4, 5), r"\(1, 1, 4, 5\)"),
        (np.zeros((4, 5)), "ndarray"),
    ],
)
def test_to_hwc_rejects_other_shapes(image, shown):
    with pytest.raises(
        ValueError,
        match=(
            r"expected an image tensor of shape \(C, H, W\) with C in \(1, 3\), or \(H, "
            rf"W\); got {shown}"
        ),
    ):
        to_hwc(image)


def test_show_images_grid_with_labels():
    images = torch.rand(10, 3, 8, 8)
    fig = show_images(images, [f"img {i}" for i in range(10)], ncols=4, title="ten images")
    assert isinstance(fig, Figure)
    shown = _shown(fig)
    assert len(fig.axes) == 12 and len(shown) == 10  # 3 rows of 4, the last two left empty
    assert [ax.get_title() for ax in shown] == [f"img {i}" for i in range(10)]
    assert np.allclose(shown[3].images[0].get_array(), images[3].permute(1, 2, 0).numpy())
    assert fig._suptitle.get_text() == "ten images"


def test_show_images_accepts_a_list_of_grey_and_colour_images():
    fig = show_images([torch.rand(8, 8), torch.rand(1, 8, 8), torch.rand(3, 8, 8)])
    assert len(_shown(fig)) == 3 and len(fig.axes) == 3
    assert all(ax.get_title() == "" for ax in fig.axes)


def test_show_images_bad_input():
    with pytest.raises(ValueError, match="expected at least one image, got none"):
        show_images([])
    with pytest.raises(ValueError, match="expected one label per image, got 2 labels for 3 images"):
        show_images(torch.rand(3, 1, 4, 4), ["a", "b"])
    with pytest.raises(
        ValueError, match=r"expected a batch of images of shape \(N, C, H, W\), got \(4, 4\)"
    ):
        show_images(torch.rand(4, 4))
    with pytest.raises(ValueError, match="expected a positive integer ncols, got 0"):
        show_images(torch.rand(3, 1, 4, 4), ncols=0)
    with pytest.raises(ValueError, match=r"with C in \(1, 3\), or \(H, W\); got \(2, 4, 4\)"):
        show_images(torch.rand(3, 2, 4, 4))


def test_plot_history_draws_every_curve():
    history = {
        "train_loss": [1.0, 0.6, 0.4],
        "val_loss": [1.1, 0.8, 0.7],
        "train_accuracy": [0.5, 0.7, 0.9],
        "val_accuracy": [0.4, 0.6, 0.7],
    }
    fig = plot_history(history, title="run")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train", "val"]
    assert list(loss_ax.lines[1].get_ydata()) == [1.1, 0.8, 0.7]
    assert list(acc_ax.lines[0].get_xdata()) == [1, 2, 3]
    assert list(acc_ax.lines[0].get_ydata()) == [0.5, 0.7, 0.9]
    assert (loss_ax.get_xlabel(), loss_ax.get_ylabel(), acc_ax.get_ylabel()) == (
        "epoch",
        "loss",
        "accuracy",
    )


def test_plot_history_with_loss_only_has_one_panel():
    fig = plot_history(
        {"train_loss": [3.0, 2.0], "val_loss": [], "train_accuracy": [], "val_accuracy": []}
    )
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1


def test_plot_history_bad_input():
    with pytest.raises(
        ValueError,
        match=(
            "expected a history with a non-empty 'train_loss' list, as fit\\(\\) returns; got keys "
            "\\['loss'\\]"
        ),
    ):
        plot_history({"loss": [1.0]})
    with pytest.raises(TypeError, match="expected a history dict as fit\\(\\) returns, got list"):
        plot_history([1.0, 0.5])


def test_confusion_matrix_by_hand():
    y_true = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2])
    y_pred = torch.tensor([0, 1, 1, 1, 2, 2, 2, 0, 2])
    # row = true class, column = predicted class
    expected = [[1, 1, 0], [0, 2, 1], [1, 0, 3]]
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.dtype == torch.int64 and cm.tolist() == expected
    assert confusion_matrix(y_true.numpy(), y_pred.tolist(), 4).tolist() == [
        row + [0] for row in expected
    ] + [[0, 0, 0, 0]]
    assert confusion_matrix(
        torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long), 2
    ).tolist() == [
        [0, 0],
        [0, 0],
    ]


def test_confusion_matrix_bad_input():
    with pytest.raises(
        ValueError,
        match=r"expected two label vectors of the same shape \(N,\), got \(3,\) and \(2,\)",
    ):
        confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match=r"expected labels in 0..1, got labels from 0 to 2"):
        confusion_matrix(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]), 2)
    with pytest.raises(ValueError, match=r"expected labels in 0..2, got labels from -1 to 1"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([-1, 1]), 3)
    with pytest.raises(
        TypeError,
        match=(
            r"expected integer labels, got torch.float32 and torch.int64 \(take "
            r"logits.argmax\(1\) first\)"
        ),
    ):
        confusion_matrix(torch.tensor([0.2, 0.9]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="expected a positive integer num_classes, got 0"):
        confusion_matrix(torch.tensor([0]), torch.tensor([0]), 0)


def test_plot_confusion_matrix_shows_the_counts():
    fig = plot_confusion_matrix(
        torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), ["cat", "dog"]
    )
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["1", "1", "0", "2"]
    assert ax.get_title() == "accuracy 75.0%"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert (
        plot_confusion_matrix(torch.tensor([0]), torch.tensor([0]), ["a", "b"], title="mine")
        .axes[0]
        .get_title()
        == "mine"
    )


def test_confusion_matrix_names_and_history_values_are_checked():
    with pytest.raises(TypeError, match="expected classes as a list of names, got 'cd'"):
        plot_confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 1]), "cd")
    with pytest.raises(ValueError, match="expected a history with a non-empty 'train_loss' list"):
        plot_history({"train_loss": 1.0})
