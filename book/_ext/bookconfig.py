"""Sphinx extension for the book build: kernels started by the build inherit these settings.

Progress bars are live widgets that mean nothing on a static page, so the executed HTML book
shows the training loops' one-line-per-epoch logs instead.
"""

import os


def setup(app):
    os.environ["VISIONBOOK_PROGRESS"] = "0"
    return {"parallel_read_safe": True, "parallel_write_safe": True}
