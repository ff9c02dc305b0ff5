"""Transfer learning: reuse a trained network for a new task with few labels.

Few-shot subsets, freezing (with batch-norm statistics kept in eval mode), discriminative
learning rates, linear probes on frozen features, a fixed-step fine-tuning loop, transfer from
the book's offline ImageNet network (texture patches split by photo half, features of a frozen
EfficientNet-Lite0, a network cut into a frozen bottom and a trainable top), and the canonical
ImageNet recipe with torchvision's ResNet-18 (with a network). Introduced in the chapter
"Transfer learning".
"""

from __future__ import annotations

import copy
import numbers
import urllib.request
from collections.abc import Sequence

import torch
from torch import nn

from visionbook import config, data, imagenet
from visionbook._validate import _expect_int, _expect_module, _expect_number, _expect_tensor

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _check_pair(pair: tuple, what: str) -> None:
    """``pair`` must be ``(images (N, C, H, W), labels (N,))``."""
    if not isinstance(pair, tuple | list) or len(pair) != 2:
        raise TypeError(f"expected {what} as a tuple (images, labels), got {type(pair).__name__}")
    images = _expect_tensor(pair[0], f"{what} images", "(N, C, H, W)", ndim=4)
    labels = _expect_tensor(pair[1], f"{what} labels", f"({len(images)},)", ndim=1)
    if len(labels) != len(images):
        raise ValueError(
            f"expected {what} labels of shape ({len(images)},), got {tuple(labels.shape)}"
        )


def subset_classes(
    X: torch.Tensor, y: torch.Tensor, classes: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the examples of ``classes`` and relabel them ``0 .. len(classes) - 1`` in that order.

    Args:
        X (Tensor): examples ``(N, ...)``.
        y (Tensor): integer labels ``(N,)``.
        classes (sequence of int): the labels to keep, for example ``[5, 6, 7, 8, 9]``.

    Returns:
        tuple: ``X[keep]`` of shape ``(M, ...)`` and the new labels ``(M,)``.

    >>> subset_classes(torch.arange(5.0), torch.tensor([3, 1, 4, 1, 5]), [4, 1])[1]
    tensor([1, 0, 1])

    Introduced in the chapter "Transfer learning".
    """
    _expect_tensor(X, "X", "(N, ...)", min_ndim=1)
    _expect_tensor(y, "labels", "(N,)")
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise TypeError(
            f"expected classes as a sequence of integer labels, got {type(classes).__name__}"
        )
    if not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in classes):
        raise TypeError(f"expected classes as a sequence of integer labels, got {list(classes)}")
    if y.ndim != 1 or len(X) != len(y):
        raise ValueError(
            f"expected labels (N,) for N examples, got labels {tuple(y.shape)} for "
            f"{len(X)} examples"
        )
    if len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"expected distinct classes, got {list(classes)}")
    lookup = torch.full((int(max(int(y.max()), *classes)) + 1,), -1, dtype=torch.long)
    lookup[torch.tensor(list(classes))] = torch.arange(len(classes))
    new = lookup[y.cpu()]
    keep = new >= 0
    return X[keep.to(X.device)], new[keep].to(y.device)


def few_shot(y: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` random examples of every class, the same draw for every budget.

    For one seed the draws are nested: the 5-per-class subset contains the 1-per-class one,
    so a learning curve compares budgets, not luck.

    Args:
        y (Tensor): integer labels ``(N,)``; every class in it is sampled.
        per_class (int): examples per class, positive.
        seed (int): seed of the draw. Default 0.

    Returns:
        Tensor: ``(per_class * num_classes,)`` indices into ``y``, class by class.

    >>> y = torch.tensor([0, 1, 0, 1, 0, 1])
    >>> y[few_shot(y, 2)].tolist()
    [0, 0, 1, 1]

    Introduced in the chapter "Transfer learning".
    """
    if not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"expected a positive integer per_class, got {per_class!r}")
    _expect_tensor(y, "labels y", "(N,)", ndim=1)
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(y).tolist():
        rows = torch.nonzero(y.cpu() == c).flatten()
        if len(rows) < per_class:
            raise ValueError(
                f"expected at least {per_class} examples of class {c}, got {len(rows)}"
            )
        picks.append(rows[torch.randperm(len(rows), generator=g)[:per_class]])
    return torch.cat(picks)


