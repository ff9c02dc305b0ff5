"""Data parallelism: several processes train one model, each on its shard of every batch.

Every worker holds a replica of the model, computes the gradient of its own shard, and an
*all-reduce* averages the gradients so that every replica takes the same step, the step that one
process would take on the whole batch. Here the workers are processes on one machine, joined by
``torch.distributed`` with the gloo backend on the CPU (NCCL when there is a GPU for each); the
same code runs across machines when ``torchrun`` starts it.

Spawned processes import their work, so it lives here: :func:`launch` starts ``world_size``
processes, runs a list of *tasks* (functions of this module, or any importable function with the
signature ``task(rank, world_size, **kwargs) -> dict``) in each, and brings every rank's results
back through files written atomically in a temporary folder.

Introduced in the chapter "Training past one device".
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DistributedSampler

from visionbook import models
from visionbook._validate import (
    _atomic_write,
    _expect_int,
    _expect_module,
    _expect_number,
    _expect_tensor,
)

Task = tuple[Callable[..., dict], dict]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the operating system's choice).

    Returns:
        int: the port number.

    >>> 0 < free_port() < 65536
    True

    Introduced in the chapter "Training past one device".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend_for(world_size: int) -> str:
    """``"nccl"`` when there is one CUDA device per process and NCCL is built in, else ``"gloo"``.

    Args:
        world_size (int): number of processes, positive.

    Returns:
        str: the backend's name.

    >>> backend_for(1) in ("gloo", "nccl")
    True

    Introduced in the chapter "Training past one device".
    """
    _expect_int(world_size, "world_size")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return "nccl" if gpus >= world_size and dist.is_nccl_available() else "gloo"


def worker_device(rank: int) -> torch.device:
    """The device of process ``rank`` in the current group: its own GPU under NCCL, else the CPU.

    Args:
        rank (int): the process's index in the group.

    Returns:
        torch.device.

    >>> worker_device(0)  # outside a process group
    device(type='cpu')

    Introduced in the chapter "Training past one device".
    """
    _expect_int(rank, "rank", minimum=0)
    nccl = dist.is_initialized() and dist.get_backend() == "nccl"
    return torch.device(f"cuda:{rank}") if nccl else torch.device("cpu")


def _check_tasks(tasks: Sequence[Task]) -> None:
    ok = isinstance(tasks, Sequence) and all(
        isinstance(t, tuple) and len(t) == 2 and callable(t[0]) and isinstance(t[1], dict)
        for t in tasks
    )
    if not ok or not tasks:
        raise TypeError(f"expected tasks as (function, kwargs) pairs, got {tasks!r}")


def _check_rank(rank: int, world_size: int, group: bool = True) -> None:
    """TypeError or ValueError unless ``0 <= rank < world_size``; with ``group``, RuntimeError
    unless this process is that rank of an initialised process group of that size."""
    _expect_int(world_size, "world_size")
    if _expect_int(rank, "rank", minimum=0) >= world_size:
        raise ValueError(f"expected 0 <= rank < world_size, got rank {rank} of {world_size}")
    if not group:
        return
    if not dist.is_initialized():
        raise RuntimeError(
            "expected to run inside a process group (started by launch or torchrun), got none"
        )
    if (dist.get_rank(), dist.get_world_size()) != (rank, world_size):
        raise ValueError(
            f"expected this process's rank {dist.get_rank()} of {dist.get_world_size()}, got "
            f"rank {rank} of {world_size}"
        )


def _check_digits(X: torch.Tensor, y: torch.Tensor) -> None:
    """TypeError or ValueError unless ``X`` is ``(N, 1, 28, 28)`` and ``y`` is ``(N,)``."""
    _expect_tensor(X, "X", "(N, 1, 28, 28)", ndim=4)
    _expect_tensor(y, "y", "(N,)", ndim=1)
    if X.shape[1:] != (1, 28, 28) or len(y) != len(X):
        raise ValueError(
            f"expected images (N, 1, 28, 28) and labels (N,), got {tuple(X.shape)} and "
            f"{tuple(y.shape)}"
        )


def _entry(rank: int, world_size: int, port: int, out: str, tasks: list[Task]) -> None:
    """What each spawned process runs: join the group, run the tasks, write the results."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    backend = backend_for(world_size)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        results = [task(rank, world_size, **kwargs) for task, kwargs in tasks]
        path = Path(out) / f"rank{rank}.pt"
        _atomic_write(path, lambda f: torch.save(results, f))
    finally:
        dist.destroy_process_group()


