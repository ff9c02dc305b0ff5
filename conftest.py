"""Repository-wide pytest settings.

With pytest-xdist (`-n 2`, the README's test command) two chapters execute at once on a 2-core
machine; each worker's kernels then use one thread, since two threads per kernel would make the
book's tiny networks wait on each other (measured: 3 to 6 times slower under contention).
"""

import os

if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
