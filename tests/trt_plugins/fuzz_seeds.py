"""Writes the hand-made seeds of the plugin field fuzzer (tests/trt_plugins/fuzz_corpus/seeds/) in the
input format that fuzz/plugin_fields_fuzzer.cpp decodes (described at the top of that file).

Each seed's name starts with what the target must do with it (accepted / refused / read), which
test_plugin_fields_fuzz.py checks: so the encoder here and the decoder there cannot drift apart.
Field names are written out as raw names (not as indices into the creators' lists), and values
come from runtime/plugin_fields.json, the one description of the fields.

    python tests/trt_plugins/fuzz_seeds.py        # rewrites seeds/
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN_FIELDS = HERE.parents[1] / "runtime" / "plugin_fields.json"
SEEDS = HERE / "fuzz_corpus" / "seeds"

MODES = {
    ("nms", "build"): 0,
    ("nms", "runtime"): 1,
    ("roi", "build"): 2,
    ("roi", "runtime"): 3,
    ("nms", "reader"): 4,
    ("roi", "reader"): 5,
}
PLUGINS = {"nms": "SSPNetBatchedNMS", "roi": "SSPNetMultiLevelRoIAlign"}
# nvinfer1::PluginFieldType values and their element formats.
TYPES = {"int32": (5, "<i"), "float32": (1, "<f"), "int64": (10, "<q")}
NULL_FIELD_ARRAY = 2  # flags bit 1


def field(name: str, kind: str, values) -> bytes:
    values = values if isinstance(values, list) else [values]
    raw_name = name.encode()
    assert len(raw_name) < 40, name
    type_code, element = TYPES[kind]
    length = len(values)
    assert -16 <= length < 0xF0 - 16
    data = b"".join(struct.pack(element, v) for v in values)
    return bytes([2, len(raw_name)]) + raw_name + bytes([type_code, length + 16]) + data


def collection(plugin: str, phase: str, fields: list[bytes], flags: int = 0) -> bytes:
    return bytes([MODES[(plugin, phase)], flags, len(fields)]) + b"".join(fields)


def defaults(plugin: str) -> dict:
    described = json.loads(PLUGIN_FIELDS.read_text())["plugins"][PLUGINS[plugin]]["fields"]
    return {name: (spec["type"].rstrip("[]"), spec["default"]) for name, spec in described.items()}


def default_fields(plugin: str, **overrides) -> list[bytes]:
    out = []
    for name, (kind, value) in defaults(plugin).items():
        out.append(field(name, kind, overrides.get(name, value)))
    return out


def seeds() -> dict[str, bytes]:
    workspace = field("workspace_bytes", "int64", 1 << 20)
    return {
        "accepted-nms-build-defaults": collection("nms", "build", default_fields("nms")),
        "accepted-nms-build-gaussian-class-aware": collection(
            "nms", "build", default_fields("nms", method=2, class_aware=1, sigma=0.3, min_score=0.001)
        ),
        "accepted-nms-runtime-with-workspace": collection("nms", "runtime", default_fields("nms") + [workspace]),
        "accepted-nms-build-no-fields": collection("nms", "build", []),
        "accepted-roi-build-defaults": collection("roi", "build", default_fields("roi")),
        "accepted-roi-runtime-three-levels": collection(
            "roi", "runtime", default_fields("roi", spatial_scales=[0.125, 0.0625, 0.03125], sampling_ratio=2)
        ),
        "refused-nms-build-workspace-field": collection("nms", "build", default_fields("nms") + [workspace]),
        "refused-nms-runtime-method-3": collection("nms", "runtime", default_fields("nms", method=3)),
        "refused-roi-build-nine-levels": collection("roi", "build", [field("spatial_scales", "float32", [0.5] * 9)]),
        "refused-roi-runtime-float-output-height": collection(
            "roi", "runtime", [field("output_height", "float32", 7.0)]
        ),
        # The two plugin bugs the fuzzer found, as readable cases (regressions/ keeps the raw inputs).
        "refused-nms-runtime-null-field-array": collection(
            "nms", "runtime", default_fields("nms"), flags=NULL_FIELD_ARRAY
        ),
        "refused-roi-build-zero-spatial-scales": collection(
            "roi", "build", [field("spatial_scales", "float32", [0.0] * 7)]
        ),
        "refused-roi-runtime-output-width-0": collection("roi", "runtime", default_fields("roi", output_width=0)),
        "read-nms-reader-defaults": collection("nms", "reader", default_fields("nms")),
        "read-roi-reader-defaults": collection("roi", "reader", default_fields("roi")),
    }


def main() -> int:
    SEEDS.mkdir(parents=True, exist_ok=True)
    for old in SEEDS.iterdir():
        old.unlink()
    for name, data in seeds().items():
        (SEEDS / name).write_bytes(data)
    print(f"wrote {len(seeds())} seeds to {SEEDS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
