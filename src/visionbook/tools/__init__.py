"""The book's own tooling, apart from the teaching modules a reader imports.

- ``bookbuild``: the one build command (execute every chapter once, then render);
- ``runtimes``: the measured cost of each chapter and of the whole book;
- ``student`` and ``grade``: student copies with stubs, and a grader for a class;
- ``syllabus``: the instructor's table of chapters;
- ``seedspread``: the spread over seeds of every self-check that compares a trained result with
  a threshold.

No teaching module imports from here (a test checks it).
"""
