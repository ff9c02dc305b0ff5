"""Switch the network off in every Python process started with this folder on ``PYTHONPATH``.

Python imports ``sitecustomize`` at start-up. When ``VISIONBOOK_NETWORK_LOG`` names a file, this
one installs ``tests/no_network.py``'s guard for good: any attempt to reach an address other than
the loopback raises ``NetworkBlocked`` and is appended to that file, even when the code catches
the error. ``.ci/run`` sets both for the book build and the tests (the chapters' kernels,
pytest-xdist's workers and every child process included) and fails when the file is not empty;
``tests/test_offline.py`` does the same for its rerun of the unit suite. Without the variable,
nothing happens (the Colab install test unsets it for ``pip``, which needs the package index).
"""

import os
import sys
from pathlib import Path

if os.environ.get("VISIONBOOK_NETWORK_LOG"):
    sys.path.append(str(Path(__file__).resolve().parents[1]))  # tests/, for no_network
    import no_network

    no_network.install(os.environ["VISIONBOOK_NETWORK_LOG"])
