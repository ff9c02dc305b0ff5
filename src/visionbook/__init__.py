"""visionbook: the small helper package of *Image Recognition with Neural Networks*.

Each module is introduced by a chapter of the book; the notebooks import what they need,
for example ``from visionbook.config import seed_everything, device``.
"""

__version__ = "0.1.0"