def launch(world_size: int, tasks: Sequence[Task]) -> list[list[dict]]:
    """Start ``world_size`` processes that run ``tasks`` in order, and return their results.

    The processes are spawned (fresh interpreters, as on every platform), find each other at
    ``127.0.0.1`` on a free port and form one process group. Each task is ``(function,
    kwargs)``; every process calls ``function(rank, world_size, **kwargs)``, which returns a
    dict of tensors and numbers. One start-up (a Python interpreter with torch, a few seconds)
    serves all the tasks.

    Args:
        world_size (int): number of processes, positive.
        tasks (sequence): ``(function, kwargs)`` pairs; the functions must be importable.

    Returns:
        list: ``results[rank][i]``, the dict task ``i`` returned in process ``rank``.

    >>> launch(2, [(rank_info, {})])[1][0]["rank"]
    1

    Introduced in the chapter "Training past one device".
    """
    _expect_int(world_size, "world_size")
    _check_tasks(tasks)
    with tempfile.TemporaryDirectory() as out:
        mp.start_processes(
            _entry,
            args=(world_size, free_port(), out, list(tasks)),
            nprocs=world_size,
            start_method="spawn",
        )
        return [torch.load(Path(out) / f"rank{r}.pt", weights_only=True) for r in range(world_size)]


def rank_info(rank: int, world_size: int) -> dict:
    """A task that reports who ran it.

    Args:
        rank (int): this process's index in the group.
        world_size (int): the number of processes in the group.

    Returns:
        dict: ``rank``, ``world_size`` and ``backend`` (``"gloo"`` or ``"nccl"``).

    >>> launch(1, [(rank_info, {})])[0][0]["world_size"]
    1

    Introduced in the chapter "Training past one device".
    """
    _check_rank(rank, world_size)
    return {"rank": rank, "world_size": world_size, "backend": dist.get_backend()}


