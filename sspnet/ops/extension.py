"""Loads the compiled extension `sspnet._C`, which registers `torch.ops.sspnet.*`."""

from __future__ import annotations

import functools
import importlib


@functools.cache
def load():
    """Import `sspnet._C` once and return it; ImportError with a rebuild hint if it is missing."""
    import torch  # noqa: F401  (the extension links against libtorch: import it first)

    try:
        return importlib.import_module("sspnet._C")
    except ImportError as error:
        raise ImportError(
            "sspnet's compiled extension (sspnet._C) is not built or does not load: "
            f"{error}. Rebuild it with `pip install --no-build-isolation -e .` "
            "(scripts/env.sh does this)."
        ) from error


def build_info() -> dict:
    """Facts about the compiled extension for `sspnet info`; never raises."""
    try:
        ext = load()
    except ImportError as error:
        return {"built": False, "error": str(error)}
    return {
        "built": True,
        "cuda": bool(ext.built_with_cuda()),
        "cuda_archs": ext.cuda_archs() or None,
        "openmp_threads": ext.openmp_max_threads(),
    }
