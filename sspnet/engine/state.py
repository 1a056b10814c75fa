"""Resume state without pickle: nested Python structures <-> (tensors, JSON), RNG states, one file.

A resume state file (`RUN_DIR/last_state.safetensors`) is ONE safetensors file holding
  * the model's state dict (tensor names prefixed ``model.``),
  * the optimizer's state dict, flattened: its tensors under ``optim.<path>`` and its structure
    (param groups, hyper-parameters, tensor references) as JSON,
  * the RNG states of python / numpy / torch (CPU and CUDA) for every process: the torch states are
    byte tensors, the python and numpy states JSON lists,
  * the progress counters (epoch, iteration, sampler position, best metric ...) as JSON,
with all JSON in the safetensors header metadata. Because weights and optimizer state live in one
file that is written atomically, a checkpoint is either entirely the old one or entirely the new one.
"""

from __future__ import annotations

import errno
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sspnet.errors import InputError

STATE_FORMAT = "sspnet-resume-state"
STATE_FORMAT_VERSION = 1
_METADATA_KEY = "sspnet_resume_state"


# --- nested structures <-> tensors + JSON ------------------------------------------------------


def flatten_to_tensors(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Encode `obj` (dicts with str/int keys, lists, tuples, tensors, JSON scalars) as JSON.

    Tensors are moved into `tensors` under a name derived from their path and replaced by
    ``{"__tensor__": name}``; dict keys keep their type (int keys of an optimizer state stay int).
    """
    if isinstance(obj, torch.Tensor):
        name = prefix
        if name in tensors:
            raise ValueError(f"duplicate tensor name {name!r} while flattening")
        # clone: safetensors refuses tensors that share storage, and the file must not alias the model
        tensors[name] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": name}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"cannot store dict key {key!r} of type {type(key).__name__} at {prefix!r}")
            items.append([key, flatten_to_tensors(value, f"{prefix}.{key}", tensors)])
        return {"__dict__": items}
    if isinstance(obj, (list, tuple)):
        kind = "__list__" if isinstance(obj, list) else "__tuple__"
        return {kind: [flatten_to_tensors(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a value of type {type(obj).__name__} at {prefix!r}")


def unflatten_from_tensors(encoded: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `flatten_to_tensors`."""
    if isinstance(encoded, dict):
        if "__tensor__" in encoded:
            name = encoded["__tensor__"]
            if name not in tensors:
                raise ValueError(f"resume state refers to tensor {name!r} which the file does not contain")
            return tensors[name]
        if "__dict__" in encoded:
            return {key: unflatten_from_tensors(value, tensors) for key, value in encoded["__dict__"]}
        if "__list__" in encoded:
            return [unflatten_from_tensors(v, tensors) for v in encoded["__list__"]]
        if "__tuple__" in encoded:
            return tuple(unflatten_from_tensors(v, tensors) for v in encoded["__tuple__"])
        raise ValueError(f"unknown encoded structure with keys {sorted(encoded)}")
    return encoded


# --- RNG states ----------------------------------------------------------------------------------


def capture_rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """This process's RNG states as (JSON part, tensor part)."""
    version, internal, gauss_next = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    json_part = {
        "python": [version, list(internal), gauss_next],
        "numpy": [np_kind, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_cached)],
        "cuda_devices": torch.cuda.device_count() if torch.cuda.is_initialized() else 0,
    }
    tensor_part = {"torch": torch.get_rng_state()}
    for i in range(json_part["cuda_devices"]):
        tensor_part[f"cuda.{i}"] = torch.cuda.get_rng_state(i)
    return json_part, tensor_part


def restore_rng_state(json_part: dict[str, Any], tensor_part: dict[str, torch.Tensor]) -> None:
    """Inverse of `capture_rng_state`."""
    version, internal, gauss_next = json_part["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, cached = json_part["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensor_part["torch"])
    saved_cuda = json_part.get("cuda_devices", 0)
    if saved_cuda and torch.cuda.is_available():
        for i in range(min(saved_cuda, torch.cuda.device_count())):
            torch.cuda.set_rng_state(tensor_part[f"cuda.{i}"], i)


class preserved_rng_state:
    """Context manager: run a block without disturbing the global RNG streams of this process.

    Used around evaluation so that evaluating (or not) leaves training bit-identical.
    """

    def __enter__(self):
        self._saved = capture_rng_state()
        return self

    def __exit__(self, *exc):
        restore_rng_state(*self._saved)
        return False


# --- the resume state file ------------------------------------------------------------------------


def encode_resume_state(
    *,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    rng_states: list[tuple[dict[str, Any], dict[str, torch.Tensor]]],
    progress: dict[str, Any],
) -> bytes:
    """Serialise one complete resume point to safetensors bytes.

    Args:
        model_state: the (unwrapped) model's state_dict.
        optimizer_state: `optimizer.state_dict()`.
        rng_states: one `capture_rng_state()` result per process (index = rank).
        progress: JSON-serialisable counters (epoch, iteration, sampler position, best metric,
            grad-scaler state ...).
    """
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in model_state.items():
        tensors[f"model.{name}"] = tensor.detach().to("cpu", copy=True).contiguous()
    optimizer_json = flatten_to_tensors(optimizer_state, "optim", tensors)
    rng_json = []
    for rank, (json_part, tensor_part) in enumerate(rng_states):
        rng_json.append(json_part)
        for name, tensor in tensor_part.items():
            tensors[f"rng.{rank}.{name}"] = tensor.detach().to("cpu", copy=True).contiguous()
    header = {
        "format": STATE_FORMAT,
        "version": STATE_FORMAT_VERSION,
        "optimizer": optimizer_json,
        "rng": rng_json,
        "progress": progress,
    }
    return save(tensors, metadata={_METADATA_KEY: json.dumps(header)})


def decode_resume_state(path) -> dict[str, Any]:
    """Read a resume state file.

    Returns a dict with `model_state`, `optimizer_state`, `rng_states` (list per rank, each a
    (json, tensors) pair as `restore_rng_state` takes) and `progress`.
    """
    from safetensors import SafetensorError, safe_open

    if not Path(path).is_file():
        raise FileNotFoundError(errno.ENOENT, "resume state not found", str(path))
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()} if _METADATA_KEY in metadata else {}
    except SafetensorError as exc:
        raise InputError(f"{path}: not a readable resume state (damaged or not a safetensors file: {exc})") from None
    if _METADATA_KEY not in metadata:
        raise InputError(f"{path}: not an sspnet resume state (no {_METADATA_KEY!r} metadata)")
    try:
        header = json.loads(metadata[_METADATA_KEY])
    except ValueError:
        raise InputError(f"{path}: damaged resume state (its {_METADATA_KEY!r} metadata is not JSON)") from None
    if (
        not isinstance(header, dict)
        or header.get("format") != STATE_FORMAT
        or header.get("version") != STATE_FORMAT_VERSION
    ):
        header = header if isinstance(header, dict) else {}
        raise InputError(
            f"{path}: resume state format {header.get('format')!r} version {header.get('version')!r}, "
            f"expected {STATE_FORMAT!r} version {STATE_FORMAT_VERSION}"
        )
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    rng_states = []
    for rank, json_part in enumerate(header["rng"]):
        prefix = f"rng.{rank}."
        rng_states.append((json_part, {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}))
    return {
        "model_state": model_state,
        "optimizer_state": unflatten_from_tensors(header["optimizer"], tensors),
        "rng_states": rng_states,
        "progress": header["progress"],
    }
