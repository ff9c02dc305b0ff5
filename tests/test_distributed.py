"""visionbook.distributed: launching processes, the all-reduce by hand and DDP, against one
process on the whole batch; the ring cost model."""

import pytest
import torch
import torch.nn.functional as F

from visionbook import distributed as D


def _data(n: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def _single_process(X, y, steps, batch_size, lr=0.05):
    model = D.replica(0)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for i in range(steps):
        rows = torch.arange(i * batch_size, (i + 1) * batch_size) % len(X)
        opt.zero_grad()
        F.cross_entropy(model(X[rows]), y[rows]).backward()
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@pytest.fixture(scope="module")
def two_processes():
    """One launch of two gloo processes (a few seconds of start-up) serves the tests below."""
    X, y = _data()
    tasks = [
        (D.rank_info, {}),
        (D.shard_task, {"n": 10}),
        (D.gradient_task, {"X": X, "y": y}),
        (D.train_task, {"X": X, "y": y, "steps": 4, "batch_size": 16}),
        (D.train_task, {"X": X, "y": y, "steps": 4, "batch_size": 16, "accumulate": 4}),
        (D.throughput_task, {"batch_size": 8, "steps": 2}),
        (D.all_reduce_task, {"sizes": [10, 1000], "repeats": 3}),
    ]
    return X, y, D.launch(2, tasks)


def test_launch_runs_every_rank_in_one_group(two_processes):
    *_, results = two_processes
    assert [r[0]["rank"] for r in results] == [0, 1]
    assert all(r[0]["world_size"] == 2 and r[0]["backend"] == "gloo" for r in results)


def test_distributed_sampler_shards_are_disjoint_and_cover_the_data(two_processes):
    *_, results = two_processes
    a, b = (r[1]["indices"].tolist() for r in results)
    assert len(a) == len(b) == 5 and not set(a) & set(b) and sorted(a + b) == list(range(10))


@pytest.mark.parametrize("how", ["all_reduce", "ring", "ddp"])
def test_averaged_gradients_equal_one_process_on_the_whole_batch(two_processes, how):
    X, y, results = two_processes
    model = D.replica(0)
    F.cross_entropy(model(X), y).backward()
    for r in results:
        torch.testing.assert_close(r[2][how], D.flat_grad(model), atol=1e-6, rtol=0)


@pytest.mark.parametrize("task", [3, 4], ids=["ddp", "ddp-accumulating-4"])
def test_ddp_training_equals_single_process_training(two_processes, task):
    X, y, results = two_processes
    expected = _single_process(X, y, steps=4, batch_size=16)
    for r in results:
        torch.testing.assert_close(r[task]["params"], expected, atol=1e-5, rtol=0)


def test_timing_tasks_report_positive_seconds(two_processes):
    *_, results = two_processes
    assert results[0][5]["alone"] > 0 and torch.isnan(torch.tensor(results[1][5]["alone"]))
    assert all(r[5]["ddp"] > 0 for r in results)
    assert results[0][6]["seconds"].shape == (2,) and (results[0][6]["seconds"] > 0).all()


@pytest.mark.slow  # a second launch, of three processes: over 10 s on two busy cores
def test_ring_all_reduce_with_three_processes():
    results = D.launch(3, [(_ring_task, {})])
    expected = sum(torch.arange(7.0) * (r + 1) for r in range(3))
    for r in results:
        assert torch.equal(r[0]["sum"], expected)


def _ring_task(rank: int, world_size: int) -> dict:
    return {"sum": D.ring_all_reduce(torch.arange(7.0) * (rank + 1))}


def test_shard_by_hand():
    assert torch.equal(D.shard(torch.arange(6), 0, 2), torch.tensor([0, 1, 2]))
    assert torch.equal(D.shard(torch.arange(6), 2, 3), torch.tensor([4, 5]))
    with pytest.raises(ValueError, match="expected a batch divisible by world_size=4"):
        D.shard(torch.arange(6), 0, 4)
    with pytest.raises(ValueError, match="got 6 examples and rank 3"):
        D.shard(torch.arange(6), 3, 3)
    with pytest.raises(TypeError, match=r"expected X as a tensor of shape \(N, ...\)"):
        D.shard([1, 2], 0, 1)


def test_ring_cost_model_by_hand():
    assert D.ring_bytes(1000, 1) == 0 and D.ring_bytes(1000, 2) == 1000
    assert D.ring_bytes(800, 8) == pytest.approx(1400)
    assert D.all_reduce_seconds(1e9, 4, bandwidth=1e9, latency=0.01) == pytest.approx(1.56)
    with pytest.raises(ValueError, match="expected bandwidth > 0 and latency >= 0, got 0"):
        D.all_reduce_seconds(1, 2, bandwidth=0)
    with pytest.raises(ValueError, match="expected n_bytes >= 0"):
        D.ring_bytes(-1, 2)
    with pytest.raises(ValueError, match="expected an integer world_size of at least 1"):
        D.ring_bytes(1, 0)


def test_fit_all_reduce_recovers_the_model_it_was_given():
    sizes = torch.tensor([1e3, 1e5, 1e6, 4e6])
    seconds = torch.tensor([D.all_reduce_seconds(float(b), 4, 2e9, 3e-5) for b in sizes])
    bandwidth, latency = D.fit_all_reduce(sizes, seconds, 4)
    assert bandwidth == pytest.approx(2e9) and latency == pytest.approx(3e-5)
    # times below the line's intercept: no negative latency, a line through the origin
    bandwidth, latency = D.fit_all_reduce(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 2.0]), 2)
    assert latency == 0 and bandwidth == pytest.approx(5 / 4.5)


