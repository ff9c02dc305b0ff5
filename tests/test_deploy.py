"""Export to ONNX and back, quantisation, latency and the distillation loss, by hand and against
PyTorch."""

import math

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from visionbook.deploy import (
    ArrayReader,
    distillation_loss,
    export_onnx,
    file_size,
    fit_student,
    frame_budget,
    latency,
    operators,
    quantize_dynamic,
    quantize_static,
    run,
    session,
)


def _cnn() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * 14 * 14, 10),
    )  # fmt: skip
    with torch.no_grad():  # BatchNorm statistics that are not the identity, so folding matters
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture
def exported(tmp_path):
    model = _cnn()
    return model, export_onnx(model, torch.zeros(1, 1, 28, 28), tmp_path / "cnn.onnx")


def test_export_runs_like_pytorch_for_any_batch(exported):
    model, path = exported
    onnx.checker.check_model(str(path))
    x = torch.randn(7, 1, 28, 28)  # exported with a batch of 1, run with 7
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(run(session(path), x), expected, atol=1e-5, rtol=0)


def test_export_folds_batchnorm_and_drops_dropout(exported):
    _, path = exported
    assert dict(operators(path)) == {"Conv": 1, "Relu": 1, "MaxPool": 1, "Flatten": 1, "Gemm": 1}


def test_export_leaves_the_model_as_it_was(tmp_path):
    model = _cnn().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, torch.zeros(2, 1, 28, 28), tmp_path / "m.onnx")
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_fixed_batch_refuses_another_batch_size(tmp_path):
    path = export_onnx(_cnn(), torch.zeros(1, 1, 28, 28), tmp_path / "m.onnx", dynamic_batch=False)
    sess = session(path)
    assert run(sess, torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    with pytest.raises(ValueError, match=r"expected x of shape \(1, 1, 28, 28\) .* got \(2, 1"):
        run(sess, torch.zeros(2, 1, 28, 28))


def test_session_threads_and_run_accepts_arrays(exported):
    _, path = exported
    sess = session(path, threads=1)
    x = np.random.default_rng(0).random((3, 1, 28, 28))  # float64: converted to float32
    assert run(sess, x).dtype == np.float32
    np.testing.assert_array_equal(run(sess, x), run(sess, torch.from_numpy(x).float()))


def test_file_size_in_bytes(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"12345")
    assert file_size(tmp_path / "f.bin") == 5


def test_quantised_files_are_smaller_and_close(exported, tmp_path):
    model, path = exported
    x = torch.rand(64, 1, 28, 28)
    with torch.no_grad():
        expected = model(x).numpy()
    dynamic = quantize_dynamic(path, tmp_path / "dyn.onnx")
    static = quantize_static(path, tmp_path / "st.onnx", x[:32], batch_size=8)
    for q in (dynamic, static):
        assert file_size(q) < 0.5 * file_size(path)  # 7,840 weights: float32 -> int8
        out = run(session(q), x)
        spread = expected.max() - expected.min()
        assert np.abs(out - expected).max() < 0.1 * spread  # close, not equal
        assert not np.allclose(out, expected, atol=1e-6)  # really quantised
    assert "DynamicQuantizeLinear" in operators(dynamic)
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(operators(static))


def test_quantisation_leaves_no_stray_files(exported, tmp_path):
    _, path = exported
    quantize_static(path, tmp_path / "st.onnx", torch.rand(4, 1, 28, 28))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.onnx", "st.onnx"]


def test_array_reader_batches():
    reader = ArrayReader(torch.arange(10.0).reshape(5, 2), batch_size=2, name="input")
    batches = list(iter(reader.get_next, None))
    assert [b["input"].shape for b in batches] == [(2, 2), (2, 2), (1, 2)]
    assert batches[0]["input"].dtype == np.float32
    assert reader.get_next() is None


def test_latency_is_the_median_after_warmup():
    calls, delays = [], iter([0.05, 0.05, 0.0, 0.02, 0.001])  # two slow warm-up calls

    def call():
        import time

        calls.append(1)
        time.sleep(next(delays))

    seconds = latency(call, repeats=3, warmup=2)
    assert len(calls) == 5
    assert 0.001 <= seconds < 0.02  # the median of (0, 0.02, 0.001), not the warm-up


def _kl_by_hand(s, t, T):
    """Mean over rows of sum_k p_k (log p_k - log q_k), p = softmax(t / T), q = softmax(s / T)."""
    total = 0.0
    for srow, trow in zip(s.tolist(), t.tolist()):
        p = [math.exp(v / T) for v in trow]
        q = [math.exp(v / T) for v in srow]
        p, q = [v / sum(p) for v in p], [v / sum(q) for v in q]
        total += sum(pk * (math.log(pk) - math.log(qk)) for pk, qk in zip(p, q))
    return total / len(s)


def test_distillation_loss_by_hand():
    s = torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.0, 4.0]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    ce = -(math.log(math.e / (math.e + 1 + math.exp(-1))) + math.log(1 / (math.exp(0.5) +
           math.exp(2) + 1))) / 2  # fmt: skip
    for T, alpha in [(1.0, 0.0), (1.0, 1.0), (2.0, 0.5), (4.0, 0.9)]:
        expected = alpha * T**2 * _kl_by_hand(s, t, T) + (1 - alpha) * ce
        assert distillation_loss(s, t, y, T, alpha).item() == pytest.approx(expected, abs=1e-12)


