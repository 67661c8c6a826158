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
    """Every dataset under /traces and /runs (the trace data) as {name: bytes}: byte identity of two files."""
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, node):
            if isinstance(node, h5py.Dataset) and name.split("/")[0] in ("traces", "runs") and \
                    not name.endswith(("wall_seconds", "eval_seconds")):
                out[name] = node[()].tobytes() if node.dtype.kind != "O" else repr(node[()].tolist()).encode()
        f.visititems(visit)
    return out