def freeze(module: nn.Module) -> nn.Module:
    """Stop gradients for every parameter of ``module`` (``requires_grad = False``).

    Freezing parameters does not freeze batch-norm *statistics*: in train mode a BN layer
    still replaces its running mean and variance with the new data's. Keep frozen parts in
    eval mode (:func:`fine_tune` does this with ``frozen=``).

    Args:
        module (nn.Module): the part to freeze, for example a pretrained trunk.

    Returns:
        nn.Module: the same module.

    >>> sum(p.requires_grad for p in freeze(nn.Linear(2, 2)).parameters())
    0

    Introduced in the chapter "Transfer learning".
    """
    for p in _expect_module(module, "module").parameters():
        p.requires_grad_(False)
    return module


def count_trainable(model: nn.Module) -> int:
    """Number of parameters (scalars) that receive gradients.

    >>> count_trainable(nn.Linear(3, 2))
    8

    Introduced in the chapter "Transfer learning".
    """
    return sum(p.numel() for p in _expect_module(model).parameters() if p.requires_grad)


def bn_eval(module: nn.Module) -> int:
    """Put every batch-norm layer inside ``module`` in eval mode: they normalise with their
    stored statistics and stop updating them, whatever mode the rest of the model is in.

    Args:
        module (nn.Module): a model or part of one.

    Returns:
        int: the number of batch-norm layers switched.

    >>> bn_eval(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).train())
    1

    Introduced in the chapter "Transfer learning".
    """
    layers = [m for m in _expect_module(module, "module").modules() if isinstance(m, _BATCH_NORMS)]
    for m in layers:
        m.eval()
    return len(layers)


def discriminative_lrs(blocks: Sequence[nn.Module], lr: float, factor: float = 2.6) -> list[dict]:
    """Optimizer parameter groups whose learning rate shrinks by ``factor`` per block towards
    the input.

    The last block gets ``lr``, the one before ``lr / factor``, then ``lr / factor**2``, ...
    (ULMFiT's "discriminative fine-tuning", Howard and Ruder, 2018, uses 2.6). Frozen
    parameters are left out; blocks with nothing to train give no group.

    Args:
        blocks (sequence of nn.Module): the model's parts from input to output.
        lr (float): learning rate of the last block, positive.
        factor (float): ratio between neighbouring blocks, at least 1. Default 2.6.

    Returns:
        list of dict: ``[{"params": [...], "lr": float}, ...]`` for ``torch.optim``.

    >>> [
    ...     round(g["lr"], 4)
    ...     for g in discriminative_lrs([nn.Linear(2, 2), nn.Linear(2, 2)], 0.01, 10)
    ... ]
    [0.001, 0.01]

    Introduced in the chapter "Transfer learning".
    """
    if isinstance(blocks, str) or not isinstance(blocks, Sequence | nn.ModuleList | nn.Sequential):
        raise TypeError(f"expected blocks as a list of nn.Modules, got {type(blocks).__name__}")
    blocks = [_expect_module(b, f"blocks[{i}]") for i, b in enumerate(blocks)]
    if not _expect_number(lr, "lr") > 0 or not _expect_number(factor, "factor") >= 1:
        raise ValueError(f"expected lr > 0 and factor >= 1, got lr={lr}, factor={factor}")
    groups = []
    for depth, block in enumerate(reversed(blocks)):
        params = [p for p in block.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lr / factor**depth})
    return groups[::-1]


