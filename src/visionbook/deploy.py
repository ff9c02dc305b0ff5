"""From a trained PyTorch model to a fast, small file: ONNX export, ONNX Runtime, int8
quantisation, latency measurement and knowledge distillation.

The export uses PyTorch's TorchScript-based ONNX exporter (``dynamo=False``): it exists in every
PyTorch the book supports (2.2 and later), needs no extra package, and for the book's networks it
writes the same operators as the newer ``torch.export``-based exporter, which PyTorch 2.2 does
not have and which needs ``onnxscript``. Quantisation is ONNX Runtime's post-training
quantisation (``onnxruntime.quantization``): it runs on any CPU, and the quantised file is an
ordinary ONNX file that the same runtime executes. Introduced in the chapter "From notebook to
deployment".
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import statistics
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from onnxruntime import quantization
from torch import nn

from visionbook._validate import (
    _atomic_write,
    _expect_int,
    _expect_module,
    _expect_number,
    _expect_path,
    _expect_tensor,
)

OPSET = 17  # written by PyTorch 2.2's exporter and later ones, run by ONNX Runtime 1.14 and later


def _expect_onnx_file(path) -> Path:
    path = _expect_path(path)
    if path.suffix != ".onnx" or not path.is_file():
        raise ValueError(f"expected an existing .onnx file, got {str(path)!r}")
    return path


def export_onnx(
    model: nn.Module, example: torch.Tensor, path: str | os.PathLike, dynamic_batch: bool = True
) -> Path:
    """Write ``model`` as an ONNX file, traced on ``example``, with input ``x`` and output
    ``logits``.

    The model is copied to the CPU in eval mode (dropout off, BatchNorm with its running
    statistics, which the exporter folds into the preceding convolution). Three kinds of notice
    from the exporter are silenced: its deprecation notices, the tracer's reminder that a size
    read in Python is recorded for this input's shape (true, and the reason ``dynamic_batch``
    exists), and its report of slices it could not fold. Any other warning is shown.

    Args:
        model (nn.Module): the trained network; left as it was.
        example (Tensor): one input batch ``(N, ...)``, for example ``(1, 1, 28, 28)``.
        path (str | PathLike): the ``.onnx`` file to write (atomically).
        dynamic_batch (bool): let the batch size vary (True) or fix it to ``N``, which lets the
            runtime fold all shape arithmetic away. Default True.

    Returns:
        Path: ``path``.

    >>> p = export_onnx(nn.Linear(3, 2), torch.zeros(1, 3), tempfile.mkdtemp() + "/m.onnx")
    >>> p.stat().st_size > 0
    True

    Introduced in the chapter "From notebook to deployment".
    """
    model = copy.deepcopy(_expect_module(model)).cpu().eval()
    example = _expect_tensor(example, "example", "(N, ...)", min_ndim=1).detach().cpu()
    path = _expect_path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"expected a path ending in .onnx, got {str(path)!r}")
    if not isinstance(dynamic_batch, bool):
        raise TypeError(f"expected dynamic_batch as a bool, got {dynamic_batch!r}")
    axes = {"x": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    # dynamo=False: the TorchScript exporter, the one PyTorch 2.2 has (which has no `dynamo`)
    extra = {"dynamo": False} if "dynamo" in _export_parameters() else {}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(model, (example,), buffer, input_names=["x"], output_names=["logits"],
                          dynamic_axes=axes, opset_version=OPSET, **extra)  # fmt: skip
    _atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return path


def _export_parameters() -> set[str]:
    import inspect

    return set(inspect.signature(torch.onnx.export).parameters)


def session(path: str | os.PathLike, threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime session on the CPU, with the runtime's own log limited to errors.

    Args:
        path (str | PathLike): an ``.onnx`` file.
        threads (int | None): threads inside one operator. Default ``torch.get_num_threads()``,
            so that PyTorch and ONNX Runtime are timed on the same number of cores.

    Returns:
        onnxruntime.InferenceSession: call it with :func:`run`.

    >>> p = export_onnx(nn.Linear(3, 2), torch.zeros(1, 3), tempfile.mkdtemp() + "/m.onnx")
    >>> [i.name for i in session(p).get_inputs()]
    ['x']

    Introduced in the chapter "From notebook to deployment".
    """
    path = _expect_onnx_file(path)
    if threads is not None:
        _expect_int(threads, "threads")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    options.intra_op_num_threads = threads or torch.get_num_threads()
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, x: torch.Tensor | np.ndarray) -> np.ndarray:
    """The first output of an ONNX Runtime session for the input batch ``x``.

    Args:
        sess (InferenceSession): from :func:`session`, with one input.
        x (Tensor | ndarray): a batch ``(N, ...)``, converted to float32 on the CPU.

    Returns:
        ndarray: the output, for example logits ``(N, K)``.

    >>> p = export_onnx(nn.Flatten(), torch.zeros(1, 2, 2), tempfile.mkdtemp() + "/m.onnx")
    >>> run(session(p), torch.ones(3, 2, 2)).shape
    (3, 4)

    Introduced in the chapter "From notebook to deployment".
    """
    if not isinstance(sess, ort.InferenceSession):
        raise TypeError(f"expected an onnxruntime.InferenceSession, got {type(sess).__name__}")
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray) or x.ndim < 1:
        raise TypeError(f"expected x as a tensor or an array (N, ...), got {type(x).__name__}")
    (expected,) = sess.get_inputs()
    sizes = [d if isinstance(d, int) else None for d in expected.shape]  # None: any size
    if x.ndim != len(sizes) or any(d is not None and d != n for d, n in zip(sizes, x.shape)):
        shown = ", ".join(str(d) if isinstance(d, int) else "N" for d in expected.shape)
        raise ValueError(f"expected x of shape ({shown}) for this model, got {tuple(x.shape)}")
    return sess.run(None, {expected.name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def operators(path: str | os.PathLike) -> Counter:
    """How many nodes of each operator type the graph of an ONNX file holds, in order of first
    appearance.

    Args:
        path (str | PathLike): an ``.onnx`` file.

    Returns:
        Counter: operator type -> number of nodes, for example ``{"Conv": 3, "Relu": 3, ...}``.

    >>> p = export_onnx(nn.Sequential(nn.Linear(3, 2), nn.ReLU()), torch.zeros(1, 3),
    ...                 tempfile.mkdtemp() + "/m.onnx")
    >>> dict(operators(p))
    {'Gemm': 1, 'Relu': 1}

    Introduced in the chapter "From notebook to deployment".
    """
    graph = onnx.load(str(_expect_onnx_file(path)), load_external_data=False).graph
    return Counter(node.op_type for node in graph.node)


def file_size(path: str | os.PathLike) -> int:
    """Size of a file in bytes.

    >>> p = export_onnx(nn.Linear(3, 2), torch.zeros(1, 3), tempfile.mkdtemp() + "/m.onnx")
    >>> file_size(p) > 8 * 4  # 8 float32 weights and the graph around them
    True

    Introduced in the chapter "From notebook to deployment".
    """
    path = _expect_path(path)
    if not path.is_file():
        raise ValueError(f"expected an existing file, got {str(path)!r}")
    return path.stat().st_size


def latency(call: Callable[[], object], repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``call()`` over ``repeats`` timed calls, after ``warmup`` untimed ones.

    The first calls pay one-off costs (memory allocation, lazy initialisation, caches), so they
    are run but not timed; the median is not moved by the occasional call that another program
    slows down. ``visionbook.profile.time_per_batch`` reports the fastest pass of a PyTorch model
    instead; this takes any callable (a session run as well as a model), and the median is what a
    steady stream of frames sees.

    Args:
        call (Callable): runs one inference, for example ``lambda: run(sess, x)``.
        repeats (int): timed calls. Default 20.
        warmup (int): untimed calls first (0 allowed). Default 3.

    Returns:
        float: seconds.

    >>> latency(lambda: sum(range(100)), repeats=5) < 1
    True

    Introduced in the chapter "From notebook to deployment".
    """
    if not callable(call):
        raise TypeError(f"expected call as a function of no arguments, got {type(call).__name__}")
    _expect_int(repeats, "repeats")
    _expect_int(warmup, "warmup", minimum=0)
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class ArrayReader(quantization.CalibrationDataReader):
    """Feeds calibration images to ONNX Runtime's static quantisation, one batch at a time.

    Args:
        x (Tensor | ndarray): calibration inputs ``(N, ...)``.
        batch_size (int): inputs per batch. Default 1 (a model exported with a fixed batch of 1
            accepts only that).
        name (str): the model's input name. Default ``"x"``, as :func:`export_onnx` writes.

    >>> len(list(iter(ArrayReader(np.zeros((5, 3), np.float32), 2).get_next, None)))
    3

    Introduced in the chapter "From notebook to deployment".
    """

    def __init__(self, x: torch.Tensor | np.ndarray, batch_size: int = 1, name: str = "x"):
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        if not isinstance(x, np.ndarray) or x.ndim < 2 or len(x) == 0:
            raise ValueError(f"expected calibration inputs (N, ...) with N >= 1, got {_kind(x)}")
        _expect_int(batch_size, "batch_size")
        if not isinstance(name, str):
            raise TypeError(f"expected name as a string, got {name!r}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._batches = iter([{name: x[i : i + batch_size]} for i in range(0, len(x), batch_size)])

    def get_next(self) -> dict | None:
        """The next batch as ``{input name: array}``, or None when all have been read."""
        return next(self._batches, None)


def _kind(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, np.ndarray) else type(x).__name__


@contextlib.contextmanager
def _quiet_root_logger():
    """ONNX Runtime's quantisation tools log advice and per-tensor notes on the root logger at
    WARNING level; keep errors only while they run."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _quantise_into(source: Path, target: Path, write: Callable[[Path, Path], None]) -> Path:
    """Pre-process ``source`` (``quant_pre_process``: shape inference and ONNX Runtime's graph
    optimiser, which folds constants) into a temporary folder, run ``write(prepared, tmp)`` there,
    then move the result into ``target`` atomically (ONNX Runtime writes to a path, not to a file
    object)."""
    with tempfile.TemporaryDirectory(prefix="visionbook-quant-") as folder, _quiet_root_logger():
        prepared, tmp = Path(folder) / "prepared.onnx", Path(folder) / "model.onnx"
        quantization.quant_pre_process(str(source), str(prepared))
        write(prepared, tmp)
        _atomic_write(target, lambda f: f.write(tmp.read_bytes()))
    return target


def _target(target) -> Path:
    target = _expect_path(target, "target")
    if target.suffix != ".onnx":
        raise ValueError(f"expected a target path ending in .onnx, got {str(target)!r}")
    return target


def quantize_dynamic(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Dynamic 8-bit quantisation: weights stored in 8 bits, activations quantised at run time.

    Each weight tensor gets one scale and zero point (per tensor), as unsigned 8-bit integers
    (``QUInt8``): ONNX Runtime's CPU kernel for the quantised convolution (``ConvInteger``)
    accepts signed 8-bit weights only from recent releases, unsigned ones in all since 1.15. Each
    activation that enters a quantised convolution or matrix product is scaled from its own
    minimum and maximum, computed again for every input, so no calibration data is needed (ONNX
    Runtime's ``quantize_dynamic``, after its recommended pre-processing).

    Args:
        source (str | PathLike): the float ``.onnx`` file.
        target (str | PathLike): the quantised ``.onnx`` file to write.

    Returns:
        Path: ``target``.

    >>> d = tempfile.mkdtemp()
    >>> p = export_onnx(nn.Linear(64, 64), torch.zeros(1, 64), d + "/m.onnx")
    >>> file_size(quantize_dynamic(p, d + "/q.onnx")) < file_size(p) / 2
    True

    Introduced in the chapter "From notebook to deployment".
    """
    source, target = _expect_onnx_file(source), _target(target)
    return _quantise_into(
        source,
        target,
        lambda prepared, tmp: quantization.quantize_dynamic(
            str(prepared), str(tmp), weight_type=quantization.QuantType.QUInt8
        ),
    )


def quantize_static(
    source: str | os.PathLike,
    target: str | os.PathLike,
    calibration: torch.Tensor | np.ndarray,
    batch_size: int = 1,
) -> Path:
    """Static int8 quantisation: weights and activations int8, activation ranges from calibration.

    The float model is first simplified by ONNX Runtime's pre-processing (shape inference and
    graph optimisation: constants folded, BatchNorm already folded by the exporter), then run on
    the calibration inputs; the minimum and maximum of every activation fix its int8 scale once and
    for all. Weights get one scale per output channel. The file holds QuantizeLinear /
    DequantizeLinear pairs (the "QDQ" format), which the runtime fuses into int8 kernels.

    Args:
        source (str | PathLike): the float ``.onnx`` file.
        target (str | PathLike): the quantised ``.onnx`` file to write.
        calibration (Tensor | ndarray): representative inputs ``(N, ...)``.
        batch_size (int): calibration inputs per run. Default 1.

    Returns:
        Path: ``target``.

    >>> d = tempfile.mkdtemp()
    >>> p = export_onnx(nn.Linear(64, 64), torch.zeros(1, 64), d + "/m.onnx")
    >>> file_size(quantize_static(p, d + "/q.onnx", torch.randn(8, 64))) < file_size(p) / 2
    True

    Introduced in the chapter "From notebook to deployment".
    """
    source, target = _expect_onnx_file(source), _target(target)
    reader = ArrayReader(calibration, batch_size)

    def write(prepared: Path, tmp: Path) -> None:
        quantization.quantize_static(
            str(prepared), str(tmp), reader, quant_format=quantization.QuantFormat.QDQ,
            per_channel=True, activation_type=quantization.QuantType.QInt8,
            weight_type=quantization.QuantType.QInt8,
        )  # fmt: skip

    return _quantise_into(source, target, write)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    T: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """Hinton et al.'s (2015) knowledge-distillation loss: softened teacher targets plus labels.

    ``alpha * T**2 * KL(softmax(teacher / T) || softmax(student / T))
    + (1 - alpha) * cross_entropy(student, labels)``, averaged over the batch. The factor ``T**2``
    keeps the soft term's gradients the same size whatever the temperature (the paper's advice).
    The KL divergence differs from the paper's cross-entropy with soft targets by the teacher's
    entropy, a constant, so the gradients are the same; it is 0 when the student matches.

    Args:
        student_logits (Tensor): ``(N, K)``.
        teacher_logits (Tensor): ``(N, K)``, no gradient flows into them.
        labels (Tensor): ``(N,)`` integer classes.
        T (float): temperature, > 0. Default 4.
        alpha (float): weight of the soft term in [0, 1]; 0 is plain cross-entropy. Default 0.9.

    Returns:
        Tensor: the scalar loss.

    >>> z = torch.tensor([[2.0, 0.0]])
    >>> round(distillation_loss(z, z, torch.tensor([0]), T=2.0, alpha=1.0).item(), 6)
    0.0

    Introduced in the chapter "From notebook to deployment".
    """
    _expect_tensor(student_logits, "student_logits", "(N, K)", ndim=2)
    _expect_tensor(teacher_logits, "teacher_logits", "(N, K)", ndim=2)
    _expect_tensor(labels, "labels", "(N,)", ndim=1)
    if teacher_logits.shape != student_logits.shape or len(labels) != len(student_logits):
        raise ValueError(
            f"expected student logits (N, K), teacher logits (N, K) and labels (N,), got "
            f"{tuple(student_logits.shape)}, {tuple(teacher_logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    _expect_number(alpha, "alpha", 0, 1)
    if _expect_number(T, "T") <= 0:
        raise ValueError(f"expected a temperature T > 0, got {T!r}")
    soft = F.kl_div(
        F.log_softmax(student_logits / T, 1),
        F.log_softmax(teacher_logits.detach() / T, 1),
        reduction="batchmean",
        log_target=True,
    )
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


def fit_student(
    student: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    teacher_logits: torch.Tensor | None = None,
    *,
    T: float = 4.0,
    alpha: float = 0.9,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
) -> nn.Module:
    """Train ``student`` with :func:`distillation_loss` (or on the labels alone), Adam with a
    one-cycle schedule.

    The loop is the book's (``model.train()``, ``zero_grad``, forward, ``backward``, ``step``),
    over batches shuffled by ``seed``; it differs from ``visionbook.train.fit`` only in looking up
    each batch's teacher logits. With ``teacher_logits=None`` it trains on the labels (``alpha``
    is then ignored): the same steps, the same order, the baseline to compare with.

    Args:
        student (nn.Module): the network to train, in place, on its own device.
        data (tuple): ``(X, y)`` training inputs ``(N, ...)`` and labels ``(N,)``.
        teacher_logits (Tensor | None): ``(N, K)``, the teacher's outputs for ``X``.
        T (float): temperature. Default 4.
        alpha (float): weight of the soft term. Default 0.9.
        epochs (int): passes over the data. Default 5.
        batch_size (int): examples per step. Default 64.
        lr (float): Adam's peak learning rate. Default 3e-3.
        seed (int): seed of the order of the examples. Default 0.

    Returns:
        nn.Module: ``student``, trained, in eval mode.

    >>> s = fit_student(nn.Linear(2, 2), (torch.randn(8, 2), torch.randint(0, 2, (8,))), epochs=1)
    >>> s.training
    False

    Introduced in the chapter "From notebook to deployment".
    """
    _expect_module(student, "student")
    if not (isinstance(data, tuple) and len(data) == 2):
        raise TypeError(f"expected data as a tuple (X, y) of two tensors, got {_kind(data)}")
    X, y = _expect_tensor(data[0], "X", "(N, ...)", min_ndim=1), data[1]
    _expect_tensor(y, "labels y", "(N,)", ndim=1)
    if teacher_logits is not None:
        _expect_tensor(teacher_logits, "teacher_logits", "(N, K)", ndim=2)
    n_teacher = len(X) if teacher_logits is None else len(teacher_logits)
    if len(y) != len(X) or n_teacher != len(X):
        raise ValueError(
            f"expected X, y and teacher_logits of the same length, got {len(X)}, {len(y)} and "
            f"{n_teacher}"
        )
    _expect_int(epochs, "epochs"), _expect_int(batch_size, "batch_size")
    _expect_number(lr, "lr", low=0), _expect_int(seed, "seed", minimum=0)
    device = next(student.parameters()).device
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    steps = epochs * -(-len(X) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    student.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(X), generator=generator).split(batch_size):
            logits = student(X[idx].to(device))
            labels = y[idx].to(device)
            if teacher_logits is None:
                loss = F.cross_entropy(logits, labels)
            else:
                loss = distillation_loss(logits, teacher_logits[idx].to(device), labels, T, alpha)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return student.eval()


def frame_budget(fps: float, other_ms: float = 0.0) -> float:
    """Milliseconds left for the network per frame of a camera running at ``fps`` frames per
    second, after ``other_ms`` for capture, preprocessing and everything else.

    Args:
        fps (float): frames per second, > 0.
        other_ms (float): time per frame spent outside the network, >= 0. Default 0.

    Returns:
        float: ``1000 / fps - other_ms``; negative when nothing is left.

    >>> round(frame_budget(30, 8.0), 2)
    25.33

    Introduced in the chapter "From notebook to deployment".
    """
    if _expect_number(fps, "fps") <= 0:
        raise ValueError(f"expected fps > 0, got {fps!r}")
    return 1000.0 / fps - _expect_number(other_ms, "other_ms", low=0)
