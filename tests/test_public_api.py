"""Bad input gets a clear error: every public function of ``visionbook``, called wrongly.

For each public callable (functions and classes defined in a ``visionbook`` module, names not
starting with ``_``) the table ``CASES`` holds one valid call, built by small factories, and the
wrong values to put in its place one argument at a time: a value of the wrong type (a string or
a list where a tensor is expected) and, where the function takes tensors or arrays, one of the
wrong shape. Each wrong call must raise ``TypeError`` or ``ValueError`` with a message that says
what was expected (the house style is "expected ..., got ..."). Entries named ``Class.forward``
call a module instance, so that a network's own input checks are covered too.

Callables that cannot be called wrongly in this way are listed explicitly, each with its reason:
``NO_ARGUMENTS`` (nothing to pass), ``RECORDS`` (plain named tuples and dataclasses that hold
what they are given), ``EXCEPTIONS`` and ``CLI`` (command-line entry points, whose input is
checked by argparse). ``ANY_SHAPE`` lists the cases that accept any shape by design, so only
the wrong type is tried. A meta-test checks that every public callable is in exactly one of
these places, so that a new function cannot escape.

``PENDING`` lists the failing cases of modules that another change owns; they are expected
failures until fixed there, and an entry that starts to pass must be removed.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import itertools
import pkgutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import nn

import visionbook

ROOT = Path(__file__).resolve().parents[1]
S = "not a tensor"  # a wrong type where a tensor, a number or a model is expected
L = [[0.0, 1.0], [1.0, 0.0]]  # a list where a tensor is expected


class Case(NamedTuple):
    valid: dict  # keyword arguments of one call that works
    bad: dict  # argument name -> wrong values, each tried on its own
    # what to call instead of the public object (a module instance for .forward)
    call: Callable | None
    # False where the valid call is slow or needs a network (reason in RUN_VALID_SKIPPED)
    run_valid: bool


def case(
    valid: dict | None = None, *, call: Callable | None = None, run_valid: bool = True, **bad: list
) -> Case:
    return Case(valid or {}, bad, call, run_valid)


def r(*shape: int) -> torch.Tensor:
    return torch.rand(*shape)


def lab(*values: int) -> torch.Tensor:
    return torch.tensor(values)


def mask(*shape: int) -> torch.Tensor:
    return torch.rand(*shape) > 0.5


def linear_net(features: int = 4, classes: int = 2) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(features, classes))


def relu_net() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def conv_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )


def with_grad(t: torch.Tensor) -> torch.Tensor:
    t.requires_grad_(True)
    t.grad = torch.ones_like(t)
    return t


_TMP = tempfile.TemporaryDirectory(prefix="visionbook-api-")  # removed when the test process ends


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(dir=_TMP.name))


def axes():
    import matplotlib.pyplot as plt

    return plt.figure().gca()


# --- factories for modules with richer inputs -------------------------------------------------


def _boxes() -> torch.Tensor:
    return torch.tensor([[0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 5.0, 5.0], [8.0, 8.0, 9.0, 9.0]])


def _detections() -> tuple[list[dict], list[dict]]:
    pred = {"boxes": _boxes(), "scores": torch.tensor([0.9, 0.8, 0.7]), "labels": lab(0, 0, 1)}
    true = {"boxes": _boxes()[:2], "labels": lab(0, 1)}
    return [pred], [true]


def _targets() -> list[dict]:
    return [{"boxes": torch.tensor([[0.0, 0, 8, 8]]), "labels": lab(0)}]


def _centernet_outputs() -> dict:
    return {"heatmap": r(1, 1, 4, 4), "size": r(1, 2, 4, 4), "offset": r(1, 2, 4, 4)}


def _encoded() -> dict:
    from visionbook.detect import encode_batch

    return encode_batch(_targets(), 1, 16)


def _attention() -> torch.Tensor:
    return r(1, 2, 3, 3).softmax(-1)


def _probs() -> torch.Tensor:
    return torch.tensor([[0.9, 0.1], [0.3, 0.7]])


def _reliability():
    from visionbook.calibration import reliability

    return reliability(_probs(), lab(0, 0), n_bins=2)


def _gan() -> dict:
    from visionbook.generative import dcgan_discriminator, dcgan_generator

    G, D = dcgan_generator(8, 8), dcgan_discriminator(4)
    return {
        "G": G,
        "D": D,
        "opt": torch.optim.SGD(G.parameters(), 0.01),
        "opt_D": torch.optim.SGD(D.parameters(), 0.01),
    }


def _g_step() -> dict:
    gan = _gan()
    return dict(G=gan["G"], D=gan["D"], opt_G=gan["opt"], fake=gan["G"](torch.randn(2, 8)))


def _d_step() -> dict:
    gan = _gan()
    return dict(D=gan["D"], opt_D=gan["opt_D"], x=r(2, 1, 28, 28), fake=r(2, 1, 28, 28))


def _digit_clf() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))


def _recipe():
    from visionbook import zoo

    return zoo._recipe("mnist_cnn")


def _resnet18_default():
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.DEFAULT


def _saved_checkpoint() -> dict:
    from visionbook import zoo

    model, path = nn.Linear(2, 2), tmpdir() / "model.pt"
    zoo.save_checkpoint(model, path, {"key": "k"})
    return dict(model=nn.Linear(2, 2), path=path)


def _in_group(fn: Callable) -> Callable:
    """``fn`` called inside a process group of one gloo process, as a task of ``launch`` runs."""
    import functools

    import torch.distributed as dist

    @functools.wraps(fn)
    def call(**kwargs):
        store = dist.FileStore(str(tmpdir() / "store"), 1)
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        try:
            return fn(**kwargs)
        finally:
            dist.destroy_process_group()

    return call


def _task(name: str, valid: dict | None = None, run_valid: bool = True, **bad: list) -> Case:
    """A task of ``visionbook.distributed`` run as rank 0 of 1 in a process group."""
    return case(
        {"rank": 0, "world_size": 1, **(valid or {})},
        call=_in_group(_lazy("distributed", name)),
        run_valid=run_valid,
        rank=[S, 1],
        world_size=[S, 0],
        **bad,
    )


def _graded(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        with_grad(p)
    return model


def _digits(n: int = 4) -> dict:
    return {"X": r(n, 1, 28, 28), "y": torch.arange(n) % 10}


def _onnx_file() -> Path:
    from visionbook.deploy import export_onnx

    return export_onnx(linear_net(), r(1, 4), tmpdir() / "m.onnx")


def _onnx_session():
    from visionbook.deploy import session

    return session(_onnx_file())


def _notebook_dir() -> Path:
    import nbformat

    folder = tmpdir()
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T")]), folder / "a.ipynb"
    )
    return folder


def _runtimes_json() -> Path:
    path = tmpdir() / "tools.runtimes.json"
    path.write_text('{"cpu": {"chapters": {}}}')
    return path


def _chapter() -> Path:
    return sorted((ROOT / "book").glob("*.ipynb"))[0]


def _data(n: int = 8, features: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, features), torch.arange(n) % 2


def _mismatched() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(8, 2), lab(0, 1, 0)


def _schedule():
    return _lazy("diffusion", "noise_schedule")(50)


def _unet() -> nn.Module:
    return _lazy("diffusion", "UNet")((8, 8), 8).eval()


def _lazy(module: str, name: str) -> Callable:
    """The public object ``visionbook.<module>.<name>``, looked up when the case is built."""
    return getattr(importlib.import_module(f"visionbook.{module}"), name)


# --- the table ---------------------------------------------------------------------------------

# The activations that act on each element alone (and their derivatives).
ELEMENTWISE = tuple(
    f"{name}{grad}"
    for name in ("step", "sigmoid", "tanh", "relu", "leaky_relu", "gelu")
    for grad in ("", "_grad")
)


def _cases() -> dict[str, Callable[[], Case]]:
    x = _lazy
    elementwise = {
        f"activations.{n}": (lambda: case(dict(x=r(3)), x=[L, S]))
        for n in ELEMENTWISE
        if "leaky" not in n  # leaky_relu takes a slope too: its own case below
    }
    return {
        **elementwise,
        "activations.leaky_relu": lambda: case(dict(x=r(3), slope=0.1), x=[L], slope=[S]),
        "activations.leaky_relu_grad": lambda: case(dict(x=r(3), slope=0.1), x=[L], slope=[S]),
        "activations.logsumexp": lambda: case(dict(z=r(2, 3)), z=[L], dim=[S]),
        "activations.log_softmax": lambda: case(dict(z=r(2, 3)), z=[L], dim=[S]),
        "activations.softmax": lambda: case(dict(z=r(2, 3)), z=[L], dim=[S]),
        "activations.cross_entropy": lambda: case(
            dict(logits=r(2, 4), y=lab(0, 3)), logits=[L, r(4)], y=[L, lab(0, 1, 2)]
        ),
        "activations.layer_grad_norms": lambda: case(
            dict(
                model=nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)),
                X=r(5, 3),
                y=torch.zeros(5).long(),
            ),
            model=[S],
            X=[L, r(4, 3)],
            y=[L, lab(0, 1)],
        ),
        # adversarial
        "adversarial.input_gradient": lambda: case(
            dict(model=linear_net(), images=r(3, 1, 2, 2), labels=lab(0, 1, 0)),
            images=[L, r(3, 4)],
            labels=[L, lab(0)],
        ),
        "adversarial.fgsm": lambda: case(
            dict(model=linear_net(), images=r(1, 1, 2, 2), labels=lab(0), epsilon=0.1),
            images=[L, r(4)],
            labels=[L, lab(0, 1)],
            epsilon=[S],
        ),
        "adversarial.pgd": lambda: case(
            dict(model=linear_net(), images=r(1, 1, 2, 2), labels=lab(0), epsilon=0.1, steps=2),
            images=[L, r(4)],
            labels=[L, lab(0, 1)],
            steps=[S],
        ),
        "adversarial.accuracy_under": lambda: case(
            dict(model=linear_net(), images=r(2, 1, 2, 2), labels=lab(0, 1)),
            images=[L, r(4)],
            labels=[L, lab(0)],
        ),
        # attention
        "attention.SpatialAttention": lambda: case(dict(kernel=7), kernel=[S, 4]),
        "attention.SpatialAttention.forward": lambda: case(
            dict(x=r(2, 4, 8, 8)), call=x("attention", "SpatialAttention")(), x=[L, r(4, 8, 8)]
        ),
        "attention.attention_cnn": lambda: case(
            dict(num_classes=5, channels=(4, 8)), num_classes=[S], channels=[16, (S,)]
        ),
        "attention.scaled_dot_product_attention": lambda: case(
            dict(q=r(2, 3, 4), k=r(2, 5, 4), v=r(2, 5, 6), mask=torch.ones(3, 5, dtype=torch.bool)),
            q=[L, r(4), r(2, 3, 3)],
            k=[L, r(2, 5, 3)],
            v=[L, r(2, 4, 6)],
            mask=[L, torch.ones(3, 4, dtype=torch.bool)],
        ),
        "attention.MultiHeadSelfAttention": lambda: case(
            dict(dim=8, heads=2), dim=[S], heads=[S, 3]
        ),
        "attention.MultiHeadSelfAttention.forward": lambda: case(
            dict(x=r(3, 5, 8)),
            call=x("attention", "MultiHeadSelfAttention")(8, 2),
            x=[L, r(5, 8), r(3, 5, 6)],
        ),
        "attention.sinusoidal_positions": lambda: case(
            dict(length=3, dim=4), length=[S], dim=[S, 3]
        ),
        "attention.patchify": lambda: case(
            dict(images=r(1, 1, 4, 4), patch=2), images=[L, r(4, 4)], patch=[S]
        ),
        "attention.PatchEmbedding": lambda: case(
            dict(in_channels=1, dim=16, patch=7), in_channels=[S], patch=[S]
        ),
        "attention.PatchEmbedding.forward": lambda: case(
            dict(x=r(2, 1, 28, 28)),
            call=x("attention", "PatchEmbedding")(1, 16, 7),
            x=[L, r(1, 28, 28), r(2, 3, 28, 28)],
        ),
        "attention.EncoderBlock": lambda: case(dict(dim=8, heads=2), dim=[S], mlp_ratio=[S]),
        "attention.EncoderBlock.forward": lambda: case(
            dict(x=r(1, 3, 8)),
            call=x("attention", "EncoderBlock")(8, 2),
            x=[L, r(3, 8), r(1, 3, 6)],
        ),
        "attention.ViT": lambda: case(
            dict(image_size=28, patch=7), image_size=[S], patch=[S, 5], positions=[1]
        ),
        "attention.ViT.forward": lambda: case(
            dict(x=r(2, 1, 28, 28)),
            call=x("attention", "ViT")(28, 7),
            x=[L, r(1, 28, 28), r(2, 3, 28, 28), r(2, 1, 32, 32)],
        ),
        "attention.attention_rollout": lambda: case(
            dict(attentions=[_attention(), _attention()]),
            attentions=[
                S,
                _attention(),
                [L],
                [r(1, 3, 4)],
                [_attention(), r(1, 2, 4, 4).softmax(-1)],
            ],
        ),
        # augment
        "augment.affine": lambda: case(
            dict(X=r(2, 1, 5, 5), angles=torch.zeros(2), shifts=torch.zeros(2, 2)),
            X=[L, r(1, 5, 5)],
            angles=[L, torch.zeros(3)],
            shifts=[L, torch.zeros(2, 3)],
        ),
        "augment.random_affine": lambda: case(
            dict(X=r(2, 1, 5, 5)),
            X=[L, r(5, 5)],
            degrees=[S],
            max_shift=[S],
            scale=[S, 1.5],
            generator=[S],
        ),
        "augment.TrainAugment": lambda: case(dict(fn=lambda X: X), fn=[S]),
        "augment.TransformDataset": lambda: case(
            dict(X=r(3, 1, 4, 4), y=torch.zeros(3)),
            X=[L, r(3, 4)],
            y=[L, torch.zeros(2)],
            transform=[S],
        ),
        "augment.mixup": lambda: case(
            dict(X=r(2, 1, 3, 3), y=lab(0, 1), num_classes=2, lam=0.5),
            X=[L, r(2, 3, 3)],
            y=[L, lab(0, 1, 1)],
            num_classes=[S],
            lam=[S],
        ),
        "augment.cutmix_box": lambda: case(
            dict(lam=0.75, height=10, width=10, center=(5, 5)),
            lam=[S],
            height=[S],
            center=[S, (5,)],
        ),
        "augment.cutmix": lambda: case(
            dict(X=r(2, 1, 4, 4), y=lab(0, 1), num_classes=2, lam=0.75, center=(2, 2)),
            X=[L, r(2, 4, 4)],
            y=[L, lab(0)],
            center=[S, (2,)],
        ),
        "augment.tta_predict": lambda: case(
            dict(model=nn.Flatten(), X=r(2, 1, 1, 3), views=[lambda X: X]),
            X=[L, r(2, 3)],
            views=[S, lambda X: X],
        ),
        "augment.balanced_subset": lambda: case(
            dict(y=lab(0, 1, 0, 1), per_class=1), y=[L, torch.zeros(2, 2).long()], per_class=[S]
        ),
        "augment.seeds_by_settings": lambda: case(
            dict(run=lambda s, k: {"acc": 1.0}, settings=["a"], seeds=[0]),
            run=[S],
            settings=[S],
            seeds=[S],
        ),
        # autograd
        "autograd.Value": lambda: case(dict(data=2.0), data=[S]),
        "autograd.topological_order": lambda: case(
            dict(root=x("autograd", "Value")(1.0)), root=[S]
        ),
        "autograd.draw_graph": lambda: case(dict(root=x("autograd", "Value")(1.0)), root=[S]),
        "autograd.Linear": lambda: case(
            dict(weight=np.ones((1, 2)), bias=np.ones(1)),
            weight=[L, np.ones(2)],
            bias=[L, np.ones(2)],
        ),
        "autograd.Linear.forward": lambda: case(
            dict(x=np.ones((3, 2))),
            call=x("autograd", "Linear")(np.ones((1, 2)), np.ones(1)).forward,
            x=[L, np.ones(2), np.ones((3, 3))],
        ),
        "autograd.ReLU.forward": lambda: case(
            dict(x=np.ones((1, 2))), call=x("autograd", "ReLU")().forward, x=[L]
        ),
        "autograd.SoftmaxCrossEntropy.forward": lambda: case(
            dict(logits=np.zeros((2, 4)), y=np.array([0, 3])),
            call=x("autograd", "SoftmaxCrossEntropy")().forward,
            logits=[L, np.zeros(4)],
            y=[L, np.array([0])],
        ),
        "autograd.Sequential": lambda: case(
            dict(layers=[x("autograd", "ReLU")()]), layers=[S, [S]]
        ),
        "autograd.numerical_gradient": lambda: case(
            dict(f=lambda v: float((v**2).sum()), x=np.array([1.0, -2.0])), f=[S], x=[L], h=[S]
        ),
        "autograd.relative_error": lambda: case(
            dict(actual=np.ones(2), expected=np.ones(2)),
            actual=[S, np.ones(3)],
            expected=[S],
            floor=[S],
        ),
        # blocks
        "blocks.vgg_block": lambda: case(dict(c_in=3, c_out=8), c_in=[S], num_convs=[S]),
        "blocks.SameConv2d": lambda: case(dict(c_in=1, c_out=1, kernel=3), c_in=[S], kernel=[S]),
        "blocks.BasicBlock": lambda: case(dict(c_in=4, c_out=8), c_in=[S], stride=[S]),
        "blocks.DenseLayer": lambda: case(dict(c_in=4, growth=2), c_in=[S], growth=[S]),
        "blocks.dense_block": lambda: case(dict(c_in=4, growth=2, num_layers=2), num_layers=[S]),
        "blocks.transition": lambda: case(dict(c_in=4, c_out=2), c_in=[S]),
        "blocks.depthwise_separable": lambda: case(dict(c_in=4, c_out=8), c_in=[S], stride=[S]),
        "blocks.SqueezeExcite": lambda: case(
            dict(channels=8, squeeze=2), channels=[S], squeeze=[S]
        ),
        "blocks.MBConv": lambda: case(
            dict(c_in=8, c_out=8), c_in=[S], expand_ratio=[S], kernel_size=[S]
        ),
        "blocks.compound_scaling": lambda: case(dict(phi=1), phi=[S]),
        "blocks.round_channels": lambda: case(dict(channels=17.6), channels=[S], divisor=[S]),
        "blocks.round_repeats": lambda: case(
            dict(repeats=2, depth_mult=1.2), repeats=[S], depth_mult=[S]
        ),
        "blocks.resnet_small": lambda: case(
            dict(blocks_per_stage=1), blocks_per_stage=[S], width=[S]
        ),
        "blocks.vgg_small": lambda: case(dict(), num_classes=[S], widths=[16]),
        "blocks.densenet_small": lambda: case(dict(layers=(1, 1, 1)), num_classes=[S], layers=[4]),
        "blocks.mobilenet_small": lambda: case(dict(), num_classes=[S], widths=[32]),
        "blocks.efficientnet_small": lambda: case(dict(), num_classes=[S], width_mult=[S]),
        "blocks.LayerNorm2d": lambda: case(dict(channels=4), channels=[S], eps=[S, 0.0]),
        "blocks.ConvNeXtBlock": lambda: case(
            dict(channels=8),
            channels=[S],
            kernel_size=[S, 4],
            layer_scale=[S],
            stochastic_depth=[S, 1.0],
        ),
        "blocks.convnext_small": lambda: case(
            dict(), num_classes=[S], widths=[16], depths=[S, (1, 1)]
        ),
        "train.fit_for_seconds": lambda: case(
            dict(model=nn.Linear(2, 2), data=_data(), seconds=0.02),
            model=[S],
            data=[S, _mismatched()],
            seconds=[S, 0],
        ),
        "train.fit_one_cycle": lambda: case(
            dict(model=nn.Linear(2, 2), data=_data(), epochs=1), data=[S, _mismatched()], epochs=[S]
        ),
        # bookbuild
        "tools.bookbuild.chapters": lambda: case(dict(root=ROOT), root=[None]),
        "tools.bookbuild.fresh_execution": lambda: case(
            dict(notebook=_chapter(), cache_path=tmpdir()), notebook=[None], cache_path=[1]
        ),
        "tools.bookbuild.execute_into_cache": lambda: case(
            dict(notebooks=[_notebook_dir() / "a.ipynb"], cache_path=tmpdir()),
            run_valid=False,
            notebooks=[S, [None]],
            jobs=[S],
            timeout=[S],
        ),
        # boxes
        "boxes.box_convert": lambda: case(
            dict(boxes=_boxes(), src="xyxy", dst="cxcywh"), boxes=[L, r(4)], src=[1]
        ),
        "boxes.box_area": lambda: case(dict(boxes=_boxes()), boxes=[L, r(2, 3)]),
        "boxes.box_iou": lambda: case(dict(a=_boxes(), b=_boxes()), a=[L, r(4)], b=[L, r(1, 5)]),
        "boxes.nms": lambda: case(
            dict(boxes=_boxes(), scores=r(3), iou_threshold=0.5),
            boxes=[L, r(3)],
            scores=[L, r(2)],
            iou_threshold=[S],
        ),
        "boxes.match_detections": lambda: case(
            dict(pred_boxes=_boxes(), scores=r(3), true_boxes=_boxes()[:1]),
            pred_boxes=[L, r(4)],
            scores=[L, r(2), r(3, 1)],
            true_boxes=[L, r(2, 3)],
            iou_threshold=[S],
        ),
        "boxes.average_precision": lambda: case(
            dict(scores=r(2), hits=lab(1, 0).bool(), num_true=2),
            scores=[L, r(2, 1)],
            hits=[L, lab(1, 0, 1).bool()],
            num_true=[S],
        ),
        "boxes.mean_average_precision": lambda: case(
            dict(predictions=_detections()[0], targets=_detections()[1], num_classes=2),
            predictions=[S, [{}], [{**_detections()[0][0], "boxes": r(3)}]],
            targets=[S, [{"boxes": r(2, 3), "labels": lab(0, 1)}]],
            num_classes=[S],
        ),
        # calibration
        "calibration.reliability": lambda: case(
            dict(probs=_probs(), labels=lab(0, 0), n_bins=2),
            probs=[L, r(2)],
            labels=[L, lab(0)],
            n_bins=[S],
        ),
        "calibration.expected_calibration_error": lambda: case(
            dict(probs=_probs(), labels=lab(0, 0), n_bins=2),
            probs=[L, r(2)],
            labels=[L, lab(0)],
            n_bins=[S],
        ),
        "calibration.fit_temperature": lambda: case(
            dict(logits=r(4, 2), labels=lab(0, 0, 1, 1), max_iter=5),
            logits=[L, r(4)],
            labels=[L, lab(0)],
            max_iter=[S],
        ),
        "calibration.plot_reliability": lambda: case(dict(r=_reliability()), r=[S, (1, 2)]),
        # cam
        "cam.ClassTarget": lambda: case(dict(index=1), index=[S]),
        "cam.PerImageTarget": lambda: case(
            dict(indices=lab(1, 0)), indices=[L, torch.zeros(2, 2).long()]
        ),
        "features.record": lambda: case(dict(layer=nn.Conv2d(1, 2, 3)), layer=[S]),
        "cam.grad_cam": lambda: case(
            dict(model=conv_net(), layer=None, x=r(2, 3, 8, 8), target=x("cam", "ClassTarget")(0)),
            x=[L, r(3, 8, 8)],
            layer=[S],
            target=[S],
        ),
        "cam.saliency": lambda: case(
            dict(model=linear_net(12), x=r(1, 3, 2, 2), target=x("cam", "ClassTarget")(1)),
            x=[L, r(3, 2, 2)],
            target=[S],
        ),
        "cam.smoothgrad": lambda: case(
            dict(
                model=linear_net(12), x=r(1, 3, 2, 2), target=x("cam", "ClassTarget")(0), samples=2
            ),
            x=[L, r(3, 2, 2)],
            samples=[S],
        ),
        "cam.guided_relus": lambda: case(
            dict(model=nn.Sequential(nn.Linear(2, 2), nn.ReLU())), model=[S]
        ),
        "cam.guided_backprop": lambda: case(
            dict(model=relu_net(), x=r(5, 1, 2, 2), target=x("cam", "ClassTarget")(0)),
            x=[L, r(4)],
            target=[S],
        ),
        "cam.guided_grad_cam": lambda: case(
            dict(model=conv_net(), layer=None, x=r(2, 3, 8, 8), target=x("cam", "ClassTarget")(1)),
            x=[L, r(3, 8, 8)],
            target=[S],
        ),
        "cam.sobel_edges": lambda: case(dict(images=r(1, 3, 5, 5)), images=[L, r(5, 5)]),
        "cam.cascading_randomization": lambda: case(
            dict(
                model=nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)), names=["2", "0"]
            ),
            model=[S],
            names=[S, ["9"]],
        ),
        "cam.pointing_game": lambda: case(
            dict(maps=r(1, 4, 4), boxes=torch.tensor([[2, 0, 4, 2]])),
            maps=[L, r(4, 4)],
            boxes=[L, torch.tensor([[2, 0, 4]])],
        ),
        "cam.mass_in_box": lambda: case(
            dict(maps=r(1, 4, 4), boxes=torch.tensor([[0, 0, 2, 2]])),
            maps=[L, r(4, 4)],
            boxes=[L, torch.tensor([[2, 0, 4]])],
        ),
        "cam.deletion_insertion": lambda: case(
            dict(
                model=linear_net(16),
                x=r(3, 1, 4, 4),
                maps=r(3, 4, 4),
                classes=lab(0, 1, 0),
                steps=2,
            ),
            x=[L, r(3, 4, 4)],
            maps=[L, r(3, 5, 5)],
            classes=[L, lab(0)],
        ),
        "cam.area_under": lambda: case(
            dict(curve=torch.tensor([[0.0, 0.5, 1.0]])), curve=[L, r(3)]
        ),
        "cam.spearman": lambda: case(dict(a=r(1, 3), b=r(1, 3)), a=[L, r(1, 4)], b=[L]),
        "cam.resnet18_imagenet": lambda: case(dict(pretrained=False), pretrained=[S]),
        "cam.top_k_grad_cams": lambda: case(
            dict(model=x("cam", "resnet18_imagenet")(pretrained=False), image=r(3, 40, 40), k=2),
            image=[L, r(1, 40, 40)],
            k=[S],
        ),
        # checks
        "checks.check_close": lambda: case(
            dict(actual=1.0, expected=1.0), actual=[S], expected=[S], atol=[S]
        ),
        "checks.check_at_least": lambda: case(
            dict(value=0.98, minimum=0.97), value=[S, np.ones(2)], minimum=[S]
        ),
        "checks.check_at_most": lambda: case(
            dict(value=0.01, maximum=0.05), value=[S, np.ones(2)], maximum=[S]
        ),
        "checks.check_equal": lambda: case(
            dict(actual=(1, 2), expected=(1, 2), name="shape"), name=[1]
        ),
        "checks.check_true": lambda: case(
            dict(condition=True, name="holds"), condition=[S, torch.ones(2, dtype=torch.bool)]
        ),
        "checks.check_group": lambda: case(dict(name="facts"), name=[1, ""]),
        "checks.exercise": lambda: case(  # the label is positional-only
            dict(label="ex-w", w="a weight"),
            call=lambda label, w: x("checks", "exercise")(label, w=w),
            label=[1, " "],
            w=[1],
        ),
        # config
        "config.seed_everything": lambda: case(dict(seed=0), seed=[S], deterministic=[S]),
        # contrastive
        "contrastive.contrastive_logits": lambda: case(
            dict(z1=r(3, 2), z2=r(3, 2)), z1=[L, r(3)], z2=[L, r(2, 2)], temperature=[S, 0]
        ),
        "contrastive.nt_xent": lambda: case(
            dict(z1=r(3, 2), z2=r(3, 2)), z1=[L, r(3)], z2=[L, r(2, 2)], temperature=[S, 0]
        ),
        "contrastive.positive_pair_loss": lambda: case(
            dict(z1=r(3, 2), z2=r(3, 2)), z1=[L, r(3)], z2=[L, r(2, 2)], temperature=[S, -1.0]
        ),
        "contrastive.simclr_augment": lambda: case(
            dict(X=r(2, 1, 8, 8)),
            X=[L, r(8, 8), r(2, 2, 8, 8)],
            crop_scale=[S, (0.8, 0.5)],
            degrees=[S],
            jitter=[S, 1.5],
            erase=[2],
        ),
        "contrastive.two_views": lambda: case(dict(X=r(2, 1, 8, 8)), X=[L, r(8, 8)]),
        "contrastive.projection_head": lambda: case(
            dict(in_features=4), in_features=[S, 0], hidden=[S], out_features=[S]
        ),
        "contrastive.simclr_pretrain": lambda: case(
            dict(
                model=linear_net(4, 2),
                X=r(4, 1, 2, 2),
                steps=1,
                batch_size=2,
                augment=lambda X: (X, X + 0.1),
            ),
            model=[S],
            X=[L, r(4, 4)],
            steps=[S, 0],
            batch_size=[1],
            lr=[S],
            every=[S],
        ),
        "contrastive.knn_accuracy": lambda: case(
            dict(
                train_features=r(4, 2),
                train_labels=lab(0, 1, 0, 1),
                test_features=r(2, 2),
                test_labels=lab(0, 1),
                k=2,
            ),
            train_features=[L, r(4)],
            train_labels=[L, lab(0, 1)],
            test_features=[L, r(2, 3)],
            test_labels=[L, lab(0)],
            k=[S, 5],
        ),
        "contrastive.embedding_std": lambda: case(dict(Z=r(3, 2)), Z=[L, r(3), r(1, 2)]),
        "contrastive.effective_rank": lambda: case(dict(Z=r(3, 2)), Z=[L, r(3), r(1, 2)]),
        "contrastive.caption": lambda: case(
            dict(colour="red", shape="circle"), colour=[1, "purple"], shape=["blob"]
        ),
        "contrastive.captioned_shapes": lambda: case(
            dict(n=2, pairs=[("red", "circle")], size=16),
            n=[S, 0],
            pairs=[S, [("red",)], [("purple", "circle")]],
            size=[S, 8],
            seed=[S],
        ),
        "contrastive.BagOfWords": lambda: case(
            dict(vocabulary=["a", "red"]),
            vocabulary=[S, ["a", "a"], [1]],
            dim=[S],
            out_features=[S],
        ),
        "contrastive.BagOfWords.forward": lambda: case(
            dict(captions=["a red"]),
            call=x("contrastive", "BagOfWords")(["a", "red"]),
            captions=[S, ["a blue"], [1]],
        ),
        "contrastive.clip_loss": lambda: case(
            dict(image_embeddings=r(3, 2), text_embeddings=r(3, 2)),
            image_embeddings=[L, r(3)],
            text_embeddings=[L, r(2, 2)],
            temperature=[S],
        ),
        "contrastive.clip_pretrain": lambda: case(
            dict(
                image_encoder=nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 4)),
                text_encoder=x("contrastive", "BagOfWords")(["a", "red", "circle"], 4, 4),
                data=x("contrastive", "captioned_shapes")(2, [("red", "circle")], size=16),
                steps=1,
            ),
            image_encoder=[S],
            text_encoder=[S],
            data=[S],
            steps=[S, 0],
            lr=[S],
            seed=[S],
        ),
        "contrastive.zero_shot_predict": lambda: case(
            dict(image_embeddings=r(3, 2), class_embeddings=r(4, 2)),
            image_embeddings=[L, r(3)],
            class_embeddings=[L, r(4, 3)],
        ),
        # conv
        "conv.conv_output_size": lambda: case(
            dict(size=28, kernel_size=5), size=[S], kernel_size=[S], padding=[S]
        ),
        "conv.zero_pad": lambda: case(
            dict(x=r(1, 2), padding=1), x=[L, r(3)], padding=[S], value=[S]
        ),
        "conv.conv2d_loops": lambda: case(
            dict(x=r(1, 1, 3, 3), weight=r(1, 1, 2, 2), bias=r(1)),
            x=[L, r(1, 3, 3), r(1, 2, 3, 3)],
            weight=[L, r(1, 2, 2)],
            bias=[L, r(2)],
            stride=[S],
        ),
        "conv.windows": lambda: case(
            dict(x=r(1, 1, 3, 3), kernel_size=2), x=[L, r(3, 3)], kernel_size=[S]
        ),
        "conv.im2col": lambda: case(
            dict(x=r(1, 1, 3, 3), kernel_size=2), x=[L, r(3, 3)], kernel_size=[S]
        ),
        "conv.conv2d_im2col": lambda: case(
            dict(x=r(1, 1, 3, 3), weight=r(1, 1, 2, 2), bias=r(1)),
            x=[L, r(1, 3, 3), r(1, 2, 3, 3)],
            weight=[L, r(1, 2, 2)],
            bias=[L, r(2)],
            padding=[S],
        ),
        "conv.max_pool2d": lambda: case(
            dict(x=r(1, 1, 4, 4), kernel_size=2), x=[L, r(4, 4)], kernel_size=[S], stride=[S]
        ),
        "conv.avg_pool2d": lambda: case(
            dict(x=r(1, 1, 4, 4), kernel_size=2), x=[L, r(4, 4)], kernel_size=[S], stride=[S]
        ),
        "conv.receptive_fields": lambda: case(
            dict(layers=[nn.Conv2d(1, 1, 3), nn.MaxPool2d(2)]), layers=[S, [S]]
        ),
        "conv.classic_kernel": lambda: case(dict(name="sobel x"), name=[1, "nope"]),
        "conv.filter_image": lambda: case(
            dict(image=r(1, 4, 4), kernel=r(3, 3)),
            image=[L, r(4, 4)],
            kernel=[L, r(2, 2), r(3)],
            padding_mode=[1, "nope"],
        ),
        "conv.translate": lambda: case(dict(x=r(1, 3), dy=0, dx=1), x=[L, r(3)], dy=[S], dx=[S]),
        # data
        "data.md5sum": lambda: case(dict(path=__file__), path=[None]),
        "data.download": lambda: case(
            dict(url="file:///nonexistent", path=tmpdir() / "x"),
            run_valid=False,
            url=[None],
            path=[None],
            timeout=[S],
            md5=[1],
            sha256=[1],
        ),
        "data.pretrained_path": lambda: case(
            dict(weights=_resnet18_default()), weights=["DEFAULT"]
        ),
        "data.pretrained": lambda: case(
            dict(weights=_resnet18_default()),
            run_valid=False,
            weights=["DEFAULT", None],
        ),
        "data.load_digits": lambda: case(dict(test_size=360), test_size=[S], seed=[S]),
        "data.load_mnist": lambda: case(dict(full=False), full=[S], seed=[S]),
        "data.sample_image": lambda: case(dict(name="cat"), name=[1, "dog"]),
        # diagrams
        "diagrams.layer_diagram": lambda: case(
            dict(
                model=nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten()),
                input_shape=(1, 5, 5),
            ),
            model=[S],
            input_shape=[S, (1, 5)],
        ),
        "diagrams.gan_diagram": lambda: case(
            dict(
                generator=nn.Sequential(nn.Linear(2, 4), nn.Unflatten(1, (1, 2, 2))),
                discriminator=nn.Sequential(nn.Flatten(), nn.Linear(4, 1)),
                z_dim=2,
            ),
            generator=[S],
            discriminator=[S],
            z_dim=[S],
        ),
        "diagrams.block_diagram": lambda: case(
            dict(module=x("blocks", "BasicBlock")(8, 16, stride=2), input_shape=(8, 8, 8)),
            module=[S],
            input_shape=[S, (3, 8, 8)],
        ),
        "diagrams.flow_diagram": lambda: case(
            dict(steps=["x", "conv", "+"]), steps=[S, [1, 2]], skip=[S, (0, 9, "identity")]
        ),
        "diagrams.dataloader_diagram": lambda: case(
            dict(
                loader=torch.utils.data.DataLoader(
                    torch.utils.data.TensorDataset(r(10, 1, 8, 8), torch.zeros(10)), batch_size=4
                )
            ),
            loader=[S],
        ),
        "diagrams.neuron_diagram": lambda: case(dict(n_inputs=2), n_inputs=[S], activation=[1]),
        "diagrams.mlp_diagram": lambda: case(dict(model=(2, 3, 1)), model=[S, (2,)], max_nodes=[S]),
        "diagrams.data_parallel_diagram": lambda: case(
            dict(world_size=2, batch_size=64),
            world_size=[S, 1, 9],
            batch_size=[S, 63],
            title=[1],
        ),
        "diagrams.vit_diagram": lambda: case(
            dict(model=x("attention", "ViT")(28, 7, dim=16, depth=1, heads=2)), model=[S]
        ),
        # distributed
        "distributed.backend_for": lambda: case(dict(world_size=1), world_size=[S, 0]),
        "distributed.worker_device": lambda: case(dict(rank=0), rank=[S, -1]),
        "distributed.launch": lambda: case(
            dict(world_size=2, tasks=[(x("distributed", "rank_info"), {})]),
            run_valid=False,
            world_size=[S, 0],
            tasks=[S, [S], []],
        ),
        "distributed.rank_info": lambda: _task("rank_info"),
        "distributed.ring_all_reduce": lambda: case(
            dict(tensor=r(5)), call=_in_group(x("distributed", "ring_all_reduce")), tensor=[L]
        ),
        "distributed.average_gradients": lambda: case(
            dict(model=_graded(nn.Linear(2, 2)), ring=True),
            call=_in_group(x("distributed", "average_gradients")),
            model=[S],
            ring=[S],
        ),
        "distributed.shard": lambda: case(
            dict(X=r(6, 2), rank=1, world_size=3),
            X=[L, torch.tensor(1.0), r(5, 2)],
            rank=[S, 3],
            world_size=[S, 0],
        ),
        "distributed.replica": lambda: case(dict(seed=0), seed=[S, -1]),
        "distributed.flat_grad": lambda: case(dict(model=nn.Linear(2, 2)), model=[S]),
        "distributed.shard_task": lambda: _task("shard_task", dict(n=10), n=[S, 0], seed=[S]),
        "distributed.gradient_task": lambda: _task(
            "gradient_task", _digits(), X=[L, r(4, 28, 28)], y=[L, lab(0, 1)]
        ),
        "distributed.train_task": lambda: _task(
            "train_task",
            dict(**_digits(), steps=1, batch_size=4, accumulate=2),
            X=[L, r(4, 28, 28)],
            y=[L, lab(0, 1)],
            steps=[S, 0],
            batch_size=[S, 3],
            lr=[S],
            accumulate=[S, 3],
        ),
        "distributed.throughput_task": lambda: _task(
            "throughput_task", dict(batch_size=2, steps=1), batch_size=[S, 0], steps=[S]
        ),
        "distributed.all_reduce_task": lambda: _task(
            "all_reduce_task", dict(sizes=[4, 8], repeats=1), sizes=[S, [0], [S]], repeats=[S]
        ),
        "distributed.ring_bytes": lambda: case(
            dict(n_bytes=1000, world_size=2), n_bytes=[S, -1], world_size=[S, 0]
        ),
        "distributed.all_reduce_seconds": lambda: case(
            dict(n_bytes=1000, world_size=2, bandwidth=1e9, latency=1e-5),
            n_bytes=[S, -1],
            world_size=[S, 0],
            bandwidth=[S, 0],
            latency=[S, -1],
        ),
        "distributed.fit_all_reduce": lambda: case(
            dict(
                n_bytes=torch.tensor([0.0, 1e6]), seconds=torch.tensor([1e-4, 2e-3]), world_size=2
            ),
            n_bytes=[L, r(2, 1), torch.ones(2)],
            seconds=[L, r(2, 1), torch.tensor([1.0])],
            world_size=[S, 1],
        ),
        # diffusion
        "diffusion.noise_schedule": lambda: case(
            dict(T=50), T=[S, 1], beta_1=[S, 0.5], beta_T=[2.0]
        ),
        "diffusion.q_sample": lambda: case(
            dict(x0=r(2, 1, 4, 4), t=lab(1, 3), schedule=_schedule()),
            x0=[L, r(4, 4)],
            t=[L, lab(1), lab(1, 99)],
            schedule=[S],
            noise=[L, r(2, 1, 4, 3)],
        ),
        "diffusion.x0_from_eps": lambda: case(
            dict(x_t=r(2, 1, 4, 4), eps=r(2, 1, 4, 4), t=lab(1, 3), schedule=_schedule()),
            x_t=[L, r(4, 4)],
            eps=[L, r(2, 1, 4, 3)],
            t=[S, lab(1)],
            schedule=[S],
        ),
        "diffusion.eps_from_x0": lambda: case(
            dict(x_t=r(2, 1, 4, 4), x0=r(2, 1, 4, 4), t=3, schedule=_schedule()),
            x_t=[L, r(4, 4)],
            x0=[L, r(2, 1, 4, 3)],
            t=[S, 0, lab(0, 1)],
            schedule=[S],
        ),
        "diffusion.posterior": lambda: case(
            dict(x0=r(2, 1, 4, 4), x_t=r(2, 1, 4, 4), t=3, schedule=_schedule()),
            x0=[L, r(2, 1, 4, 3)],
            x_t=[L, r(4, 4)],
            t=[S, 0],
            schedule=[S],
        ),
        "diffusion.denoising_loss": lambda: case(
            dict(model=_unet(), x0=r(2, 1, 28, 28), schedule=_schedule(), y=lab(1, 2)),
            model=[S],
            x0=[L, r(2, 28, 28)],
            y=[L, lab(1)],
            p_uncond=[S, 2.0],
            t=[L, lab(0, 1)],
        ),
        "diffusion.timestep_embedding": lambda: case(
            dict(t=lab(1, 2), dim=4), t=[L, torch.zeros(2, 2).long()], dim=[S, 3]
        ),
        "diffusion.ResBlock": lambda: case(
            dict(c_in=4, c_out=8, emb_dim=6), c_in=[S], c_out=[0], emb_dim=[S]
        ),
        "diffusion.ResBlock.forward": lambda: case(
            dict(x=r(2, 4, 5, 5), emb=r(2, 6)),
            call=x("diffusion", "ResBlock")(4, 8, 6),
            x=[L, r(2, 3, 5, 5)],
            emb=[L, r(2, 5)],
        ),
        "diffusion.UNet": lambda: case(
            dict(channels=(8, 8), emb_dim=8), channels=[S, (8,)], emb_dim=[S, 7], predicts=[1, "v"]
        ),
        "diffusion.UNet.forward": lambda: case(
            dict(x=r(2, 1, 28, 28), t=lab(1, 2)),
            call=_unet(),
            x=[L, r(2, 1, 14, 14)],
            t=[L, lab(1)],
            y=[L, lab(1, 11)],
        ),
        "diffusion.predict_noise": lambda: case(
            dict(
                model=_unet(),
                x_t=r(2, 1, 28, 28),
                t=3,
                schedule=_schedule(),
                y=lab(1, 2),
                guidance=2.0,
            ),
            model=[S],
            x_t=[L, r(2, 28, 28)],
            t=[S, 0],
            schedule=[S],
            y=[L, lab(1)],
            guidance=[S, -1.0],
        ),
        "diffusion.ddpm_step": lambda: case(
            dict(x_t=r(2, 1, 4, 4), eps=r(2, 1, 4, 4), t=3, schedule=_schedule()),
            x_t=[L, r(4, 4)],
            eps=[L, r(2, 1, 4, 3)],
            t=[S, 0],
            schedule=[S],
            noise=[L, r(1, 1, 4, 4)],
            clip=[S],
        ),
        "diffusion.ddim_step": lambda: case(
            dict(x_t=r(2, 1, 4, 4), eps=r(2, 1, 4, 4), t=3, s=1, schedule=_schedule()),
            x_t=[L, r(4, 4)],
            eps=[L, r(2, 1, 4, 3)],
            t=[S],
            s=[S, 3],
            schedule=[S],
            eta=[S, 2.0],
            noise=[L, r(1, 1, 4, 4)],
        ),
        "diffusion.ddim_times": lambda: case(dict(T=10, steps=5), T=[S], steps=[S, 11]),
        "diffusion.ddpm_sample": lambda: case(
            dict(model=_unet(), x_T=r(2, 1, 28, 28), schedule=_schedule()),
            model=[S],
            x_T=[L, r(2, 28, 28)],
            schedule=[S],
            y=[L, lab(1)],
            generator=[S],
        ),
        "diffusion.ddim_sample": lambda: case(
            dict(model=_unet(), x_T=r(2, 1, 28, 28), schedule=_schedule(), steps=2),
            model=[S],
            x_T=[L, r(2, 28, 28)],
            steps=[S, 0],
            y=[L, lab(1)],
            eta=[S],
        ),
        "diffusion.to_pixels": lambda: case(dict(x=r(3)), x=[L, S]),
        # deploy
        "deploy.export_onnx": lambda: case(
            dict(model=linear_net(), example=r(1, 4), path=tmpdir() / "m.onnx"),
            model=[S],
            example=[L, torch.tensor(1.0)],
            path=[3, tmpdir() / "m.pt"],
            dynamic_batch=[S],
        ),
        "deploy.session": lambda: case(
            dict(path=_onnx_file()), path=[3, tmpdir() / "missing.onnx"], threads=[S]
        ),
        "deploy.run": lambda: case(dict(sess=_onnx_session(), x=r(2, 4)), sess=[S], x=[L, r(3)]),
        "deploy.operators": lambda: case(dict(path=_onnx_file()), path=[3, tmpdir() / "no.onnx"]),
        "deploy.file_size": lambda: case(dict(path=_onnx_file()), path=[None, tmpdir() / "no"]),
        # `call` is also case()'s own keyword: the Case is written out
        "deploy.latency": lambda: Case(
            dict(call=lambda: None, repeats=2, warmup=0),
            {"call": [S], "repeats": [0, S], "warmup": [-1]},
            None,
            True,
        ),
        "deploy.ArrayReader": lambda: case(
            dict(x=r(4, 2), batch_size=2), x=[L, r(3), np.zeros((0, 2))], batch_size=[0], name=[1]
        ),
        "deploy.quantize_dynamic": lambda: case(
            dict(source=_onnx_file(), target=tmpdir() / "q.onnx"),
            source=[3, tmpdir() / "no.onnx"],
            target=[None, tmpdir() / "q.bin"],
        ),
        "deploy.quantize_static": lambda: case(
            dict(source=_onnx_file(), target=tmpdir() / "q.onnx", calibration=r(4, 4)),
            source=[3],
            target=[None],
            calibration=[L, r(4)],
            batch_size=[0],
        ),
        "deploy.distillation_loss": lambda: case(
            dict(student_logits=r(2, 3), teacher_logits=r(2, 3), labels=lab(0, 1), T=2.0),
            student_logits=[L, r(3)],
            teacher_logits=[L, r(2, 4)],
            labels=[L, lab(0)],
            T=[S, 0.0],
            alpha=[2.0],
        ),
        "deploy.fit_student": lambda: case(
            dict(student=linear_net(), data=(r(4, 4), lab(0, 1, 0, 1)), epochs=1),
            student=[S],
            data=[S, (r(4, 4), lab(0, 1))],
            teacher_logits=[L, r(3, 2)],
            epochs=[0],
        ),
        "deploy.frame_budget": lambda: case(dict(fps=30.0), fps=[S, 0.0], other_ms=[-1.0]),
        # detect
        "detect.gaussian_sigma": lambda: case(
            dict(wh=torch.tensor([[24.0, 24.0]]), stride=4), wh=[L, r(2), r(2, 3)], stride=[S]
        ),
        "detect.encode": lambda: case(
            dict(
                boxes=torch.tensor([[8.0, 8.0, 18.0, 14.0]]),
                labels=lab(1),
                num_classes=2,
                image_size=32,
            ),
            boxes=[L, r(4)],
            labels=[L, lab(0, 1)],
            num_classes=[S],
        ),
        "detect.encode_batch": lambda: case(
            dict(targets=_targets(), num_classes=1, image_size=16),
            targets=[S, [], [S], [{"boxes": r(1, 4)}], [{"boxes": r(4), "labels": lab(0)}]],
            num_classes=[S],
        ),
        "detect.peaks": lambda: case(dict(heatmap=r(1, 1, 1, 5)), heatmap=[L, r(5)], kernel=[S, 2]),
        "detect.decode": lambda: case(
            dict(heatmap=r(1, 2, 8, 8), size=r(1, 2, 8, 8), offset=r(1, 2, 8, 8)),
            heatmap=[L, r(2, 8, 8)],
            size=[L, r(1, 2, 4, 4)],
            offset=[L, r(1, 3, 8, 8)],
            k=[S],
        ),
        "detect.CenterNet": lambda: case(
            dict(num_classes=2, widths=(4, 4, 4)), num_classes=[S], widths=[S, (16, 32)]
        ),
        "detect.CenterNet.forward": lambda: case(
            dict(x=r(1, 3, 32, 32)),
            call=x("detect", "CenterNet")(2, (4, 4, 4)),
            x=[L, r(3, 32, 32), r(1, 1, 32, 32)],
        ),
        "detect.focal_loss": lambda: case(
            dict(logits=r(1, 1, 2, 2), target=r(1, 1, 2, 2)),
            logits=[L, r(1, 1, 2, 3), r(4)],
            target=[L, r(4)],
        ),
        "detect.centernet_loss": lambda: case(
            dict(outputs=_centernet_outputs(), targets=_encoded()),
            outputs=[
                S,
                {"heatmap": r(1, 1, 4, 4)},
                {**_centernet_outputs(), "size": r(1, 2, 8, 8)},
            ],
            targets=[
                S,
                {"mask": r(1, 4, 4)},
                {**_encoded(), "mask": torch.ones(1, 8, 8, dtype=torch.bool)},
            ],
        ),
        "detect.detect": lambda: case(
            dict(model=x("detect", "CenterNet")(2, (4, 4, 4)), images=r(1, 3, 32, 32)),
            images=[L, r(3, 32, 32)],
            k=[S],
        ),
        "detect.draw_boxes": lambda: case(
            dict(ax=axes(), boxes=_boxes(), labels=lab(0, 1, 0), scores=r(3)),
            boxes=[L, r(4)],
            labels=[L, lab(0, 1)],
            scores=[L, r(2)],
        ),
        "detect.faster_rcnn": lambda: case(
            dict(num_classes=6), num_classes=[S], pretrained=[S], timeout=[S]
        ),
        # faces
        "faces.face_net": lambda: case(dict(width=2), width=[S]),
        "faces.to_grey": lambda: case(dict(image=r(3, 2, 2)), image=[L, r(2, 2, 2)]),
        "faces.score_map": lambda: case(
            dict(model=x("faces", "face_net")(2), image=r(1, 41, 29)),
            image=[L, r(3, 41, 29)],
            model=[S],
        ),
        "faces.map_to_boxes": lambda: case(
            dict(probs=torch.tensor([[0.2, 0.9]]), scale=0.5, threshold=0.5),
            probs=[L, r(2)],
            scale=[S],
            threshold=[S],
        ),
        "faces.rescale": lambda: case(
            dict(grey=r(1, 100, 80), scale=0.5), grey=[L, r(100, 80)], scale=[S]
        ),
        "faces.windows": lambda: case(
            dict(grey=r(1, 33, 29)), grey=[L, r(33, 29), r(3, 33, 29), r(1, 10, 10)]
        ),
        "faces.hard_negatives": lambda: case(
            dict(model=x("faces", "face_net")(2), image=r(1, 40, 40), scales=[1.0]),
            image=[L, r(40, 40)],
            scales=[S, 1.0],
            threshold=[S],
        ),
        "faces.detect_faces": lambda: case(
            dict(model=x("faces", "face_net")(2), image=r(3, 60, 60), scales=[1.0, 0.5]),
            image=[L, r(60, 60)],
            scales=[S, 0.5],
            threshold=[S],
            iou_threshold=[S],
        ),
        "faces.embed": lambda: case(
            dict(model=x("faces", "face_net")(2), windows=r(3, 1, 25, 25)),
            windows=[L, r(3, 25, 25)],
        ),
        # features
        "features.capture": lambda: case(
            dict(layers={"conv": nn.Conv2d(1, 2, 3)}), layers=[S, [nn.Conv2d(1, 2, 3)]]
        ),
        "features.top_activating": lambda: case(
            dict(model=nn.Sequential(nn.Conv2d(1, 2, 1)), layer=None, X=r(4, 1, 2, 2), k=2),
            X=[L, r(4)],
            k=[S],
        ),
        "features.top_activating_layers": lambda: case(
            dict(model=nn.Sequential(nn.Conv2d(1, 2, 1)), layers=None, X=r(4, 1, 2, 2), k=2),
            X=[L, r(4)],
            layers=[S],
        ),
        "features.gradient_receptive_fields": lambda: case(
            dict(
                model=nn.Sequential(nn.Conv2d(1, 1, 3, padding=1)), layers=None, x=r(1, 1, 16, 16)
            ),
            x=[L, r(16, 16)],
            layers=[S],
        ),
        "features.receptive_field_patches": lambda: case(
            dict(
                images=torch.ones(1, 1, 4, 4),
                positions=torch.tensor([[0, 0]]),
                rf={"rf": 3, "jump": 1, "start": 0.0},
            ),
            images=[L, r(4, 4)],
            positions=[L, torch.tensor([0, 0])],
            rf=[S],
        ),
        "features.to_unit_range": lambda: case(dict(maps=r(2, 1, 2)), maps=[L, r(3)]),
        "features.orientation_share": lambda: case(dict(images=r(2, 1, 4, 4)), images=[L, r(4, 4)]),
        "features.edges_and_gratings": lambda: case(dict(), size=[S]),
        # generative
        "generative.dcgan_generator": lambda: case(
            dict(z_dim=8, channels=8), z_dim=[S], channels=[S]
        ),
        "generative.dcgan_discriminator": lambda: case(
            dict(channels=8), channels=[S], in_channels=[S]
        ),
        "generative.mlp_generator": lambda: case(dict(z_dim=8, hidden=16), z_dim=[S], hidden=[S]),
        "generative.MinibatchDiscrimination": lambda: case(
            dict(in_features=5, num_kernels=3, kernel_dim=2), in_features=[S]
        ),
        "generative.MinibatchDiscrimination.forward": lambda: case(
            dict(f=r(4, 5)),
            call=x("generative", "MinibatchDiscrimination")(5, 3, 2),
            f=[L, r(4, 6), r(5)],
        ),
        "generative.mlp_discriminator": lambda: case(
            dict(hidden=16, minibatch_kernels=4), hidden=[S], minibatch_kernels=[S]
        ),
        "generative.one_hot": lambda: case(
            dict(y=lab(2), num_classes=4), y=[L, torch.zeros(2, 2).long(), lab(5)], num_classes=[S]
        ),
        "generative.ConditionalGenerator": lambda: case(
            dict(z_dim=8, channels=8), z_dim=[S], num_classes=[S]
        ),
        "generative.ConditionalGenerator.forward": lambda: case(
            dict(z=torch.randn(3, 8), y=lab(0, 1, 9)),
            call=x("generative", "ConditionalGenerator")(8, 8),
            z=[L, r(3, 4), r(8)],
            y=[L, lab(0, 1)],
        ),
        "generative.ConditionalDiscriminator": lambda: case(
            dict(channels=8), channels=[S], num_classes=[S]
        ),
        "generative.ConditionalDiscriminator.forward": lambda: case(
            dict(x=r(3, 1, 28, 28), y=lab(0, 1, 9)),
            call=x("generative", "ConditionalDiscriminator")(4),
            x=[L, r(3, 28, 28)],
            y=[L, lab(0)],
        ),
        "generative.d_loss": lambda: case(
            dict(real_logits=r(2, 1), fake_logits=r(2, 1)), real_logits=[L], fake_logits=[L]
        ),
        "generative.g_loss": lambda: case(dict(fake_logits=r(2, 1)), fake_logits=[L]),
        "generative.d_step": lambda: case(
            _d_step(), x=[L, r(2, 28, 28)], fake=[L, r(2, 1, 14, 14)], opt_D=[S], y=[L, lab(0)]
        ),
        "generative.g_step": lambda: case(_g_step(), fake=[L, r(2, 28, 28)], opt_G=[S]),
        "generative.VAE": lambda: case(dict(z_dim=2, hidden=32), z_dim=[S], hidden=[S]),
        "generative.VAE.forward": lambda: case(
            dict(x=r(5, 1, 28, 28)),
            call=x("generative", "VAE")(2, 32),
            x=[L, r(5, 28, 28), r(5, 1, 14, 14)],
        ),
        "generative.reparameterize": lambda: case(
            dict(mu=torch.zeros(1, 2), logvar=torch.zeros(1, 2), eps=torch.ones(1, 2)),
            mu=[L],
            logvar=[L, torch.zeros(1, 3)],
            eps=[L, torch.zeros(1, 3)],
        ),
        "generative.vae_loss": lambda: case(
            dict(
                x=r(1, 1, 28, 28),
                recon_logits=r(1, 1, 28, 28),
                mu=torch.zeros(1, 2),
                logvar=torch.zeros(1, 2),
            ),
            x=[L, r(1, 28, 28)],
            recon_logits=[L, r(1, 1, 14, 14)],
            mu=[L, torch.zeros(2, 2)],
            logvar=[L, torch.zeros(1, 3)],
        ),
        "generative.classifier_outputs": lambda: case(
            dict(clf=_digit_clf(), images=r(3, 1, 28, 28)), images=[L, r(3, 28, 28)], batch_size=[S]
        ),
        "generative.class_histogram": lambda: case(
            dict(logits=r(4, 2), num_classes=2), logits=[L, r(4)], num_classes=[S]
        ),
        "generative.entropy": lambda: case(dict(p=np.full(10, 0.1)), p=[S, np.full((2, 2), 0.25)]),
        "generative.mean_confidence": lambda: case(dict(logits=r(2, 2)), logits=[L, r(3)]),
        "generative.gaussian_stats": lambda: case(
            dict(features=np.zeros((2, 2))), features=[S, np.zeros(3)]
        ),
        "generative.frechet_distance": lambda: case(
            dict(mu1=np.zeros(2), cov1=np.eye(2), mu2=np.ones(2), cov2=np.eye(2)),
            mu1=[S, np.zeros(3)],
            cov1=[S, np.eye(3)],
        ),
        "generative.frechet_distance_features": lambda: case(
            dict(
                f1=np.random.default_rng(0).normal(size=(5, 3)),
                f2=np.random.default_rng(1).normal(size=(5, 3)),
            ),
            f1=[S, np.zeros(5)],
            f2=[S, np.zeros((5, 4))],
        ),
        "generative.sample_report": lambda: case(
            dict(clf=_digit_clf(), images=r(3, 1, 28, 28), reference_features=r(5, 16)),
            images=[L, r(3, 28, 28)],
            reference_features=[L, r(5, 7)],
        ),
        # imagenet
        "imagenet.efficientnet_lite0": lambda: case(
            dict(num_classes=10), num_classes=[S], dropout=[S]
        ),
        "imagenet.sha256sum": lambda: case(dict(path=__file__), path=[None]),
        "imagenet.load_weights": lambda: case(
            dict(model=x("imagenet", "efficientnet_lite0")()),
            model=[S, nn.Linear(2, 2)],
            path=[1],
            sha256=[1],
        ),
        "imagenet.pretrained": lambda: case(dict(device="cpu"), device=[1]),
        "imagenet.crop_box": lambda: case(dict(height=300, width=451), height=[S], width=[S]),
        "imagenet.preprocess": lambda: case(
            dict(image=r(3, 30, 40), size=32), image=[L, r(30, 40)], size=[S]
        ),
        "imagenet.to_display": lambda: case(dict(x=r(1, 3, 2, 2)), x=[L, r(2, 2)]),
        "imagenet.box_after_preprocess": lambda: case(
            dict(box=(94, 19, 356, 281), height=300, width=451), box=[S, (1, 2)], height=[S]
        ),
        "imagenet.top_k": lambda: case(
            dict(model=x("imagenet", "efficientnet_lite0")().eval(), x=r(1, 3, 32, 32), k=3),
            x=[L, r(3, 32)],
            k=[S],
        ),
        # models
        "models.mlp": lambda: case(
            dict(in_features=4, hidden=(8,), num_classes=2), in_features=[S], hidden=[8, (S,)]
        ),
        "models.lenet": lambda: case(dict(), num_classes=[S], in_channels=[S]),
        "models.conv_block": lambda: case(
            dict(c_in=3, c_out=8), c_in=[S], c_out=[S], kernel_size=[S, 4]
        ),
        "models.digits_cnn": lambda: case(
            dict(num_classes=10), num_classes=[S], channels=[16, (16, 32)], hidden=[S]
        ),
        "models.small_cnn": lambda: case(dict(num_classes=5), num_classes=[S], channels=[16, (S,)]),
        # optim
        "optim.UpdateRule": lambda: case(
            dict(params=[with_grad(r(2))], defaults={"lr": 0.1}), params=[S, [S]], defaults=[S]
        ),
        "optim.SGD": lambda: case(
            dict(params=[with_grad(r(2))], lr=0.1), params=[S, [S]], lr=[S], momentum=[S]
        ),
        "optim.RMSProp": lambda: case(
            dict(params=[with_grad(r(2))], lr=0.1), params=[S, [S]], lr=[S], alpha=[S]
        ),
        "optim.Adam": lambda: case(
            dict(params=[with_grad(r(2))], lr=0.1), params=[S, [S]], lr=[S], betas=[S, (0.9,)]
        ),
        "optim.step_schedule": lambda: case(
            dict(step=0, base_lr=1.0, step_size=2), step=[S], base_lr=[S], step_size=[S]
        ),
        "optim.cosine_schedule": lambda: case(
            dict(step=5, total_steps=10, base_lr=1.0), step=[S], total_steps=[S], base_lr=[S]
        ),
        "optim.one_cycle_schedule": lambda: case(
            dict(step=0, total_steps=10, max_lr=1.0), step=[S], max_lr=[S], pct_start=[S]
        ),
        "optim.lr_range_test": lambda: case(
            dict(
                model=nn.Linear(2, 2),
                data=_data(16),
                lr_max=0.1,
                num_steps=3,
                device=torch.device("cpu"),
            ),
            data=[S, _mismatched()],
            num_steps=[S],
        ),
        "optim.suggest_lr": lambda: case(
            dict(result={"lrs": [0.01, 0.1, 1.0], "losses": [2.0, 1.0, 5.0]}),
            result=[S, {"lrs": [0.1]}],
        ),
        "optim.gradient_norm": lambda: case(
            dict(parameters=[with_grad(r(2))]), parameters=[S, [S]]
        ),
        # perceptron
        "perceptron.augment": lambda: case(dict(X=[[2.0, 3.0]]), X=[S, np.ones(3)]),
        "perceptron.perceptron_predict": lambda: case(
            dict(w=[1.0, -1.0, 0.0], X=[[2.0, 1.0], [0.0, 3.0]]),
            w=[S, np.ones(2)],
            X=[S, np.ones((2, 3))],
        ),
        "perceptron.train_perceptron": lambda: case(
            dict(X=[[1.0, 1.0], [-1.0, -1.0]], y=[1, -1]),
            X=[S, np.ones(2)],
            y=[S, np.ones(3)],
            epochs=[S],
        ),
        "perceptron.geometric_margin": lambda: case(
            dict(w=[0.0, 1.0, 0.0], X=[[0.0, 2.0], [5.0, -1.0]], y=[1, -1]),
            w=[S, np.ones(2)],
            X=[S],
            y=[np.ones(3)],
        ),
        "perceptron.mistake_bound": lambda: case(
            dict(w_star=[0.0, 1.0, 0.0], X=[[0.0, 2.0], [0.0, -1.0]], y=[1, -1]),
            w_star=[S, np.ones(2)],
            X=[S],
        ),
        "perceptron.margin_data": lambda: case(
            dict(n=5, margin=0.1, w_star=[1.0, -1.0, 0.0]),
            n=[S],
            margin=[S],
            w_star=[S, np.ones(2)],
        ),
        "perceptron.is_linearly_separable": lambda: case(
            dict(X=[[0, 0], [1, 1]], y=[-1, 1]), X=[S, np.ones(2)], y=[S, np.ones(3)]
        ),
        "perceptron.plot_decision_boundary": lambda: case(
            dict(
                predict=lambda P: P[:, 0] > 0, X=[[-1.0, 0.0], [1.0, 0.0]], y=[0, 1], resolution=10
            ),
            predict=[S],
            X=[S, np.ones(2)],
            y=[np.ones(3)],
        ),
        # plot
        "plot.to_hwc": lambda: case(dict(image=r(3, 4, 5)), image=[L, r(4), r(2, 4, 5)]),
        "plot.show_source": lambda: case(
            dict(objects=(_lazy("plot", "to_hwc"),)),
            call=lambda objects, docstring=False: _lazy("plot", "show_source")(
                *objects, docstring=docstring
            ),
            objects=[(S,), ()],
            docstring=[S],
        ),
        "plot.show_images": lambda: case(
            dict(images=r(2, 1, 8, 8), labels=["a", "b"]),
            images=[S, r(8)],
            labels=[S, ["a"]],
            ncols=[S],
        ),
        "plot.plot_history": lambda: case(
            dict(history={"train_loss": [1.0, 0.5]}), history=[S, {"train_loss": 1.0}]
        ),
        "plot.confusion_matrix": lambda: case(
            dict(y_true=lab(0, 1, 1), y_pred=lab(0, 0, 1), num_classes=2),
            y_true=[L, lab(0, 1)],
            y_pred=[L, torch.zeros(3, 2).long()],
            num_classes=[S],
        ),
        "plot.plot_confusion_matrix": lambda: case(
            dict(y_true=lab(0, 1, 1), y_pred=lab(0, 0, 1), classes=["cat", "dog"]),
            y_true=[L, lab(0, 1)],
            y_pred=[L],
            classes=[S, ["cat"]],
        ),
        # profile
        "profile.count_parameters": lambda: case(dict(model=nn.Linear(3, 2)), model=[S]),
        "profile.layer_table": lambda: case(
            dict(model=nn.Sequential(nn.Linear(3, 2)), input_shape=(3,)), model=[S], input_shape=[S]
        ),
        "profile.count_macs": lambda: case(
            dict(model=nn.Conv2d(1, 2, 3), input_shape=(1, 4, 4)), model=[S], input_shape=[S]
        ),
        "profile.time_per_batch": lambda: case(
            dict(model=nn.Linear(4, 2), input_shape=(4,), batch_size=2, repeats=1),
            model=[S],
            input_shape=[S],
            batch_size=[S],
        ),
        # runtimes
        "tools.runtimes.measure": lambda: case(
            dict(notebook=_notebook_dir() / "a.ipynb"),
            run_valid=False,
            notebook=[None],
            timeout=[S],
        ),
        "tools.runtimes.measure_book": lambda: case(
            dict(notebooks=[_notebook_dir() / "a.ipynb"]),
            run_valid=False,
            notebooks=[None, [1], []],
            timeout=[S],
        ),
        "tools.runtimes.runtime_table": lambda: case(dict(path=_runtimes_json()), path=[1]),
        # segmentation
        "segmentation.double_conv": lambda: case(dict(c_in=3, c_out=8), c_in=[S], c_out=[S]),
        "segmentation.UNet": lambda: case(dict(widths=(4, 8)), in_channels=[S], widths=[8, (S,)]),
        "segmentation.UNet.forward": lambda: case(
            dict(x=r(2, 3, 16, 16)),
            call=x("segmentation", "UNet")(widths=(4, 8)),
            x=[L, r(3, 16, 16), r(2, 1, 16, 16), r(2, 3, 15, 15)],
        ),
        "segmentation.dice": lambda: case(
            dict(pred=mask(1, 3), target=mask(1, 3)), pred=[L, mask(1, 2)], target=[L, mask(3)]
        ),
        "segmentation.iou": lambda: case(
            dict(pred=mask(1, 3), target=mask(1, 3)), pred=[L, mask(1, 2)], target=[L, mask(3)]
        ),
        "segmentation.soft_dice_loss": lambda: case(
            dict(logits=r(1, 4, 4), target=torch.ones(1, 4, 4)),
            logits=[L, r(4)],
            target=[L, torch.ones(1, 4, 5)],
            eps=[S],
        ),
        # shapes
        "shapes.render_masks": lambda: case(
            dict(
                kinds=lab(0),
                centers=torch.tensor([[8.0, 8.0]]),
                radii=torch.tensor([4.0]),
                angles=torch.zeros(1),
                size=16,
            ),
            kinds=[L, lab(0, 1)],
            centers=[L, torch.tensor([8.0, 8.0])],
            radii=[L, torch.ones(2)],
            angles=[L, torch.zeros(1, 1)],
            size=[S],
        ),
        "shapes.textured_background": lambda: case(
            dict(n=2, size=16, generator=torch.Generator().manual_seed(0)),
            n=[S],
            size=[S],
            generator=[S, 0],
            noise=[S],
        ),
        "shapes.make_shapes": lambda: case(
            dict(n=2, size=16), n=[S], size=[S], classes=["circle"], seed=[S]
        ),
        "shapes.make_scenes": lambda: case(
            dict(n=1, size=32), n=[S], size=[S], classes=["circle"], min_objects=[S]
        ),
        # seedspread
        "tools.seedspread.parse_checks": lambda: case(
            dict(nb=__import__("nbformat").v4.new_notebook()), nb=[S, {}]
        ),
        "tools.seedspread.parse_errors": lambda: case(
            dict(nb=__import__("nbformat").v4.new_notebook()), nb=[S, {}]
        ),
        "tools.seedspread.spread_table": lambda: case(
            dict(results={"cnn": [[(1, "acc", "≥", 0.98, 0.97)]] * 2}), results=[S, {"cnn": S}]
        ),
        # rehearse
        "tools.rehearse.full_mode_chapters": lambda: case(
            dict(notebooks=[_notebook_dir() / "a.ipynb"]), notebooks=[S, [1]]
        ),
        "tools.rehearse.write_standins": lambda: case(
            dict(folder=tmpdir()), run_valid=False, folder=[1, tmpdir() / "missing"]
        ),
        "config.quick_or_full": lambda: case(dict(quick=8, full=12), full=[S, 12.0]),
        # student, syllabus
        "tools.student.strip_solutions": lambda: case(
            dict(nb=__import__("nbformat").v4.new_notebook()), nb=[S, {}], solved=[S]
        ),
        "tools.student.write_student_copies": lambda: case(
            dict(src=_notebook_dir(), dest=tmpdir() / "out"), src=[None], dest=[None], solved=[S]
        ),
        "tools.student.make_stub": lambda: case(
            dict(solutions=["w = 1"], check="check_true(w == 1, 'w')", title="T"),
            solutions=[S, [1]],
            check=[1],
            title=[1],
        ),
        "tools.student.wrap_check": lambda: case(
            dict(check="check_true(w, 'w')", label="ex-w", needs={"w": "a weight"}),
            check=[1],
            label=[1],
            needs=[S],
        ),
        # grade
        "tools.grade.exercise_checks": lambda: case(
            dict(chapter=ROOT / "book" / "perceptron.ipynb"), chapter=[None, "x.txt"]
        ),
        "tools.grade.prepare_submission": lambda: case(
            dict(
                nb=__import__("nbformat").v4.new_notebook(), checks={"ex-w": "check_true(w, 'w')"}
            ),
            nb=[S, {}],
            checks=[S],
        ),
        "tools.grade.with_student_run": lambda: case(
            dict(nb=__import__("nbformat").read(ROOT / "book" / "perceptron.ipynb", as_version=4)),
            nb=[S, {}],
        ),
        "tools.grade.split_student_run": lambda: case(
            dict(executed=__import__("nbformat").v4.new_notebook(), labels=["ex-w"]),
            executed=[S, {}],
            labels=[S, [1]],
        ),
        "tools.grade.grade": lambda: case(
            dict(
                chapter=ROOT / "book" / "perceptron.ipynb",
                submissions=_notebook_dir(),
                out=tmpdir() / "grades",
            ),
            run_valid=False,
            chapter=[None],
            submissions=[None],
            out=[1],
            timeout=[S],
            jobs=[S, 0],
        ),
        "tools.syllabus.chapter_facts": lambda: case(dict(path=_chapter()), path=[None]),
        "tools.syllabus.guide_markdown": lambda: case(
            dict(chapters=[_chapter()], runtimes=_runtimes_json()),
            chapters=[S, [None]],
            runtimes=[None],
        ),
        # train
        "train.batches": lambda: case(
            dict(data=_data(5), batch_size=2),
            data=[S, _mismatched()],
            batch_size=[S],
            generator=[S],
        ),
        "train.accuracy": lambda: case(
            dict(logits=r(2, 2), y=lab(0, 0)), logits=[L, r(2)], y=[L, lab(0)]
        ),
        "train.predict": lambda: case(
            dict(model=nn.Linear(2, 2), data=_data()), data=[S, _mismatched()], batch_size=[S]
        ),
        "train.evaluate": lambda: case(
            dict(model=nn.Linear(2, 2), data=_data()), data=[S, _mismatched()], batch_size=[S]
        ),
        "train.train_epoch": lambda: case(
            dict(
                model=nn.Linear(2, 2),
                data=_data(),
                optimizer=None,
                loss_fn=nn.functional.cross_entropy,
                batch_size=4,
                generator=torch.Generator(),
                device=torch.device("cpu"),
            ),
            data=[S, _mismatched()],
            batch_size=[S],
            optimizer=[S],
        ),
        "train.fit": lambda: case(
            dict(model=nn.Linear(2, 2), train_data=_data(), epochs=1, verbose=False),
            train_data=[S, _mismatched()],
            val_data=[S, _mismatched()],
            epochs=[S],
            checkpoint=[1],
            checkpoint_every=[S, 0],
            resume=[S, True],
        ),
        # transfer
        "transfer.subset_classes": lambda: case(
            dict(X=r(5, 2), y=lab(3, 1, 4, 1, 5), classes=[4, 1]),
            X=[L, r(4, 2)],
            y=[L, lab(1, 2)],
            classes=[S],
        ),
        "transfer.few_shot": lambda: case(
            dict(y=lab(0, 1, 0, 1), per_class=1), y=[L, torch.zeros(2, 2).long()], per_class=[S]
        ),
        "transfer.freeze": lambda: case(dict(module=nn.Linear(2, 2)), module=[S]),
        "transfer.count_trainable": lambda: case(dict(model=nn.Linear(2, 2)), model=[S]),
        "transfer.bn_eval": lambda: case(dict(module=nn.BatchNorm2d(2)), module=[S]),
        "transfer.discriminative_lrs": lambda: case(
            dict(blocks=[nn.Linear(2, 2), nn.Linear(2, 2)], lr=0.01),
            blocks=[S, [S]],
            lr=[S],
            factor=[S],
        ),
        "transfer.extract_features": lambda: case(
            dict(trunk=nn.Flatten(), X=r(3, 2, 2)), X=[L, torch.tensor(1.0)], batch_size=[S]
        ),
        "transfer.imagenet_features": lambda: case(
            dict(trunk=x("imagenet", "efficientnet_lite0")()[:-2], X=r(2, 1, 25, 25), size=32),
            X=[L, r(2, 25, 25)],
            size=[S],
        ),
        "transfer.split_at": lambda: case(
            dict(
                model=nn.Sequential(
                    __import__("collections").OrderedDict(
                        a=nn.Linear(4, 3), b=nn.ReLU(), c=nn.Linear(3, 5)
                    )
                ),
                name="b",
                num_classes=2,
            ),
            model=[S],
            name=[1, "nope"],
            num_classes=[S],
        ),
        "transfer.texture_patches": lambda: case(
            dict(images=[torch.zeros(1, 4, 8), torch.ones(1, 4, 8)], size=2),
            images=[S, [r(4, 8), r(4, 8)]],
            size=[S],
        ),
        "transfer.train_linear_probe": lambda: case(
            dict(features=r(2, 1), y=lab(0, 1), num_classes=2, steps=2),
            features=[L, r(2)],
            y=[L, lab(0)],
            num_classes=[S],
        ),
        "transfer.fine_tune": lambda: case(
            dict(model=nn.Linear(2, 2), X=r(8, 2), y=torch.arange(8) % 2, steps=1, optimizer=None),
            X=[L, r(7, 2)],
            y=[L, lab(0)],
            steps=[S],
        ),
        "transfer.replace_head": lambda: case(
            dict(model=nn.Sequential(nn.Flatten(), nn.Linear(4, 10)), num_classes=3),
            model=[S],
            num_classes=[S],
        ),
        "transfer.resnet18_transfer": lambda: case(
            dict(num_classes=10, weights=None), num_classes=[S], weights=[1], timeout=[S]
        ),
        "transfer.imagenet_weights_available": lambda: case(dict(timeout=1.0), timeout=[S]),
        "transfer.resnet18_few_shot": lambda: case(
            dict(
                method="from scratch",
                train=(r(2, 3, 32, 32), lab(0, 1)),
                test=(r(2, 3, 32, 32), lab(0, 1)),
                num_classes=2,
                steps=1,
                weights=None,
            ),
            method=[1, "nope"],
            train=[S, (r(2, 3, 32, 32), lab(0))],
            test=[S],
        ),
        # zoo
        "zoo.register": lambda: case(dict(recipe=_recipe()), recipe=[S]),
        "zoo.recipe_key": lambda: case(dict(recipe=_recipe()), recipe=[S]),
        "zoo.checkpoint_path": lambda: case(dict(name="mnist_cnn"), name=[1, "nope"]),
        "zoo.digest": lambda: case(
            dict(state={"w": torch.zeros(2)}, record={}), state=[S], record=[S]
        ),
        "zoo.save_checkpoint": lambda: case(
            dict(model=nn.Linear(2, 2), path=tmpdir() / "m.pt", record={"key": "k"}),
            model=[S],
            path=[None],
            record=[S],
        ),
        "zoo.load_checkpoint": lambda: case(_saved_checkpoint(), model=[S], path=[None], key=[1]),
        "zoo.get": lambda: case(
            dict(name="mnist_cnn"), run_valid=False, name=[1, "nope"], device=[1], retrain=[S]
        ),
    }


CASES = _cases()

# Cases whose tensors may have any shape by design: only the wrong type is tried.
ANY_SHAPE = {
    **{f"activations.{n}": "elementwise: any shape is a valid input" for n in ELEMENTWISE},
    **{
        f"activations.{n}": "reduces along `dim` of a tensor of any shape"
        for n in ("logsumexp", "log_softmax", "softmax")
    },
    "autograd.ReLU.forward": "elementwise: any array shape is a valid input",
    "autograd.numerical_gradient": "differentiates a function of an array of any shape",
    "checks.check_close": (
        "compares values of any shape; a shape mismatch is a failed check "
        "(AssertionError), by design"
    ),
    "checks.check_equal": "compares any two Python objects with ==; only `name` must be a string",
    "generative.d_loss": "mean of an elementwise loss over logits of any shape",
    "generative.g_loss": "mean of an elementwise loss over logits of any shape",
    "diffusion.to_pixels": "elementwise: images of any shape are mapped from [-1, 1] to [0, 1]",
    "distributed.ring_all_reduce": "sums a tensor of any shape over the processes",
}

# Callables that take no arguments: nothing can be passed wrongly.
NO_ARGUMENTS = {
    "autograd.ReLU": "a layer without parameters",
    "autograd.SoftmaxCrossEntropy": "a loss without parameters",
    "config.device": "reads the machine",
    "distributed.free_port": "asks the operating system for a free port",
    "config.data_home": (
        "reads VISIONBOOK_HOME (a bad value is an OSError when the directory cannot be made)"
    ),
    "config.offline": (
        "reads VISIONBOOK_OFFLINE (a bad value is a ValueError, tested in test_config)"
    ),
    "config.full": "reads VISIONBOOK_FULL (a bad value is a ValueError, tested in test_config)",
    "config.progress_enabled": (
        "reads VISIONBOOK_PROGRESS (a bad value is a ValueError, tested in test_config)"
    ),
    "config.rehearsal": (
        "reads VISIONBOOK_REHEARSAL (a bad value is a ValueError, tested in test_rehearse)"
    ),
    "config.seed_offset": (
        "reads VISIONBOOK_SEED_OFFSET (a bad value is a ValueError, tested in test_config)"
    ),
    "data.load_fashion_mnist": (
        "reads the data home (DataUnavailableError offline, tested in test_offline)"
    ),
    "data.load_cifar10": (
        "reads the data home (DataUnavailableError offline, tested in test_offline)"
    ),
    "data.lfw_faces": "bundled data",
    "imagenet.name_map": "a constant table",
    "imagenet.weights_path": "finds the installed weights file",
    "imagenet.class_names": "a constant list",
    "tools.runtimes.skip_output_widget_mimic": "switches a library setting",
    "zoo.names": "lists the registered recipes",
}

# Plain records: named tuples and dataclasses that hold what they are given; the functions
# that make or take them check their contents.
RECORDS = {
    "calibration.Reliability": "named tuple returned by reliability()",
    "features.Recording": "dataclass filled by record()",
    "cam.TopCams": "named tuple returned by top_k_grad_cams()",
    "data.Splits": "named tuple returned by the loaders",
    "diffusion.Schedule": "named tuple returned by noise_schedule()",
    "imagenet.Photo": "named tuple of the constant PHOTOS",
    "perceptron.PerceptronRun": "named tuple returned by train_perceptron()",
    "shapes.ShapesData": "named tuple returned by make_shapes()",
    "shapes.ShapeScenes": "named tuple returned by make_scenes()",
    "contrastive.CaptionedShapes": "named tuple returned by captioned_shapes()",
    "zoo.Recipe": "frozen dataclass; register() checks it",
    "tools.grade.Grade": "named tuple returned by grade()",
}

EXCEPTIONS = {
    "data.DataUnavailableError": "an exception class",
    "imagenet.WeightsError": "an exception class",
    "zoo.CorruptCheckpointError": "an exception class",
}

CLI = {
    "tools.bookbuild.main": (
        "command-line entry point: argparse checks argv and exits with a usage message"
    ),
    "tools.runtimes.main": (
        "command-line entry point: argparse checks argv and exits with a usage message"
    ),
    "tools.seedspread.main": (
        "command-line entry point: argparse checks argv and exits with a usage message"
    ),
    "tools.rehearse.main": (
        "command-line entry point: argparse checks argv and exits with a usage message"
    ),
    "tools.student.main": (
        "command-line entry point: argparse checks argv and exits with a usage message"
    ),
    "tools.grade.main": (
        "command-line entry point: argparse checks argv and exits with a usage message"
    ),
}

# Valid calls not run here (the wrong calls are still tried).
RUN_VALID_SKIPPED = {
    "tools.bookbuild.execute_into_cache": "executes notebooks in child processes",
    "data.download": "needs a network; tested with file:// URLs in test_data",
    "data.pretrained": "needs a network or cached weights; tested with stand-ins in test_data",
    "tools.runtimes.measure": "executes a notebook",
    "tools.rehearse.write_standins": "writes about 130 MB; run in test_rehearse",
    "tools.runtimes.measure_book": "executes notebooks",
    "tools.grade.grade": "executes notebooks in child processes",
    "zoo.get": "trains a model when it is not cached (seconds)",
    "distributed.launch": "starts two Python processes (seconds); run in test_distributed",
}

# Modules that another change owns now: their failing cases are expected failures until fixed there.
OTHERS = {
    *("adversarial", "blocks", "bookbuild", "cam", "diagrams", "features", "imagenet", "profile"),
    *("runtimes", "seedspread", "student", "syllabus", "transfer"),
}
PENDING: dict[str, str] = {}


# --- the tests ---------------------------------------------------------------------------------


def _public_callables() -> dict[str, object]:
    found = {}
    # and visionbook.tools.*
    for info in pkgutil.walk_packages(visionbook.__path__, prefix="visionbook."):
        module = importlib.import_module(info.name)
        info = info._replace(name=info.name.removeprefix("visionbook."))
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                found[f"{info.name}.{name}"] = obj
    return found


def _resolve(name: str) -> object:
    module, *attrs = name.split(".")
    if module == "tools":  # a module of the subpackage: visionbook.tools.<module>
        module, *attrs = f"tools.{attrs[0]}", *attrs[1:]
    obj = importlib.import_module(f"visionbook.{module}")
    for attr in attrs:
        obj = getattr(obj, attr)
    return obj


def _finish(result: object) -> None:
    """Run what a call only prepared: enter a context manager, take the first item of a
    generator."""
    if isinstance(result, contextlib.AbstractContextManager) and not isinstance(
        result, nn.Module | Path
    ):
        with result:
            pass
    elif inspect.isgenerator(result):
        next(result, None)
        result.close()


def _fill(name: str, kwargs: dict) -> dict:
    """Arguments that depend on others (optimisers over the model, layers of the model)."""
    if kwargs.get("optimizer", 0) is None:
        kwargs["optimizer"] = torch.optim.SGD(kwargs["model"].parameters(), lr=0.1)
    for key in ("layer", "layers"):
        if key in kwargs and kwargs[key] is None:
            first = kwargs["model"][0]
            kwargs[key] = first if key == "layer" else {"first": first}
    return kwargs


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor | np.ndarray):
        return f"{type(value).__name__}{tuple(value.shape)}"
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _is_array(value: object) -> bool:
    return isinstance(value, torch.Tensor | np.ndarray)


def _wrong_calls(name: str) -> list[str]:
    """Call ``name`` with each wrong value; return what did not raise a clear error."""
    problems = []
    for arg, values in CASES[name]().bad.items():
        for i in range(len(values)):
            # new valid arguments for every call: some calls change their inputs
            fresh = CASES[name]()
            call = fresh.call or _resolve(name)
            kwargs = _fill(name, dict(fresh.valid))
            kwargs[arg] = fresh.bad[arg][i]
            shown = f"{arg}={_describe(kwargs[arg])}"
            try:
                _finish(call(**kwargs))
            except (TypeError, ValueError) as err:
                if "expected" not in str(err):
                    problems.append(f"{shown}: {type(err).__name__} without 'expected': {err}")
            except Exception as err:  # noqa: BLE001 (reported, not swallowed)
                problems.append(f"{shown}: {type(err).__name__}: {err}")
            else:
                problems.append(f"{shown}: no error")
    return problems


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gets_a_clear_error(name):
    import matplotlib.pyplot as plt

    c = CASES[name]()
    try:
        if c.run_valid:
            _finish((c.call or _resolve(name))(**_fill(name, dict(c.valid))))
        problems = _wrong_calls(name)
    finally:
        plt.close("all")
    if name in PENDING:
        if problems:
            pytest.xfail(f"{PENDING[name]}: " + "; ".join(problems))
        pytest.fail(f"{name} now gives clear errors: remove it from PENDING")
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


def test_every_public_callable_is_covered_exactly_once():
    lists = {
        "CASES": set(CASES),
        "NO_ARGUMENTS": set(NO_ARGUMENTS),
        "RECORDS": set(RECORDS),
        "EXCEPTIONS": set(EXCEPTIONS),
        "CLI": set(CLI),
    }
    public = set(_public_callables())
    covered = set().union(*lists.values())
    missing = sorted(public - covered)
    assert not missing, f"public callables without a case or a listed reason: {missing}"
    methods = {n for n in CASES if n.removeprefix("tools.").count(".") == 2}  # Class.method
    stale = sorted((covered - methods) - public)
    assert not stale, f"entries that name no public callable: {stale}"
    assert all(m.rsplit(".", 1)[0] in public for m in methods), sorted(methods)
    for a, b in itertools.combinations(lists, 2):
        assert not lists[a] & lists[b], f"in both {a} and {b}: {sorted(lists[a] & lists[b])}"


def test_the_explicit_lists_are_consistent():
    assert set(ANY_SHAPE) <= set(CASES)
    assert set(PENDING) <= set(CASES)
    assert all(n.split(".")[0] in OTHERS for n in PENDING), (
        "PENDING is only for modules owned by another change"
    )
    assert all(reason == "owned by another change; fix pending" for reason in PENDING.values())
    assert {n for n, c in CASES.items() if not c().run_valid} == set(RUN_VALID_SKIPPED)
    for name, obj in NO_ARGUMENTS.items():
        required = [
            p for p in inspect.signature(_resolve(name)).parameters.values() if p.default is p.empty
        ]
        assert not required, f"{name} takes arguments {required}: give it a case ({obj})"


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_case_tries_a_wrong_type_and_a_wrong_shape(name):
    c = CASES[name]()
    wrong = [v for values in c.bad.values() for v in values]
    assert wrong, f"{name}: no wrong values"
    assert any(not _is_array(v) for v in wrong), f"{name}: no argument of the wrong type"
    takes_arrays = any(_is_array(v) for v in c.valid.values())
    if takes_arrays and name not in ANY_SHAPE:
        assert any(_is_array(v) for v in wrong), (
            f"{name}: takes tensors but no wrong shape is tried (or list it in ANY_SHAPE)"
        )
    target = c.call or _resolve(name)
    signature = inspect.signature(target.forward if isinstance(target, nn.Module) else target)
    unknown = (set(c.valid) | set(c.bad)) - set(signature.parameters)
    assert not unknown, f"{name}: no such parameters {sorted(unknown)}"


def test_a_wrong_call_without_a_clear_error_is_reported():
    CASES["_demo"] = lambda: case(
        dict(x=torch.ones(2)), call=lambda x: x.shape[5], x=[torch.ones(1)]
    )
    try:
        (problem,) = _wrong_calls("_demo")
    finally:
        del CASES["_demo"]
    assert problem.startswith("x=Tensor(1,): IndexError")
