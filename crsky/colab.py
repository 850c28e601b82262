"""Google Colab: reading the notebook that is open, offering a file for download.

Colab keeps the notebook in the browser, not in a file the kernel can read. Its private
API ``google.colab._message.blocking_request("get_ipynb")`` returns it as a dict whose
cell sources are *lists of lines* (the on-disk form of the format), which nbclient and
nbgrader's code do not accept as they are: :func:`open_notebook` normalises them.
Outside Colab these functions raise :class:`NotInColab`.
"""

import json
import sys

import nbformat


class NotInColab(RuntimeError):
    """A Colab-only function was called outside Colab."""


def in_colab():
    """True inside a Colab runtime (its kernel imports ``google.colab`` at start)."""
    return "google.colab" in sys.modules


def _require_colab(what):
    if not in_colab():
        raise NotInColab(f"{what} works only in Colab; elsewhere give the notebook's path.")


def open_notebook(timeout=60):
    """The notebook open in Colab, as an nbformat v4 notebook node (sources as strings)."""
    _require_colab("reading the open notebook")
    from google.colab import _message  # the only way to read the open notebook in Colab

    reply = _message.blocking_request("get_ipynb", timeout_sec=timeout)
    if not isinstance(reply, dict) or not isinstance(reply.get("ipynb"), dict):
        raise RuntimeError("Colab did not return the open notebook (no answer within "
                           f"{timeout} s). Save it (Ctrl+S), wait a moment and run this cell again.")
    # A round trip through JSON text: nbformat.reads joins list-of-lines sources and outputs.
    return nbformat.reads(json.dumps(reply["ipynb"]), as_version=4)


def download(path):
    """Offer the file at ``path`` for download in the browser (Colab only)."""
    _require_colab("downloading a file")
    from google.colab import files

    files.download(str(path))
