"""The JSON sidecar next to a TensorRT engine, and the checks made before an engine is loaded.

An engine file only runs with the TensorRT version, GPU and plugin versions it was built with, and
it does not carry sspnet's model facts. `sspnet build-engine` therefore writes `model.engine.json`:

    {
      "sidecar_version": 1,
      "metadata":  {...},            the ONNX metadata_props (runtime/contract.py METADATA_KEYS)
      "onnx":      {"path": ..., "sha256": ...},
      "engine":    {"sha256": ...},
      "tensorrt":  {"version": "10.3.0.30"},
      "plugins":   {"namespace": "sspnet", "versions": {"SSPNetBatchedNMS": "1", ...}, "library": ...},
      "gpu":       {"name": "Orin", "compute_capability": "8.7"},
      "build":     {"precision": "fp16", "batch": [1, 4, 8], ...},
      "created":   "2026-...Z", "sspnet_version": "0.1.0"
    }

The TensorRT backend reads it, refuses an engine whose TensorRT version, GPU compute capability or
plugin versions differ from this device (`check_compatible`), and takes the model facts from it.

Pure Python (no TensorRT, no onnx package): `read_onnx_metadata` reads metadata_props straight from
the protobuf bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

from sspnet.errors import InputError
from sspnet.io.atomic import atomic_write_json

SIDECAR_VERSION = 1
SIDECAR_KEYS = ("sidecar_version", "metadata", "onnx", "engine", "tensorrt", "plugins", "gpu", "build")
PLUGIN_FIELDS_FILE = Path(__file__).with_name("plugin_fields.json")


class SidecarError(InputError):
    """A sidecar file is missing, unreadable or lacks a key (a ValueError too, via InputError)."""


# ---- plugin descriptions ------------------------------------------------------------------------


def plugin_descriptions() -> dict:
    """The `plugins` object of runtime/plugin_fields.json: {name: {version, namespace, inputs, ...}}."""
    return json.loads(PLUGIN_FIELDS_FILE.read_text())["plugins"]


def expected_plugin_versions() -> dict[str, str]:
    """{plugin name: version} this sspnet expects from libsspnet_trt_plugins.so."""
    return {name: str(spec["version"]) for name, spec in plugin_descriptions().items()}


def plugin_namespace() -> str:
    """The one namespace all sspnet plugins are registered under."""
    namespaces = {spec["namespace"] for spec in plugin_descriptions().values()}
    if len(namespaces) != 1:
        raise ValueError(f"{PLUGIN_FIELDS_FILE}: plugins disagree on their namespace: {sorted(namespaces)}")
    return namespaces.pop()


# ---- files --------------------------------------------------------------------------------------


def sha256_of(path: str | Path, chunk_bytes: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(engine_path: str | Path) -> Path:
    """model.engine -> model.engine.json"""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


# ---- ONNX metadata without the onnx package ------------------------------------------------------

_MODEL_METADATA_PROPS = 14  # ModelProto.metadata_props (repeated StringStringEntryProto)
_ENTRY_KEY, _ENTRY_VALUE = 1, 2


def _varint(data, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def _fields(data, start: int = 0, end: int | None = None):
    """Yield (field number, wire type, value) of one protobuf message; length-delimited values are
    (start, end) offsets so large fields (the graph) are skipped, not copied."""
    pos, end = start, len(data) if end is None else end
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = (pos, pos + length), pos + length
        elif wire == 5:
            value, pos = None, pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise ValueError("field runs past the end of the message")
        yield number, wire, value


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """metadata_props of an .onnx file as {key: value}, read from the protobuf bytes directly.

    Raises InputError (a ValueError) naming the file when it is not a readable ONNX protobuf;
    OSError (with the path) when it cannot be read at all, e.g. FileNotFoundError.
    """
    path = Path(path)
    data = memoryview(path.read_bytes())
    props = {}
    try:
        for number, wire, value in _fields(data):
            if number != _MODEL_METADATA_PROPS or wire != 2:
                continue
            entry = {}
            for sub_number, sub_wire, sub_value in _fields(data, *value):
                if sub_number in (_ENTRY_KEY, _ENTRY_VALUE) and sub_wire == 2:
                    entry[sub_number] = bytes(data[sub_value[0] : sub_value[1]]).decode("utf-8")
            props[entry.get(_ENTRY_KEY, "")] = entry.get(_ENTRY_VALUE, "")
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a readable ONNX model ({error})") from None
    return props


# ---- the sidecar --------------------------------------------------------------------------------


def make_sidecar(
    *,
    metadata: dict[str, str],
    onnx_path: str | Path | None,
    onnx_sha256: str | None,
    engine_sha256: str,
    tensorrt_version: str,
    plugin_versions: dict[str, str],
    plugin_library: str | Path | None,
    gpu_name: str,
    compute_capability: str,
    build: dict,
    sspnet_version: str = "",
) -> dict:
    """The sidecar dict (see the module docstring). `build` holds the build options as given."""
    return {
        "sidecar_version": SIDECAR_VERSION,
        "metadata": dict(metadata),
        "onnx": {"path": None if onnx_path is None else str(onnx_path), "sha256": onnx_sha256},
        "engine": {"sha256": engine_sha256},
        "tensorrt": {"version": str(tensorrt_version)},
        "plugins": {
            "namespace": plugin_namespace(),
            "versions": dict(plugin_versions),
            "library": None if plugin_library is None else str(plugin_library),
        },
        "gpu": {"name": str(gpu_name), "compute_capability": str(compute_capability)},
        "build": dict(build),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sspnet_version": sspnet_version,
    }


def write_sidecar(engine_path: str | Path, sidecar: dict) -> Path:
    """Write `<engine>.json` atomically (sspnet.io.atomic); returns its path."""
    return atomic_write_json(sidecar_path(engine_path), sidecar, indent=2, sort_keys=True)


def read_sidecar(engine_path: str | Path) -> dict:
    """Read and check the sidecar of `engine_path`; SidecarError names the file and the problem."""
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise SidecarError(
            f"{path} does not exist: an sspnet engine needs the JSON sidecar `sspnet build-engine` writes "
            f"next to it (for an engine built with trtexec: `sspnet build-engine MODEL.onnx "
            f"--engine {Path(engine_path).name} --sidecar-only` on the device that built it)"
        )
    try:
        sidecar = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SidecarError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(sidecar, dict):
        raise SidecarError(f"{path}: expected a JSON object, got {type(sidecar).__name__}")
    missing = [key for key in SIDECAR_KEYS if key not in sidecar]
    if missing:
        raise SidecarError(f"{path}: missing key(s) {missing}; a sidecar has {list(SIDECAR_KEYS)}")
    if sidecar["sidecar_version"] != SIDECAR_VERSION:
        raise SidecarError(
            f"{path}: sidecar_version {sidecar['sidecar_version']!r}, this sspnet reads version {SIDECAR_VERSION}"
        )
    for key, inner in (("tensorrt", "version"), ("gpu", "compute_capability"), ("plugins", "versions")):
        if not isinstance(sidecar[key], dict) or inner not in sidecar[key]:
            raise SidecarError(f"{path}: {key!r} must be an object with {inner!r}, got {sidecar[key]!r}")
    return sidecar


# ---- compatibility ------------------------------------------------------------------------------


def tensorrt_release(version: str) -> tuple[int, ...]:
    """(major, minor, patch) of a TensorRT version string such as "10.3.0.30"; the build number is
    ignored. ValueError for anything that does not start with major.minor."""
    parts = re.findall(r"\d+", str(version))
    if len(parts) < 2:
        raise ValueError(f"not a TensorRT version: {version!r}")
    return tuple(int(p) for p in (parts + ["0"])[:3])


def tensorrt_major(version: str) -> int:
    return tensorrt_release(version)[0]


def check_compatible(
    sidecar: dict,
    *,
    tensorrt_version: str,
    compute_capability: str,
    gpu_name: str,
    plugin_versions: dict[str, list[str]],
    engine_sha256: str | None = None,
) -> tuple[list[str], list[str]]:
    """Compare an engine's sidecar with this device. Returns (errors, warnings).

    errors: a different TensorRT release (major.minor.patch), GPU compute capability, a plugin
    version the loaded library does not register (plugin_versions: {name: versions registered
    under the sspnet namespace}), or an engine file whose SHA-256 differs from the sidecar's.
    warnings: same compute capability but another GPU name (TensorRT itself only warns there).
    """
    errors, warnings = [], []
    rebuild = "rebuild the engine on this device with `sspnet build-engine`"
    built_trt = sidecar["tensorrt"]["version"]
    if tensorrt_release(built_trt) != tensorrt_release(tensorrt_version):
        errors.append(f"engine built with TensorRT {built_trt}, this device has TensorRT {tensorrt_version}: {rebuild}")
    built_gpu = sidecar["gpu"]
    if str(built_gpu["compute_capability"]) != str(compute_capability):
        errors.append(
            f"engine built for a GPU of compute capability {built_gpu['compute_capability']} "
            f"({built_gpu.get('name', '?')}), this GPU is {compute_capability} ({gpu_name}): {rebuild}"
        )
    elif built_gpu.get("name") and built_gpu["name"] != gpu_name:
        warnings.append(
            f"engine built on {built_gpu['name']!r}, running on {gpu_name!r} (same compute capability "
            f"{compute_capability}); TensorRT does not guarantee engines across GPU models"
        )
    for name, version in sorted(sidecar["plugins"]["versions"].items()):
        available = plugin_versions.get(name, [])
        if str(version) not in available:
            have = f"versions {sorted(available)}" if available else "no such plugin"
            errors.append(
                f"engine uses plugin {name} version {version}, the loaded plugin library has {have}: "
                f"use the matching libsspnet_trt_plugins.so or {rebuild}"
            )
    expected_sha = sidecar["engine"].get("sha256") if isinstance(sidecar["engine"], dict) else None
    if engine_sha256 is not None and expected_sha and expected_sha != engine_sha256:
        errors.append(
            "the engine file's SHA-256 differs from its sidecar's: the sidecar belongs to another build "
            "(was the engine rebuilt without `sspnet build-engine`?)"
        )
    return errors, warnings