def test_fit_all_reduce_refuses_bad_input():
    with pytest.raises(ValueError, match="at least two sizes"):
        D.fit_all_reduce(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 2.0]), 2)
    with pytest.raises(ValueError, match="world_size 1"):
        D.fit_all_reduce(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]), 1)
    with pytest.raises(ValueError, match="expected times that grow with the size"):
        D.fit_all_reduce(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 1.0]), 2)
    with pytest.raises(ValueError, match=r"expected seconds of shape \(K,\)"):
        D.fit_all_reduce(torch.tensor([1.0, 2.0]), torch.ones(2, 1), 2)


def test_launch_refuses_bad_tasks_and_sizes():
    with pytest.raises(TypeError, match="expected tasks as \\(function, kwargs\\) pairs"):
        D.launch(2, [D.rank_info])
    with pytest.raises(TypeError, match="expected tasks as"):
        D.launch(2, [])
    with pytest.raises(ValueError, match="expected an integer world_size of at least 1, got 0"):
        D.launch(0, [(D.rank_info, {})])


def test_ports_backends_and_devices():
    assert 0 < D.free_port() < 65536
    expected = "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= 1 else "gloo"
    assert D.backend_for(1) == expected and D.backend_for(10_000) == "gloo"
    assert D.worker_device(0) == torch.device("cpu")  # no group in this process
    with pytest.raises(ValueError, match="world_size of at least 1"):
        D.backend_for(0)


def test_flat_grad_puts_zeros_where_there_is_no_gradient():
    model = torch.nn.Linear(2, 3)
    assert torch.equal(D.flat_grad(model), torch.zeros(9))
    model(torch.ones(1, 2)).sum().backward()
    assert torch.equal(D.flat_grad(model), torch.cat([torch.ones(6), torch.ones(3)]))


def test_tasks_outside_a_group_or_with_a_wrong_rank_are_refused(tmp_path):
    import torch.distributed as dist

    X, y = _data(4)
    with pytest.raises(RuntimeError, match="expected to run inside a process group"):
        D.rank_info(0, 1)
    with pytest.raises(RuntimeError, match="expected to run inside a process group"):
        D.average_gradients(D.replica(0))
    with pytest.raises(ValueError, match="expected 0 <= rank < world_size, got rank 2 of 2"):
        D.shard_task(2, 2, n=10)
    dist.init_process_group(
        "gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1
    )
    try:
        with pytest.raises(
            ValueError, match="expected this process's rank 0 of 1, got rank 0 of 2"
        ):
            D.rank_info(0, 2)
        with pytest.raises(ValueError, match=r"expected images \(N, 1, 28, 28\) and labels"):
            D.gradient_task(0, 1, X, y[:3])
        with pytest.raises(ValueError, match="divisible by world_size \\* accumulate = 3, got 4"):
            D.train_task(0, 1, X, y, steps=1, batch_size=4, accumulate=3)
        with pytest.raises(TypeError, match="expected ring as True or False"):
            D.average_gradients(D.replica(0), ring="yes")
        out = D.train_task(0, 1, X, y, steps=2, batch_size=4, accumulate=2)
        torch.testing.assert_close(out["params"], _single_process(X, y, 2, 4), atol=1e-6, rtol=0)
    finally:
        dist.destroy_process_group()