@torch.no_grad()
def extract_features(
    trunk: nn.Module, X: torch.Tensor, batch_size: int = 256, device: torch.device | None = None
) -> torch.Tensor:
    """The outputs of a (frozen) network for every example, computed in eval mode.

    Args:
        trunk (nn.Module): maps ``(B, ...)`` to ``(B, D)``, for example ``model[:-1]``.
        X (Tensor): examples ``(N, ...)``.
        batch_size (int): examples per forward pass. Default 256.
        device (torch.device | None): where to compute. Default: the trunk's device.

    Returns:
        Tensor: ``(N, D)`` features, on the CPU.

    >>> extract_features(nn.Flatten(), torch.zeros(3, 2, 2)).shape
    torch.Size([3, 4])

    Introduced in the chapter "Transfer learning".
    """
    _expect_module(trunk, "trunk")
    _expect_tensor(X, "X", "(N, ...)", min_ndim=1)
    _expect_int(batch_size, "batch_size")
    params = next(trunk.parameters(), None)
    device = device or (params.device if params is not None else torch.device("cpu"))
    trunk.eval()
    return torch.cat(
        [trunk(X[i : i + batch_size].to(device)).cpu() for i in range(0, len(X), batch_size)]
    )


def train_linear_probe(
    features: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    steps: int = 100,
    lr: float = 0.01,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> nn.Linear:
    """Fit a linear classifier (softmax regression) on frozen features, full batch, with Adam.

    Args:
        features (Tensor): ``(N, D)`` features of the labelled examples.
        y (Tensor): ``(N,)`` labels in ``0 .. num_classes - 1``.
        num_classes (int): number of classes.
        steps (int): full-batch Adam steps. Default 100.
        lr (float): learning rate. Default 0.01.
        weight_decay (float): L2 penalty (Adam's ``weight_decay``). Default 1e-4.
        seed (int): seed of the initial weights. Default 0.

    Returns:
        nn.Linear: ``D -> num_classes``, on ``features``' device.

    >>> probe = train_linear_probe(torch.tensor([[-1.0], [1.0]]), torch.tensor([0, 1]), 2)
    >>> probe(torch.tensor([[-2.0], [2.0]])).argmax(1).tolist()
    [0, 1]

    Introduced in the chapter "Transfer learning".
    """
    _expect_tensor(features, "features", "(N, D)")
    _expect_tensor(y, "labels", "(N,)")
    _expect_int(num_classes, "num_classes")
    _expect_int(steps, "steps", minimum=0)
    if features.ndim != 2 or len(features) != len(y):
        raise ValueError(
            f"expected features (N, D) and labels (N,), got {tuple(features.shape)} and "
            f"{tuple(y.shape)}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = nn.Linear(features.shape[1], num_classes).to(features.device)
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(probe(features), y).backward()
        optimizer.step()
    return probe


def fine_tune(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    optimizer: torch.optim.Optimizer,
    batch_size: int = 32,
    seed: int = 0,
    frozen: nn.Module | None = None,
    device: torch.device | None = None,
) -> list[float]:
    """Train ``model`` for a fixed number of steps on a small labelled set (few labels, few steps).

    Each step draws a mini-batch without replacement (the whole set when it is smaller than
    ``batch_size``) and runs the canonical order: ``model.train()``, ``zero_grad``, forward,
    ``backward``, ``step``. The ``frozen`` part, if given, is put back in eval mode before
    every step, so its dropout is off and its batch-norm statistics stay those of the source task.

    Args:
        model (nn.Module): maps ``(B, ...)`` to ``(B, K)`` logits.
        X (Tensor): ``(N, ...)`` training examples.
        y (Tensor): ``(N,)`` labels.
        steps (int): optimizer steps, positive.
        optimizer (Optimizer): over the parameters to train (for example from
            :func:`discriminative_lrs`).
        batch_size (int): examples per step. Default 32.
        seed (int): seed of the batch order. Default 0.
        frozen (nn.Module | None): a part of ``model`` to keep in eval mode. Default None.
        device (torch.device | None): default: the model's device.

    Returns:
        list of float: the training loss of every step.

    >>> model = nn.Linear(2, 2)
    >>> losses = fine_tune(
    ...     model,
    ...     torch.randn(8, 2),
    ...     torch.randint(0, 2, (8,)),
    ...     5,
    ...     torch.optim.SGD(model.parameters(), 0.1),
    ... )
    >>> len(losses)
    5

    Introduced in the chapter "Transfer learning".
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"expected a positive integer number of steps, got {steps!r}")
    _expect_module(model)
    _expect_tensor(X, "X", "(N, ...)", min_ndim=1)
    _expect_tensor(y, "y", "(N,)", min_ndim=1)
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(
            f"expected as many labels as examples (at least one), got {len(X)} examples and "
            f"{len(y)} labels"
        )
    device = device or next(model.parameters()).device
    g, losses = torch.Generator().manual_seed(seed), []
    for _ in range(steps):
        model.train()
        if frozen is not None:
            frozen.eval()
        rows = torch.randperm(len(X), generator=g)[:batch_size]
        xb, yb = X[rows.to(X.device)].to(device), y[rows.to(y.device)].to(device)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


def replace_head(model: nn.Module, num_classes: int) -> nn.Linear:
    """Swap the last linear layer for a new, randomly initialised one with ``num_classes`` outputs.

    Works for torchvision's ResNets (the ``fc`` attribute) and for ``nn.Sequential`` models
    that end with ``nn.Linear``; the new layer is on the old one's device.

    Args:
        model (nn.Module): the pretrained network, changed in place.
        num_classes (int): outputs of the new head.

    Returns:
        nn.Linear: the new head (train it, and perhaps only it).

    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 10))
    >>> replace_head(model, 3).out_features, model(torch.zeros(1, 2, 2)).shape
    (3, torch.Size([1, 3]))

    Introduced in the chapter "Transfer learning".
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"expected a positive integer num_classes, got {num_classes!r}")
    old = getattr(model, "fc", None)
    if isinstance(old, nn.Linear):
        model.fc = head = nn.Linear(old.in_features, num_classes).to(old.weight.device)
        return head
    if isinstance(model, nn.Sequential) and len(model) and isinstance(model[-1], nn.Linear):
        old = model[-1]
        model[-1] = head = nn.Linear(old.in_features, num_classes).to(old.weight.device)
        return head
    raise TypeError(
        "expected a model with a linear .fc or an nn.Sequential ending in nn.Linear, got "
        f"{type(model).__name__}"
    )