def test_distillation_loss_matches_soft_cross_entropy_gradients():
    """Hinton et al. write cross-entropy with soft targets: the same gradient as the KL form."""
    g = torch.Generator().manual_seed(0)
    s = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    t, y, T = (
        torch.randn(5, 4, generator=g, dtype=torch.float64),
        torch.tensor([0, 1, 2, 3, 0]),
        3.0,
    )
    distillation_loss(s, t, y, T, alpha=1.0).backward()
    ours = s.grad.clone()
    s.grad = None
    soft_ce = -(F.softmax(t / T, 1) * F.log_softmax(s / T, 1)).sum(1).mean() * T**2
    soft_ce.backward()
    torch.testing.assert_close(ours, s.grad, atol=1e-12, rtol=0)


def test_at_high_temperature_distillation_matches_logits():
    """Hinton et al., section 2.1: for zero-mean logits and a large T, the gradient of the soft
    term is (s - t) / K per example: distillation becomes matching the logits."""
    g = torch.Generator().manual_seed(1)
    s = torch.randn(3, 5, generator=g, dtype=torch.float64)
    t = torch.randn(3, 5, generator=g, dtype=torch.float64)
    s, t = (s - s.mean(1, keepdim=True)).requires_grad_(), t - t.mean(1, keepdim=True)
    distillation_loss(s, t, torch.tensor([0, 1, 2]), T=1000.0, alpha=1.0).backward()
    torch.testing.assert_close(s.grad, (s - t).detach() / 5 / 3, rtol=1e-2, atol=0)


def test_distillation_loss_is_zero_for_a_perfect_student_and_needs_no_teacher_gradient():
    t = torch.randn(4, 3, requires_grad=True)
    loss = distillation_loss(t.detach().clone(), t, torch.tensor([0, 1, 2, 0]), T=3.0, alpha=1.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert not loss.requires_grad


def test_fit_student_is_repeatable_and_the_baseline_ignores_alpha():
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g)

    def trained(**kwargs):
        torch.manual_seed(0)
        return fit_student(nn.Linear(6, 3), (X, y), epochs=2, batch_size=8, **kwargs).weight

    teacher = torch.randn(40, 3, generator=g)
    torch.testing.assert_close(trained(teacher_logits=teacher), trained(teacher_logits=teacher))
    torch.testing.assert_close(trained(alpha=0.3), trained(alpha=0.9))  # no teacher: labels only
    assert not torch.allclose(trained(teacher_logits=teacher), trained())
    # alpha = 0 with a teacher is the labels-only loss, step for step
    torch.testing.assert_close(trained(teacher_logits=teacher, alpha=0.0), trained())


def test_fit_student_learns_the_teacher():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(256, 4, generator=g)
    teacher = nn.Linear(4, 3)
    with torch.no_grad():
        logits = teacher(X)
    torch.manual_seed(0)
    student = fit_student(nn.Linear(4, 3), (X, logits.argmax(1)), logits, T=1.0, alpha=1.0,
                          epochs=30, lr=0.05)  # fmt: skip
    with torch.no_grad():
        agree = (student(X).argmax(1) == logits.argmax(1)).float().mean().item()
    assert agree > 0.95


