"""visionbook.shapes: the synthetic shapes data set and scenes."""

import math
import time

import pytest
import torch
import torch.nn.functional as F

from visionbook.shapes import SHAPES, make_scenes, make_shapes, render_masks, textured_background


def _tight_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Tight boxes (x0, y0, x1, y1), x1 and y1 exclusive, computed one mask at a time."""
    boxes = []
    for mask in masks:
        ys, xs = torch.nonzero(mask, as_tuple=True)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return torch.tensor(boxes, dtype=torch.float32)


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(203, size=32, seed=7)


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(40, size=64, min_objects=2, max_objects=5, seed=3)


# ---------------------------------------------------------------- single-object images


def test_same_seed_same_data_different_seed_different_data():
    a, b, c = make_shapes(50, seed=1), make_shapes(50, seed=1), make_shapes(50, seed=2)
    for x, y in zip(a[:4], b[:4]):
        assert torch.equal(x, y)
    assert not torch.equal(a.images, c.images)
    assert not torch.equal(a.boxes, c.boxes)


def test_shapes_dtypes_and_ranges(shapes):
    assert shapes.images.shape == (203, 3, 32, 32) and shapes.images.dtype == torch.float32
    assert shapes.labels.shape == (203,) and shapes.labels.dtype == torch.int64
    assert shapes.boxes.shape == (203, 4) and shapes.boxes.dtype == torch.float32
    assert shapes.masks.shape == (203, 32, 32) and shapes.masks.dtype == torch.bool
    assert shapes.images.min() >= 0 and shapes.images.max() <= 1
    assert shapes.classes == SHAPES
    assert set(shapes.labels.tolist()) == set(range(len(SHAPES)))


def test_labels_are_balanced(shapes):
    counts = torch.bincount(shapes.labels, minlength=5).tolist()
    assert sorted(counts) == [40, 40, 41, 41, 41]  # 203 = 5 * 40 + 3


def test_labels_index_the_classes_given():
    d = make_shapes(30, classes=("star", "circle"), seed=0)
    assert d.classes == ("star", "circle")
    assert torch.bincount(d.labels).tolist() == [15, 15]
    # label 0 is the star here: it fills less of its box than the circle does (about 0.47
    # against pi / 4)
    stars = d.masks[d.labels == 0].flatten(1).sum(1).float() / (
        d.boxes[d.labels == 0, 2:] - d.boxes[d.labels == 0, :2]
    ).prod(1)
    circles = d.masks[d.labels == 1].flatten(1).sum(1).float() / (
        d.boxes[d.labels == 1, 2:] - d.boxes[d.labels == 1, :2]
    ).prod(1)
    assert stars.mean() < 0.6 < 0.7 < circles.mean()


def test_masks_are_not_empty_and_boxes_are_their_tight_boxes(shapes):
    assert (shapes.masks.flatten(1).sum(1) > 0).all()
    assert torch.equal(shapes.boxes, _tight_boxes(shapes.masks))


def test_boxes_lie_within_the_image(shapes):
    x0, y0, x1, y1 = shapes.boxes.unbind(1)
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 32).all() and (y1 <= 32).all()
    assert (x1 > x0).all() and (y1 > y0).all()


def test_the_object_is_drawn_where_its_mask_is(shapes):
    # fully covered pixels (the mask shrunk by one pixel) all carry the object's single colour
    inner = (
        -F.max_pool2d(-shapes.masks.float().unsqueeze(1), 3, stride=1, padding=1).squeeze(1) > 0.5
    )
    for image, mask in zip(shapes.images[:50], inner[:50]):
        pixels = image[:, mask]
        assert pixels.shape[1] > 0
        assert (pixels - pixels[:, :1]).abs().max() < 1e-6


def test_size_16_is_the_smallest_and_works():
    d = make_shapes(20, size=16, seed=0)
    assert d.images.shape == (20, 3, 16, 16)
    assert (d.masks.flatten(1).sum(1) > 0).all()


# ---------------------------------------------------------------- each class is its own shape

R = 20.0
EXPECTED_AREAS = {  # in units of R^2, by hand from the definitions in shapes._inside
    "circle": math.pi,  # radius R
    "square": (2 * 0.82) ** 2,  # half-side 0.82 R
    "triangle": 3 * math.sqrt(3) * 0.5**2,  # equilateral with inradius R / 2: area 3 sqrt(3) rho^2
    # star: r(theta) = 0.45 + 0.6 t with t uniform in [0, 1] over each of the 5 periods,
    # area = 1/2 * 2 pi * E[r^2] = pi * (0.45^2 + 0.45 * 0.6 + 0.6^2 / 3) = pi * 0.5925
    "star": math.pi * 0.5925,
    # two 0.6 R x 1.9 R bars minus their 0.6 R x 0.6 R overlap
    "cross": 2 * (0.6 * 1.9) - 0.6 * 0.6,
}


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("angle", [0.0, 0.7])
def test_rendered_area_matches_the_geometry(name, angle):
    cover = render_masks(
        torch.tensor([SHAPES.index(name)]),
        torch.tensor([[32.0, 32.0]]),
        torch.tensor([R]),
        torch.tensor([angle]),
        64,
    )
    assert cover.shape == (1, 64, 64) and cover.min() >= 0 and cover.max() <= 1
    assert cover.sum().item() == pytest.approx(EXPECTED_AREAS[name] * R**2, rel=0.02)


def test_each_class_renders_a_different_mask():
    kinds = torch.arange(len(SHAPES))
    masks = (
        render_masks(kinds, torch.full((5, 2), 32.0), torch.full((5,), R), torch.zeros(5), 64)
        >= 0.5
    )
    for i in range(5):
        for j in range(i + 1, 5):
            iou = (masks[i] & masks[j]).sum() / (masks[i] | masks[j]).sum()
            assert iou < 0.85, (SHAPES[i], SHAPES[j], iou.item())


def test_rotation_turns_the_square_but_not_the_circle():
    def draw(kind, angle):
        return render_masks(
            torch.tensor([kind]),
            torch.tensor([[32.0, 32.0]]),
            torch.tensor([R]),
            torch.tensor([angle]),
            64,
        )[0]

    assert (draw(0, 0.0) - draw(0, 1.0)).abs().sum() < 20  # the circle: aliasing only
    assert (draw(1, 0.0) - draw(1, math.pi / 4)).abs().sum() > 200  # the square's corners move


def test_textured_background_is_deterministic_and_in_range():
    a = textured_background(4, 16, torch.Generator().manual_seed(0))
    b = textured_background(4, 16, torch.Generator().manual_seed(0))
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0.01


# ---------------------------------------------------------------- scenes


def test_scenes_are_deterministic():
    a, b, c = make_scenes(6, seed=1), make_scenes(6, seed=1), make_scenes(6, seed=2)
    assert torch.equal(a.images, b.images)
    assert all(
        torch.equal(s[k], t[k])
        for s, t in zip(a.targets, b.targets)
        for k in ("boxes", "labels", "masks")
    )
    assert not torch.equal(a.images, c.images)


def test_scene_shapes_and_consistent_targets(scenes):
    assert scenes.images.shape == (40, 3, 64, 64) and scenes.images.dtype == torch.float32
    assert scenes.images.min() >= 0 and scenes.images.max() <= 1
    assert len(scenes.targets) == 40 and scenes.classes == SHAPES
    counts = []
    for t in scenes.targets:
        k = len(t["labels"])
        counts.append(k)
        assert t["boxes"].shape == (k, 4) and t["boxes"].dtype == torch.float32
        assert t["labels"].dtype == torch.int64 and ((t["labels"] >= 0) & (t["labels"] < 5)).all()
        assert t["masks"].shape == (k, 64, 64) and t["masks"].dtype == torch.bool
        assert (t["masks"].flatten(1).sum(1) > 0).all()
        assert torch.equal(t["boxes"], _tight_boxes(t["masks"]))
        assert (t["boxes"][:, :2] >= 0).all() and (t["boxes"][:, 2:] <= 64).all()
    assert min(counts) >= 2 and max(counts) <= 5 and len(set(counts)) > 1


def test_scene_objects_do_not_overlap_or_touch_the_border():
    # crowded scenes of the shapes that reach farthest from their centres (square corners,
    # star tips)
    crowded = make_scenes(
        200, size=48, min_objects=4, max_objects=8, classes=("square", "star"), seed=0
    )
    for t in crowded.targets:
        assert t["masks"].sum(0).max() <= 1  # no pixel belongs to two objects
        # none is clipped by the border
        assert (t["boxes"][:, :2] > 0).all() and (t["boxes"][:, 2:] < 48).all()


def test_scene_objects_are_drawn_where_their_masks_are(scenes):
    for image, t in zip(scenes.images[:10], scenes.targets[:10]):
        inner = (
            -F.max_pool2d(-t["masks"].float().unsqueeze(1), 3, stride=1, padding=1).squeeze(1) > 0.5
        )
        for mask in inner:
            pixels = image[:, mask]
            assert pixels.shape[1] > 0 and (pixels - pixels[:, :1]).abs().max() < 1e-6


def test_exact_object_count():
    s = make_scenes(5, size=48, min_objects=3, max_objects=3, classes=("cross",), seed=0)
    assert [len(t["labels"]) for t in s.targets] == [3] * 5
    assert all((t["labels"] == 0).all() for t in s.targets)


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("n", [0, -3, 2.0, True, "10"])
def test_bad_n(n):
    with pytest.raises(ValueError, match="expected a positive number of images, got"):
        make_shapes(n)
    with pytest.raises(ValueError, match="expected a positive number of images, got"):
        make_scenes(n)


@pytest.mark.parametrize("size", [15, 0, 32.0, None])
def test_bad_size(size):
    with pytest.raises(ValueError, match="expected an image size of at least 16 pixels, got"):
        make_shapes(4, size=size)


@pytest.mark.parametrize("classes", [("hexagon",), (), ("circle", "circle"), "circle"])
def test_bad_classes(classes):
    with pytest.raises(
        ValueError,
        match=(
            r"expected distinct classes from \('circle', 'square', 'triangle', 'star', "
            r"'cross'\), got"
        ),
    ):
        make_shapes(4, classes=classes)
    with pytest.raises(ValueError, match="expected distinct classes"):
        make_scenes(4, classes=classes)


@pytest.mark.parametrize(("low", "high"), [(0, 3), (3, 2), (-1, 1), (1.0, 2)])
def test_bad_object_counts(low, high):
    with pytest.raises(ValueError, match="expected integers 1 <= min_objects <= max_objects, got"):
        make_scenes(4, min_objects=low, max_objects=high)


def test_too_many_objects_for_the_scene():
    with pytest.raises(
        ValueError, match="could not fit 9 non-overlapping objects into a 16x16 scene"
    ):
        make_scenes(3, size=16, min_objects=9, max_objects=9)


def test_render_masks_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="expected a shape index in 0..4, got 7"):
        render_masks(
            torch.tensor([7]), torch.tensor([[8.0, 8.0]]), torch.tensor([4.0]), torch.zeros(1), 16
        )


# ---------------------------------------------------------------- speed


def test_ten_thousand_images_are_cheap():
    """The guide asks for 10,000 32x32 images in a few seconds; CPU time is measured because the
    test machine is shared (wall time depends on the other jobs), with a generous bound."""
    start = time.process_time()
    d = make_shapes(10_000, size=32, seed=0)
    seconds = time.process_time() - start
    assert d.images.shape == (10_000, 3, 32, 32)
    assert seconds < 10, f"make_shapes(10_000) took {seconds:.1f} CPU-seconds"


def test_render_masks_and_backgrounds_reject_bad_input():
    with pytest.raises(
        ValueError, match=r"expected centers of shape \(1, 2\) for 1 kinds, got \(2,\)"
    ):
        render_masks(
            torch.tensor([0]), torch.tensor([8.0, 8.0]), torch.tensor([4.0]), torch.zeros(1), 16
        )
    with pytest.raises(TypeError, match="expected kinds as a tensor"):
        render_masks([0], torch.zeros(1, 2), torch.ones(1), torch.zeros(1), 16)
    with pytest.raises(TypeError, match="expected a torch.Generator, got int"):
        textured_background(2, 16, 0)
    with pytest.raises(TypeError, match="expected an integer seed, got '1'"):
        make_shapes(2, seed="1")
