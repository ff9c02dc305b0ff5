"""Where a network's cost goes: parameters, multiply-accumulates and time, layer by layer.

Introduced in the chapter "Convolutional neural networks"; used again in "Modern architectures".
"""

from __future__ import annotations

import time

import torch
from torch import nn

from visionbook._validate import _positive_int


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (optionally only those with ``requires_grad``).

    >>> count_parameters(nn.Linear(3, 2))
    8

    Introduced in the chapter "Convolutional neural networks".
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _macs(module: nn.Module, out: torch.Tensor) -> int:
    """Multiply-accumulates of one forward call of a leaf layer, for a batch of one."""
    per_item = out[0].numel() if out.ndim > 0 else 1
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        return per_item * k
    if isinstance(module, nn.Linear):
        return per_item * module.in_features
    return 0


def _check_model_and_shape(model: nn.Module, input_shape: tuple[int, ...]) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    if (
        not isinstance(input_shape, tuple)
        or not input_shape
        or not all(_positive_int(d) for d in input_shape)
    ):
        raise ValueError(
            "expected input_shape as a tuple of positive ints without the batch, such as "
            f"(1, 28, 28), got {input_shape!r}"
        )


def layer_table(model: nn.Module, input_shape: tuple[int, ...]) -> list[dict]:
    """One row per leaf layer: name, type, output shape, parameters and multiply-accumulates.

    Multiply-accumulates (MACs) count only convolutions and linear layers, for one input
    (batch size 1); activations, pooling and normalisation are cheap by comparison and
    counted as 0.

    Args:
        model (nn.Module): the network.
        input_shape (tuple): one input's shape without the batch, for example ``(1, 28, 28)``.

    Returns:
        list of dict with keys ``layer``, ``type``, ``output``, ``params``, ``macs``.

    >>> [r["macs"] for r in layer_table(nn.Sequential(nn.Linear(3, 2)), (3,))]
    [6]

    Introduced in the chapter "Convolutional neural networks".
    """
    _check_model_and_shape(model, input_shape)
    rows: list[dict] = []
    leaves = [(name, m) for name, m in model.named_modules() if next(m.children(), None) is None]
    hooks = [
        m.register_forward_hook(lambda mod, args, out, name=name: rows.append(_row(name, mod, out)))
        for name, m in leaves
    ]
    p = next(model.parameters(), None)
    x = torch.zeros(1, *input_shape, device=p.device if p is not None else "cpu")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    except RuntimeError as err:
        raise ValueError(
            f"the model cannot take an input of shape {input_shape} (with a batch: "
            f"{tuple(x.shape)}): {err}"
        ) from err
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return rows


def _row(name: str, module: nn.Module, out) -> dict:
    shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else None
    params = sum(p.numel() for p in module.parameters(recurse=False))
    macs = _macs(module, out) if isinstance(out, torch.Tensor) else 0
    return {
        "layer": name,
        "type": type(module).__name__,
        "output": shape,
        "params": params,
        "macs": macs,
    }


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Total multiply-accumulates of one forward pass for one input (see :func:`layer_table`).

    >>> count_macs(nn.Conv2d(1, 2, 3, padding=1), (1, 4, 4))
    288

    Introduced in the chapter "Convolutional neural networks".
    """
    return sum(row["macs"] for row in layer_table(model, input_shape))


def time_per_batch(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch_size: int = 64,
    repeats: int = 5,
    device: torch.device | None = None,
) -> float:
    """Seconds of one forward pass over a batch: the fastest of ``repeats`` passes after a warm-up.

    The fastest pass is the one least slowed by other programs on the machine, so it is the
    steadiest estimate of what the network itself costs (the same choice as ``timeit``).

    Args:
        model (nn.Module): the network (put in eval mode for the measurement).
        input_shape (tuple): one input's shape, for example ``(3, 32, 32)``.
        batch_size (int): examples per pass. Default 64.
        repeats (int): timed passes; the fastest is returned. Default 5.
        device (torch.device | None): default: the model's device.

    Returns:
        float: seconds.

    >>> time_per_batch(nn.Linear(4, 2), (4,), batch_size=8) > 0
    True

    Introduced in the chapter "Modern architectures".
    """
    _check_model_and_shape(model, input_shape)
    if not (_positive_int(repeats) and _positive_int(batch_size)):
        raise ValueError(
            f"expected positive integer repeats and batch_size, got {repeats!r} and {batch_size!r}"
        )
    p = next(model.parameters(), None)
    device = (
        torch.device(device)
        if device is not None
        else (p.device if p is not None else torch.device("cpu"))
    )
    x = torch.randn(batch_size, *input_shape, device=device)
    was_training = model.training
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - start)
    model.train(was_training)
    return min(times)