def texture_patches(
    images: Sequence[torch.Tensor], size: int
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Cut non-overlapping square patches from photographs, one class per photograph, split by half.

    Training patches come from the left half of every photograph and test patches from the
    right half, so no pixel is in both sets (neighbouring patches of one photograph share
    lighting and scale, which a random split of patches would leak into the test set).
    Patches tile each half from its top-left corner; leftover rows and columns are dropped.

    Args:
        images (sequence of Tensor): photographs ``(C, H, W)`` with the same ``C``, each at
            least ``size`` rows and ``2 * size`` columns; image ``k`` gives class ``k``.
        size (int): side of the patches in pixels, positive.

    Returns:
        tuple: ``((X_train, y_train), (X_test, y_test))``, patches ``(N, C, size, size)`` and
        labels ``(N,)``, class by class, row by row.

    >>> (X, y), (X_test, y_test) = texture_patches([torch.zeros(1, 4, 8), torch.ones(1, 4, 8)], 2)
    >>> X.shape, y.tolist() == y_test.tolist() == [0] * 4 + [1] * 4
    (torch.Size([8, 1, 2, 2]), True)

    Introduced in the chapter "Transfer learning".
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"expected a positive integer patch size, got {size!r}")
    if not images or any(not isinstance(im, torch.Tensor) or im.ndim != 3 for im in images):
        raise ValueError(
            "expected a non-empty sequence of (C, H, W) images, got "
            f"{[getattr(im, 'shape', im) for im in images]}"
        )
    if len({im.shape[0] for im in images}) != 1:
        raise ValueError(
            "expected images with the same number of channels, got "
            f"{[tuple(im.shape) for im in images]}"
        )
    splits: list[list[torch.Tensor]] = [[], [], [], []]
    for k, im in enumerate(images):
        rows, half = im.shape[1] // size, im.shape[2] // 2
        if rows < 1 or half < size:
            raise ValueError(
                f"expected images of at least {size} x {2 * size} pixels, got {tuple(im.shape)}"
            )
        for part, start in ((0, 0), (2, half)):
            cut = [im[:, r * size : (r + 1) * size, start + c * size : start + (c + 1) * size]
                   for r in range(rows) for c in range(half // size)]  # fmt: skip
            splits[part].append(torch.stack(cut))
            splits[part + 1].append(torch.full((len(cut),), k, dtype=torch.long))
    X_train, y_train, X_test, y_test = (torch.cat(s) for s in splits)
    return (X_train, y_train), (X_test, y_test)


@torch.no_grad()
def imagenet_features(
    trunk: nn.Module,
    X: torch.Tensor,
    size: int = 224,
    batch_size: int = 64,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Outputs of a frozen part of the ImageNet network for images in [0, 1], in eval mode.

    Each batch goes through :func:`visionbook.imagenet.preprocess` at ``size`` (centre crop,
    bicubic resize, the network's normalisation; grey images are repeated to three channels)
    and then through ``trunk``, for example ``model[:-2]`` of :func:`visionbook.imagenet.pretrained`
    (its 1280 pooled features) or ``model[:8]`` (the activations after ``stage7``).

    Args:
        trunk (nn.Module): a part of the network that starts at its input.
        X (Tensor): images ``(N, 1, H, W)`` or ``(N, 3, H, W)`` in [0, 1].
        size (int): side of the network's input. Default 224, its training resolution.
        batch_size (int): images per forward pass. Default 64.
        device (torch.device | None): where to compute. Default: the trunk's device.

    Returns:
        Tensor: the trunk's outputs ``(N, ...)``, on the CPU.

    >>> imagenet_features(
    ...     imagenet.efficientnet_lite0()[:-2], torch.rand(2, 1, 25, 25), size=64
    ... ).shape
    torch.Size([2, 1280])

    Introduced in the chapter "Transfer learning".
    """
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"expected images as a torch.Tensor, got {type(X).__name__}")
    if X.ndim != 4 or X.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, 1, H, W) or (N, 3, H, W), got {tuple(X.shape)}")
    params = next(trunk.parameters(), None)
    device = device or (params.device if params is not None else torch.device("cpu"))
    trunk.eval()
    return torch.cat(
        [
            trunk(imagenet.preprocess(X[i : i + batch_size], size).to(device)).cpu()
            for i in range(0, len(X), batch_size)
        ]
    )


def split_at(
    model: nn.Sequential, name: str, num_classes: int
) -> tuple[nn.Sequential, nn.Sequential]:
    """Cut a network before its child ``name``: the frozen bottom, and a trainable copy of the top
    with a new head.

    Fine-tuning only the top layers needs the bottom's outputs, which do not change while the
    bottom is frozen: compute them once (:func:`imagenet_features` with ``bottom``) and train
    ``top`` on them, instead of running the whole network at every step.

    Args:
        model (nn.Sequential): a network with named children that ends with ``nn.Linear``,
            such as :func:`visionbook.imagenet.pretrained` (``stem``, ``stage1`` ... ``fc``).
        name (str): the first child of the top, for example ``"head"``.
        num_classes (int): outputs of the new last layer.

    Returns:
        tuple: ``bottom``, the children before ``name`` (the model's own modules, not copied),
        and ``top``, a deep copy of the children from ``name`` on whose last ``nn.Linear`` is
        replaced by a new one; ``top(bottom(x))`` gives ``(B, num_classes)`` logits.

    >>> from collections import OrderedDict
    >>> net = nn.Sequential(OrderedDict(a=nn.Linear(4, 3), b=nn.ReLU(), c=nn.Linear(3, 10)))
    >>> bottom, top = split_at(net, "b", 2)
    >>> len(bottom), top(bottom(torch.zeros(1, 4))).shape
    (1, torch.Size([1, 2]))

    Introduced in the chapter "Transfer learning".
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"expected an nn.Sequential with named children, got {type(model).__name__}"
        )
    names = [n for n, _ in model.named_children()]
    if name not in names or names.index(name) == 0:
        raise ValueError(
            f"expected the name of a child after the first, one of {names[1:]}, got {name!r}"
        )
    cut = names.index(name)
    top = copy.deepcopy(model[cut:])
    replace_head(top, num_classes)
    return model[:cut], top


def resnet18_transfer(
    num_classes: int, weights: object = "DEFAULT", timeout: float = 60.0
) -> tuple[nn.Module, nn.Module]:
    """torchvision's ResNet-18 with a new head, and the preprocessing its weights were trained with.

    The arguments are checked first. The ImageNet weights come from
    :func:`visionbook.data.pretrained`: downloaded once into ``data_home()/weights`` with a
    ``timeout`` and checked against the hash in their file name; with ``VISIONBOOK_OFFLINE=1``
    weights that are not cached raise :class:`visionbook.data.DataUnavailableError` before any
    network access. ``weights=None`` gives random weights (for tests and training from scratch)
    with the same preprocessing: resize to 256, centre-crop 224, ImageNet mean and std.

    Args:
        num_classes (int): outputs of the new head.
        weights (ResNet18_Weights | str | None): ``"DEFAULT"``, an enum value, or None.
            Default "DEFAULT".
        timeout (float): seconds to wait for the server. Default 60.

    Returns:
        tuple: the model ``(B, 3, 224, 224) -> (B, num_classes)`` in train mode, and
        ``weights.transforms()`` (an ``nn.Module`` that maps ``(B, 3, H, W)`` images in [0, 1]
        to normalised ``(B, 3, 224, 224)``).

    Raises:
        DataUnavailableError: offline, and the weights are not cached.

    >>> model, preprocess = resnet18_transfer(10, weights=None)
    >>> model(preprocess(torch.rand(2, 3, 32, 32))).shape
    torch.Size([2, 10])

    Introduced in the chapter "Transfer learning".
    """
    from torchvision.models import ResNet18_Weights, resnet18

    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"expected a positive integer num_classes, got {num_classes!r}")
    try:
        weights = ResNet18_Weights.verify(weights)
    except (KeyError, TypeError, ValueError) as err:
        names = ", ".join(w.name for w in ResNet18_Weights)
        raise ValueError(
            f"expected ResNet18_Weights, 'DEFAULT', one of {names}, or None; got {weights!r}"
        ) from err
    _expect_number(timeout, "timeout", low=1e-3)
    model = resnet18(weights=None)
    if weights is not None:
        model.load_state_dict(data.pretrained(weights, timeout=timeout))
    replace_head(model, num_classes)
    return model, (weights or ResNet18_Weights.DEFAULT).transforms()


def imagenet_weights_available(timeout: float = 5.0) -> bool:
    """Whether ``ResNet18_Weights.DEFAULT`` is in the book's weights cache or can be fetched now.

    Never touches the network when ``VISIONBOOK_OFFLINE=1``; otherwise asks the server for
    the file's headers with a ``timeout``.

    Args:
        timeout (float): seconds to wait for the server. Default 5.

    Returns:
        bool.

    >>> isinstance(imagenet_weights_available(timeout=1.0), bool)  # doctest: +SKIP
    True

    Introduced in the chapter "Transfer learning".
    """
    from torchvision.models import ResNet18_Weights

    _expect_number(timeout, "timeout", low=0)
    url = ResNet18_Weights.DEFAULT.url
    if data.pretrained_path(ResNet18_Weights.DEFAULT).is_file():
        return True
    if config.offline():
        return False
    if (manifest := config.rehearsal()) is not None:  # CI's rehearsal: stand-ins, no network
        return url in manifest["files"]
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, method="HEAD"), timeout=timeout
        ) as response:
            return getattr(response, "status", 200) == 200
    except OSError:
        return False


RESNET_METHODS = ("from scratch", "linear probe", "fine-tune")


def _resnet_groups(model: nn.Module, method: str) -> tuple[list[dict], nn.Module | None]:
    """Parameter groups and the part kept in eval mode, for one way of training a ResNet."""
    blocks = [
        nn.ModuleList([model.conv1, model.bn1]),
        model.layer1,
        model.layer2,
        model.layer3,
        model.layer4,
        model.fc,
    ]
    if method == "linear probe":
        freeze(nn.ModuleList(blocks[:-1]))
        return [{"params": list(model.fc.parameters()), "lr": 1e-2}], nn.ModuleList(blocks[:-1])
    if method == "fine-tune":
        return discriminative_lrs(blocks, lr=1e-3), None
    return [{"params": list(model.parameters()), "lr": 3e-3}], None


def resnet18_few_shot(
    method: str,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    steps: int = 40,
    seed: int = 0,
    weights: object = "DEFAULT",
    device: torch.device | None = None,
) -> float:
    """Train ResNet-18 on a few labelled images in one of three ways and return its test accuracy.

    ``"from scratch"``: random weights, all layers at 3e-3. ``"linear probe"``: pretrained
    trunk frozen in eval mode, new ``fc`` at 1e-2. ``"fine-tune"``: pretrained, discriminative
    rates from 1e-3 for ``fc`` down by 2.6 per stage (``layer4`` ... ``conv1``). Images go
    through the weights' own preprocessing inside the model; Adam, batches of 32.

    Args:
        method (str): one of ``RESNET_METHODS``.
        train (tuple): images ``(N, 3, H, W)`` in [0, 1] and labels ``(N,)``.
        test (tuple): the same for the test images.
        num_classes (int): outputs of the new head.
        steps (int): optimizer steps. Default 40.
        seed (int): seed of the new head and of the batch order. Default 0.
        weights (ResNet18_Weights | str | None): the pretrained weights; None for tests.
            Default "DEFAULT".
        device (torch.device | None): default ``config.device()``.

    Returns:
        float: test accuracy.

    >>> resnet18_few_shot(
    ...     "fine-tune",
    ...     (torch.rand(2, 3, 32, 32), torch.tensor([0, 1])),
    ...     (torch.rand(2, 3, 32, 32), torch.tensor([0, 1])),
    ...     2,
    ...     steps=1,
    ...     weights=None,
    ... ) <= 1.0
    True

    Introduced in the chapter "Transfer learning".
    """
    from visionbook.train import evaluate

    if method not in RESNET_METHODS:
        raise ValueError(f"expected a method in {RESNET_METHODS}, got {method!r}")
    _check_pair(train, "train")
    _check_pair(test, "test")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, preprocess = resnet18_transfer(
            num_classes, weights=None if method == "from scratch" else weights
        )
    classifier = nn.Sequential(preprocess, model).to(device or config.device())
    groups, frozen = _resnet_groups(model, method)
    fine_tune(
        classifier, *train, steps, torch.optim.Adam(groups), batch_size=32, seed=seed, frozen=frozen
    )
    return evaluate(classifier, test, batch_size=100)["accuracy"]