def ring_all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes in place, by hand, with the ring algorithm.

    The tensor is cut into ``p`` chunks. In ``p - 1`` steps of *reduce-scatter* each process
    sends one chunk to its right neighbour and adds the chunk that arrives from its left, so
    that each process ends with one chunk summed over all; in ``p - 1`` steps of *all-gather*
    the summed chunks travel once more round the ring. Each process sends ``2 (p - 1) / p``
    times the tensor's size, whatever ``p``.

    Args:
        tensor (Tensor): the same shape in every process; overwritten with the sum.

    Returns:
        Tensor: ``tensor``, now the sum.

    Introduced in the chapter "Training past one device".
    """
    _expect_tensor(tensor, "tensor")
    if not dist.is_initialized():
        raise RuntimeError("expected to run inside a process group, got none")
    rank, p = dist.get_rank(), dist.get_world_size()
    chunks = list(tensor.view(-1).tensor_split(p))
    right, left = (rank + 1) % p, (rank - 1) % p
    for phase in ("reduce-scatter", "all-gather"):
        for step in range(p - 1):
            first = 0 if phase == "reduce-scatter" else 1
            send, recv = (rank - step + first) % p, (rank - step - 1 + first) % p
            incoming = torch.empty_like(chunks[recv])
            request = dist.isend(chunks[send].contiguous(), right)
            dist.recv(incoming, left)
            request.wait()
            if phase == "reduce-scatter":
                chunks[recv] += incoming
            else:
                chunks[recv].copy_(incoming)
    return tensor


def average_gradients(model: nn.Module, ring: bool = False) -> None:
    """Replace every gradient of ``model`` by its mean over the processes (the all-reduce step).

    Args:
        model (nn.Module): the local replica, after ``backward``.
        ring (bool): use :func:`ring_all_reduce` instead of ``dist.all_reduce``. Default False.

    Returns:
        None.

    Introduced in the chapter "Training past one device".
    """
    _expect_module(model)
    if not isinstance(ring, bool):
        raise TypeError(f"expected ring as True or False, got {ring!r}")
    if not dist.is_initialized():
        raise RuntimeError("expected to run inside a process group, got none")
    for p in model.parameters():
        if p.grad is not None:
            ring_all_reduce(p.grad) if ring else dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()


def shard(X: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """The ``rank``-th of ``world_size`` equal, contiguous slices of a batch.

    Args:
        X (Tensor): a batch ``(N, ...)`` with ``N`` divisible by ``world_size``.
        rank (int): which slice.
        world_size (int): how many slices.

    Returns:
        Tensor: ``(N / world_size, ...)``.

    >>> shard(torch.arange(6), 1, 3)
    tensor([2, 3])

    Introduced in the chapter "Training past one device".
    """
    _expect_tensor(X, "X", "(N, ...)", min_ndim=1)
    _expect_int(rank, "rank", minimum=0)
    if len(X) % _expect_int(world_size, "world_size") or rank >= world_size:
        raise ValueError(
            f"expected a batch divisible by world_size={world_size} and 0 <= rank < "
            f"world_size, got {len(X)} examples and rank {rank!r}"
        )
    size = len(X) // world_size
    return X[rank * size : (rank + 1) * size]


def replica(seed: int = 0) -> nn.Module:
    """The small network the chapter's workers train: LeNet-5 for 28x28 images, seeded.

    Args:
        seed (int): seed of the initial weights, at least 0. Default 0.

    Returns:
        nn.Module: maps ``(N, 1, 28, 28)`` images to ``(N, 10)`` logits.

    >>> torch.equal(replica(3).state_dict()["0.weight"], replica(3).state_dict()["0.weight"])
    True

    Introduced in the chapter "Training past one device".
    """
    torch.manual_seed(_expect_int(seed, "seed", minimum=0))
    return models.lenet()


def flat_grad(model: nn.Module) -> torch.Tensor:
    """All of ``model``'s gradients as one vector on the CPU (zeros where there is none).

    Args:
        model (nn.Module): a model, usually after ``backward``.

    Returns:
        Tensor: ``(P,)``, ``P`` the number of parameters, in the order of ``model.parameters()``.

    >>> flat_grad(nn.Linear(2, 3))
    tensor([0., 0., 0., 0., 0., 0., 0., 0., 0.])

    Introduced in the chapter "Training past one device".
    """
    _expect_module(model)
    return torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).cpu()
         for p in model.parameters()]
    )  # fmt: skip


def shard_task(rank: int, world_size: int, n: int, seed: int = 0) -> dict:
    """A task: the indices ``DistributedSampler`` gives this process for a data set of ``n``.

    Args:
        rank (int): this process's index in the group.
        world_size (int): the number of processes in the group.
        n (int): size of the data set, positive.
        seed (int): seed of the shuffle shared by all ranks. Default 0.

    Returns:
        dict: ``indices``, a tensor ``(ceil(n / world_size),)`` of this rank's indices.

    >>> shard_task(1, 2, n=4)["indices"].shape
    torch.Size([2])

    Introduced in the chapter "Training past one device".
    """
    _check_rank(rank, world_size, group=False)
    _expect_int(n, "n")
    _expect_int(seed, "seed", minimum=0)
    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, seed=seed)
    sampler.set_epoch(0)
    return {"indices": torch.tensor(list(sampler))}


def gradient_task(rank: int, world_size: int, X: torch.Tensor, y: torch.Tensor) -> dict:
    """A task: the gradient of this process's shard of ``(X, y)``, averaged three ways.

    ``all_reduce`` (``dist.all_reduce`` of each gradient divided by the world size), ``ring``
    (:func:`ring_all_reduce` by hand) and ``ddp`` (``DistributedDataParallel``), each from
    :func:`replica` ``(0)``.

    Args:
        rank (int): this process's index in the group.
        world_size (int): the number of processes in the group.
        X (Tensor): the whole batch ``(N, 1, 28, 28)``, ``N`` divisible by ``world_size``.
        y (Tensor): its labels ``(N,)``.

    Returns:
        dict: ``all_reduce``, ``ring`` and ``ddp``, each the averaged gradient ``(P,)``.

    Introduced in the chapter "Training past one device".
    """
    _check_rank(rank, world_size)
    _check_digits(X, y)
    device, out = worker_device(rank), {}
    X, y = shard(X, rank, world_size).to(device), shard(y, rank, world_size).to(device)
    for how in ("all_reduce", "ring", "ddp"):
        model = replica(0).to(device)
        net = DDP(model) if how == "ddp" else model
        F.cross_entropy(net(X), y).backward()
        if how != "ddp":
            average_gradients(model, ring=how == "ring")
        out[how] = flat_grad(model)
    return out


def train_task(
    rank: int,
    world_size: int,
    X: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    batch_size: int,
    lr: float = 0.05,
    accumulate: int = 1,
) -> dict:
    """A task: ``steps`` SGD steps of a DDP :func:`replica` ``(0)`` on global batches of
    ``batch_size``, the ``i``-th being rows ``i * batch_size ...`` of ``(X, y)`` (wrapping round).

    With ``accumulate = k`` each process splits its shard into ``k`` micro-batches and adds up
    their gradients (the loss divided by ``k``) before the step, synchronising only at the last
    one (``DDP.no_sync``): the same step, in ``k`` times less memory.

    Args:
        rank (int): this process's index in the group.
        world_size (int): the number of processes in the group.
        X (Tensor): training images ``(N, 1, 28, 28)``.
        y (Tensor): their labels ``(N,)``.
        steps (int): number of SGD steps.
        batch_size (int): the global batch, divisible by ``world_size * accumulate``.
        lr (float): learning rate. Default 0.05.
        accumulate (int): micro-batches per process and step. Default 1.

    Returns:
        dict: ``params``, the final parameters as one vector on the CPU.

    Introduced in the chapter "Training past one device".
    """
    _check_rank(rank, world_size)
    _check_digits(X, y)
    _expect_int(steps, "steps")
    _expect_number(lr, "lr", low=0)
    if _expect_int(batch_size, "batch_size") % (world_size * _expect_int(accumulate, "accumulate")):
        raise ValueError(
            f"expected batch_size divisible by world_size * accumulate = "
            f"{world_size * accumulate}, got {batch_size}"
        )
    device = worker_device(rank)
    model = DDP(replica(0).to(device))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for i in range(steps):
        rows = torch.arange(i * batch_size, (i + 1) * batch_size) % len(X)
        Xs, ys = shard(X[rows], rank, world_size), shard(y[rows], rank, world_size)
        opt.zero_grad()
        for j, (Xm, ym) in enumerate(zip(Xs.chunk(accumulate), ys.chunk(accumulate))):
            last = j == accumulate - 1  # only the last backward all-reduces
            with contextlib.nullcontext() if last else model.no_sync():
                loss = F.cross_entropy(model(Xm.to(device)), ym.to(device)) / accumulate
                loss.backward()
        opt.step()
    return {"params": torch.cat([p.detach().reshape(-1).cpu() for p in model.parameters()])}


def _time(step: Callable[[], None], steps: int, device: torch.device) -> float:
    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def throughput_task(rank: int, world_size: int, batch_size: int, steps: int) -> dict:
    """A task: seconds per training step of :func:`replica` on ``batch_size`` random images
    per process, first in process 0 alone (no communication, the others wait), then in every
    process with DDP.

    Args:
        rank (int): this process's index in the group.
        world_size (int): the number of processes in the group.
        batch_size (int): images per process and step.
        steps (int): timed steps, after one warm-up step.

    Returns:
        dict: ``alone`` (float, process 0 only, else nan) and ``ddp`` (float) seconds per step.

    Introduced in the chapter "Training past one device".
    """
    _check_rank(rank, world_size)
    _expect_int(batch_size, "batch_size")
    _expect_int(steps, "steps")
    device = worker_device(rank)
    X = torch.randn(batch_size, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)

    def step(net, opt):
        opt.zero_grad()
        F.cross_entropy(net(X), y).backward()
        opt.step()

    alone = math.nan
    if rank == 0:
        model = replica(0).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        alone = _time(lambda: step(model, opt), steps, device)
    dist.barrier()
    net = DDP(replica(0).to(device))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    return {"alone": alone, "ddp": _time(lambda: step(net, opt), steps, device)}


def all_reduce_task(rank: int, world_size: int, sizes: Sequence[int], repeats: int = 5) -> dict:
    """A task: the median seconds of one ``dist.all_reduce`` of ``n`` float32 values, per size.

    Args:
        rank (int): this process's index in the group.
        world_size (int): the number of processes in the group.
        sizes (sequence of int): numbers of values to all-reduce.
        repeats (int): timings per size, of which the median is kept. Default 5.

    Returns:
        dict: ``seconds``, a tensor ``(len(sizes),)``.

    Introduced in the chapter "Training past one device".
    """
    _check_rank(rank, world_size)
    if not isinstance(sizes, Sequence) or not sizes:
        raise TypeError(f"expected sizes as a list of tensor sizes, got {type(sizes).__name__}")
    for n in sizes:
        _expect_int(n, "size")
    _expect_int(repeats, "repeats")
    device, seconds = worker_device(rank), []
    for n in sizes:
        x = torch.ones(n, device=device)
        times = []
        for _ in range(repeats):
            dist.barrier()
            times.append(_time(lambda x=x: dist.all_reduce(x), 1, device))
        seconds.append(sorted(times)[len(times) // 2])
    return {"seconds": torch.tensor(seconds, dtype=torch.float64)}


def ring_bytes(n_bytes: float, world_size: int) -> float:
    """Bytes each process sends (and receives) in a ring all-reduce of ``n_bytes``:
    ``2 (p - 1) / p`` times ``n_bytes``.

    Args:
        n_bytes (float): size of the reduced tensor in bytes, at least 0.
        world_size (int): number of processes ``p``, positive.

    Returns:
        float: bytes per process.

    >>> ring_bytes(1000, 2), ring_bytes(1000, 4)
    (1000.0, 1500.0)

    Introduced in the chapter "Training past one device".
    """
    _expect_number(n_bytes, "n_bytes", low=0)
    return 2 * (_expect_int(world_size, "world_size") - 1) / world_size * n_bytes


def all_reduce_seconds(
    n_bytes: float, world_size: int, bandwidth: float, latency: float = 0.0
) -> float:
    """The ring model of one all-reduce: ``2 (p - 1)`` messages of ``latency`` seconds each, and
    :func:`ring_bytes` sent at ``bandwidth`` bytes per second.

    Args:
        n_bytes (float): size of the reduced tensor in bytes.
        world_size (int): number of processes ``p``.
        bandwidth (float): bytes per second of each link, positive.
        latency (float): seconds per message. Default 0.

    Returns:
        float: seconds.

    >>> all_reduce_seconds(1e9, 2, bandwidth=1e9, latency=0.001)
    1.002

    Introduced in the chapter "Training past one device".
    """
    _expect_int(world_size, "world_size")
    _expect_number(n_bytes, "n_bytes", low=0)
    if _expect_number(bandwidth, "bandwidth") <= 0 or _expect_number(latency, "latency") < 0:
        raise ValueError(f"expected bandwidth > 0 and latency >= 0, got {bandwidth} and {latency}")
    return 2 * (world_size - 1) * latency + ring_bytes(n_bytes, world_size) / bandwidth


def fit_all_reduce(
    n_bytes: torch.Tensor, seconds: torch.Tensor, world_size: int
) -> tuple[float, float]:
    """Fit :func:`all_reduce_seconds` to measured times by least squares (with no latency
    when the best line would need a negative one).

    Args:
        n_bytes (Tensor): ``(K,)`` sizes in bytes, at least two different.
        seconds (Tensor): ``(K,)`` measured seconds.
        world_size (int): the number of processes of the measurement, at least 2.

    Returns:
        tuple: ``(bandwidth, latency)`` in bytes per second and seconds per message.

    >>> b = torch.tensor([0.0, 1e6])
    >>> bandwidth, latency = fit_all_reduce(b, 2e-4 + b / 1e9, 2)
    >>> f"{bandwidth:.3g} B/s, {latency:.3g} s"
    '1e+09 B/s, 0.0001 s'

    Introduced in the chapter "Training past one device".
    """
    x = _expect_tensor(n_bytes, "n_bytes", "(K,)", ndim=1).double()
    t = _expect_tensor(seconds, "seconds", "(K,)", ndim=1).double()
    if len(x) != len(t) or len(x.unique()) < 2 or _expect_int(world_size, "world_size") < 2:
        raise ValueError(
            f"expected sizes and times of one length with at least two sizes, and world_size "
            f">= 2, got {len(x)} sizes, {len(t)} times and world_size {world_size}"
        )
    A = torch.stack([torch.full_like(x, 2.0 * (world_size - 1)), x * ring_bytes(1, world_size)], 1)
    latency, inverse = torch.linalg.lstsq(A, t[:, None]).solution[:, 0].tolist()
    if latency < 0:  # noise below the smallest size's time: a line through the origin instead
        latency, inverse = 0.0, float((A[:, 1] * t).sum() / (A[:, 1] ** 2).sum())
    if inverse <= 0:
        raise ValueError("expected times that grow with the size, got a flat or falling fit")
    return 1 / inverse, latency
