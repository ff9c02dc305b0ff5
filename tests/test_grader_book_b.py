"""The grader on the second half of the chapters: their stubs score 0 and their solutions
full marks.

The test itself is ``grade_stubs_then_solutions`` in ``test_grader.py``; the chapters are split over
two files so that the two workers of ``pytest -n 2 --dist loadfile`` each take half.
"""

import pytest
from test_grader import grade_stubs_then_solutions, half

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("chapter", half(1), ids=lambda p: p.stem)
def test_every_chapter_stubs_score_zero_and_solutions_full_marks(chapter, tmp_path, monkeypatch):
    grade_stubs_then_solutions(chapter, tmp_path, monkeypatch)
