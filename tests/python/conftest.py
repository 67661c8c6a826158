# Fixtures of the Python module's tests: the build tree's CLI and source tree (set by ctest: python/CMakeLists.txt).
import os
import subprocess

import pytest

CLI = os.environ.get("RATELAB_CLI", "")
SOURCE_DIR = os.environ.get("RATELAB_SOURCE_DIR", os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))


@pytest.fixture
def cli():
    """Runs `ratelab ARGS...`; returns the CompletedProcess (text output)."""
    if not CLI:
        pytest.skip("RATELAB_CLI is not set (run through ctest)")

    def run(*args):
        return subprocess.run([CLI, *args], capture_output=True, text=True)

    return run


def trace_arrays(path):
    """The trace data of a file as {name: bytes}, for byte identity of two files: every dataset over
    (configuration, ..., replicate, ...) (metrics, status, stop step, message, run statistics) except the
    timings, in either schema (1: under /traces and /runs; 2: at the root), named by its last path part."""
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, node):
            if not isinstance(node, h5py.Dataset) or name.endswith(("wall_seconds", "eval_seconds", "elapsed_seconds")):
                return
            labels = [d.label for d in node.dims]
            if "configuration" in labels and "replicate" in labels:
                key = name.replace("runs/stats/", "stats.").split("/")[-1]
                out[key] = node[()].tobytes() if node.dtype.kind != "O" else repr(node[()].tolist()).encode()
        f.visititems(visit)
    return out
