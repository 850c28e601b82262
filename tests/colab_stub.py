"""A stand-in for the two parts of Colab's ``google.colab`` package that the course calls:
``_message.blocking_request("get_ipynb")`` (the open notebook, cell sources as lists of
lines, as Colab returns it) and ``files.download``. Colab itself cannot run here."""

import json
import sys
import types

import nbformat


def colab_payload(nb):
    """The notebook node ``nb`` as Colab's API returns it: a dict whose sources are lists."""
    payload = json.loads(nbformat.writes(nb))
    assert any(isinstance(cell["source"], list) and len(cell["source"]) > 1 for cell in payload["cells"])
    return payload


def install(monkeypatch, nb):
    """Make ``google.colab`` importable for this test, serving ``nb``; returns the list that
    records every ``files.download`` call."""
    downloads = []
    message = types.ModuleType("google.colab._message")
    message.blocking_request = lambda request, timeout_sec=None: (
        {"ipynb": colab_payload(nb)} if request == "get_ipynb" else None)
    files = types.ModuleType("google.colab.files")
    files.download = downloads.append
    colab = types.ModuleType("google.colab")
    colab._message, colab.files = message, files
    for name, module in {"google.colab": colab, "google.colab._message": message, "google.colab.files": files}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return downloads
