"""Seed offsets, and the table of how far each threshold check lies from its measured values."""

import json

import nbformat
import pytest
import torch

from visionbook import config
from visionbook.tools import seedspread
from visionbook.train import fit


def test_the_seed_offset_changes_every_seed(monkeypatch):
    config.seed_everything(3)
    base = torch.rand(3)
    monkeypatch.setenv("VISIONBOOK_SEED_OFFSET", "2")
    config.seed_everything(1)
    torch.testing.assert_close(torch.rand(3), base)  # 1 + 2 = 3
    monkeypatch.setenv("VISIONBOOK_SEED_OFFSET", "-1")
    with pytest.raises(
        ValueError, match="expected VISIONBOOK_SEED_OFFSET to be a non-negative integer, got '-1'"
    ):
        config.seed_offset()


def test_the_seed_offset_changes_the_shuffling_of_fit(monkeypatch):
    X, y = torch.arange(16.0).view(16, 1), torch.zeros(16, dtype=torch.long)
    seen = []

    def first_batch(offset):
        monkeypatch.setenv("VISIONBOOK_SEED_OFFSET", str(offset))
        model = torch.nn.Linear(1, 2)
        batches = []
        model.register_forward_hook(lambda m, i, o: batches.append(i[0].flatten().tolist()))
        fit(model, (X, y), epochs=1, batch_size=4, seed=0)
        return batches[0]

    seen = [first_batch(k) for k in (0, 1, 0)]
    assert seen[0] == seen[2] and seen[0] != seen[1]


def test_checks_are_read_from_printed_lines_and_failures():
    ok = nbformat.v4.new_output("stream", text="✓ acc: 0.98 ≥ 0.97\n✓ loss: 0.2 ≤ 0.5\nother\n")
    bad = nbformat.v4.new_output(
        "error",
        ename="AssertionError",
        evalue="✗ acc: 0.95 is below the required 0.97",
        traceback=[],
    )
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(outputs=[ok]), nbformat.v4.new_code_cell(outputs=[bad])]
    )
    assert seedspread.parse_checks(nb) == [
        (0, "acc", "≥", 0.98, 0.97),
        (0, "loss", "≤", 0.2, 0.5),
        (1, "acc", "≥", 0.95, 0.97),
    ]


def test_the_table_flags_thresholds_less_than_three_std_inside():
    # mean gap 0.06, std 0.01: 6 std
    safe = [[(0, "acc", "≥", v, 0.90)] for v in (0.95, 0.96, 0.97)]
    tight = [[(0, "acc", "≥", v, 0.94)] for v in (0.95, 0.96, 0.97)]  # mean gap 0.02: 2 std
    table, flagged = seedspread.spread_table({"safe": safe, "tight": tight})
    assert flagged == ["tight: acc"]
    assert "| safe | acc (≥) | 0.9 | 0.96 | 0.01 | 3 | 6.0 |" in table
    # gap constant: inf
    moving = [[(0, "a vs b", "≥", 0.9 + d, 0.8 + d)] for d in (0.0, 0.01, 0.02)]
    assert seedspread.spread_table({"m": moving})[1] == []


def test_a_record_resumes_and_a_failed_execution_is_not_fatal(tmp_path, monkeypatch, capsys):
    calls = []

    def child(notebook, offset, timeout):
        calls.append((notebook.stem, offset))
        if notebook.stem == "broken":
            raise RuntimeError("broken.ipynb, seed offset 0: a cell timed out")
        return [(3, "acc", "≥", 0.95 + 0.01 * offset, 0.5)]

    monkeypatch.setattr(seedspread, "_child", child)
    record = tmp_path / "record.json"
    args = ["good.ipynb", "broken.ipynb", "--seeds", "2", "--jobs", "1", "--record", str(record)]
    assert seedspread.main(args) == 1  # the broken chapter's executions are missing
    out = capsys.readouterr().out
    assert "| good | acc (≥) | 0.5 | 0.955 |" in out
    assert "2 executions failed: broken/0, broken/1" in out
    assert sorted(json.loads(record.read_text())) == ["good/0", "good/1"]
    calls.clear()
    assert seedspread.main(["good.ipynb", "--seeds", "2", "--record", str(record)]) == 0
    assert calls == []  # both executions were read from the record


def test_other_errors_are_kept_apart_from_the_table_and_fail_the_run(monkeypatch, capsys):
    missed = nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="✗ acc: 0.95 is below the required 0.97"
    )
    other = nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="✗ every method beats scratch\nmore"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[missed, other])])
    assert seedspread.parse_errors(nb) == [(0, "AssertionError: ✗ every method beats scratch")]
    with pytest.raises(TypeError, match="expected nb as a notebook read with nbformat.read"):
        seedspread.parse_errors({"cells": []})

    def child(notebook, offset, timeout):
        rows = [(3, "acc", "≥", 0.95 + 0.01 * offset, 0.5)]
        if offset == 1:  # a crash, or a failed check_true, in cell 5
            rows.append((5, "ValueError: boom", seedspread.RAISED, 0.0, 0.0))
        return rows

    monkeypatch.setattr(seedspread, "_child", child)
    assert seedspread.main(["good.ipynb", "--seeds", "2", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "| good | acc (≥) | 0.5 | 0.955 | 0.0071 | 2 |" in out  # the error is not a row
    assert "1 other errors\n  good/1 cell 5: ValueError: boom" in out