def test_frame_budget():
    assert frame_budget(30) == pytest.approx(1000 / 30)
    assert frame_budget(25, 10.0) == pytest.approx(30.0)
    assert frame_budget(60, 20.0) < 0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p: export_onnx("net", torch.zeros(1, 3), p), "expected model as an nn.Module"),
        (lambda p: export_onnx(nn.Linear(3, 2), [0.0], p), "expected example as a tensor"),
        (lambda p: export_onnx(nn.Linear(3, 2), torch.tensor(1.0), p), r"expected example of"),
        (lambda p: export_onnx(nn.Linear(3, 2), torch.zeros(1, 3), 5), "expected path as a path"),
        (
            lambda p: export_onnx(nn.Linear(3, 2), torch.zeros(1, 3), p.with_suffix(".pt")),
            "ending in .onnx",
        ),
        (
            lambda p: export_onnx(nn.Linear(3, 2), torch.zeros(1, 3), p, dynamic_batch=1),
            "dynamic_batch as a bool",
        ),
        (lambda p: session(p.with_name("missing.onnx")), "existing .onnx file"),
        (lambda p: session(3), "expected path as a path"),
        (lambda p: run("session", torch.zeros(1)), "expected an onnxruntime.InferenceSession"),
        (lambda p: operators(p.with_name("missing.onnx")), "existing .onnx file"),
        (lambda p: file_size(p.with_name("missing.bin")), "expected an existing file"),
        (lambda p: file_size(None), "expected path as a path"),
        (lambda p: latency("f"), "expected call as a function"),
        (lambda p: latency(lambda: 0, repeats=0), "expected an integer repeats of at least 1"),
        (lambda p: latency(lambda: 0, warmup=-1), "expected an integer warmup of at least 0"),
        (lambda p: ArrayReader([1.0, 2.0]), "expected calibration inputs"),
        (lambda p: ArrayReader(np.zeros((0, 3))), r"expected calibration inputs .*got \(0, 3\)"),
        (lambda p: ArrayReader(np.zeros((2, 3)), batch_size=0), "batch_size of at least 1"),
        (lambda p: ArrayReader(np.zeros((2, 3)), name=1), "expected name as a string"),
        (lambda p: quantize_dynamic(p.with_name("no.onnx"), p), "existing .onnx file"),
        (
            lambda p: quantize_static(p.with_name("no.onnx"), p, np.zeros((1, 3))),
            "existing .onnx file",
        ),
        (lambda p: frame_budget(0), "expected fps > 0"),
        (lambda p: frame_budget("30"), "expected a number for fps"),
        (lambda p: frame_budget(30, -1.0), "expected other_ms >= 0"),
    ],
)
def test_bad_input_is_refused(tmp_path, call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call(tmp_path / "m.onnx")


def test_bad_quantisation_targets_and_run_inputs(exported, tmp_path):
    _, path = exported
    with pytest.raises(ValueError, match="target path ending in .onnx"):
        quantize_dynamic(path, tmp_path / "q.bin")
    with pytest.raises(TypeError, match="expected target as a path"):
        quantize_static(path, None, np.zeros((1, 1, 28, 28)))
    with pytest.raises(ValueError, match="expected calibration inputs"):
        quantize_static(path, tmp_path / "q.onnx", np.zeros(3))
    with pytest.raises(TypeError, match=r"expected x as a tensor or an array \(N, ...\)"):
        run(session(path), [[0.0]])
    with pytest.raises(
        ValueError, match=r"expected x of shape \(N, 1, 28, 28\) .* got \(3, 28, 28\)"
    ):
        run(session(path), torch.zeros(3, 28, 28))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(student_logits=[[0.0]]), "expected student_logits as a tensor"),
        (dict(student_logits=torch.zeros(2)), r"expected student_logits of shape \(N, K\)"),
        (dict(teacher_logits=torch.zeros(2, 4)), "expected student logits .* got"),
        (dict(labels=torch.zeros(3).long()), "expected student logits .* got"),
        (dict(labels=torch.zeros(2, 1).long()), r"expected labels of shape \(N,\)"),
        (dict(T=0.0), "expected a temperature T > 0"),
        (dict(T="4"), "expected a number for T"),
        (dict(alpha=1.5), r"expected alpha in \[0, 1\]"),
    ],
)
def test_distillation_loss_refuses_bad_input(kwargs, message):
    args = dict(student_logits=torch.zeros(2, 3), teacher_logits=torch.zeros(2, 3),
                labels=torch.tensor([0, 1]), T=2.0, alpha=0.5)  # fmt: skip
    with pytest.raises((TypeError, ValueError), match=message):
        distillation_loss(**{**args, **kwargs})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(student="net"), "expected student as an nn.Module"),
        (dict(data=torch.zeros(4, 2)), r"expected data as a tuple \(X, y\)"),
        (dict(data=(torch.zeros(4, 2), torch.zeros(3).long())), "of the same length"),
        (dict(data=(torch.zeros(4, 2), torch.zeros(4, 1).long())), r"expected labels y of shape"),
        (dict(teacher_logits=torch.zeros(4)), r"expected teacher_logits of shape \(N, K\)"),
        (dict(teacher_logits=torch.zeros(3, 2)), "of the same length"),
        (dict(epochs=0), "epochs of at least 1"),
        (dict(lr="fast"), "expected a number for lr"),
    ],
)
def test_fit_student_refuses_bad_input(kwargs, message):
    args = dict(student=nn.Linear(2, 2), data=(torch.zeros(4, 2), torch.zeros(4).long()))
    with pytest.raises((TypeError, ValueError), match=message):
        fit_student(**{**args, **kwargs})
