"""`sspnet convert ORIGINAL.pth OUT.safetensors`: an original SSPNet checkpoint to our format."""

from __future__ import annotations

from sspnet.io.table import print_table

HELP = "convert an original SSPNet (mmdetection) .pth checkpoint to sspnet's .safetensors"


def add_arguments(parser):
    parser.add_argument("source", metavar="ORIGINAL.pth", help="mmdetection checkpoint of SSPNet")
    parser.add_argument("output", metavar="OUT.safetensors", help="where to write the converted checkpoint")
    parser.add_argument(
        "--preset",
        help="preset to build (default: faster_rcnn_r50_sspnet or fovea_r50_sspnet, from the keys)",
    )


def run(args) -> int:
    from sspnet.checkpoint import check_preset_name, model_from_mmdet, save_checkpoint
    from sspnet.io.checkpoint_files import read_mmdet_checkpoint
    from sspnet.io.outputs import OutputGuard

    # Outputs first: `convert IN IN` or an output holding another kind of file is refused untouched.
    OutputGuard(inputs=[args.source], verb="convert").check_file(args.output, kind="safetensors")
    check_preset_name(args.preset)
    state, info = read_mmdet_checkpoint(args.source)
    model = model_from_mmdet(state, info, args.preset, source=args.source)  # checks every key and shape
    preset = model.checkpoint_info["preset"]
    extra = {"converted_from": str(args.source), "source": "mmdetection", **info["meta"]}
    save_checkpoint(args.output, model, preset=preset, classes=info["classes"], extra=extra)
    parameters = sum(p.numel() for p in model.parameters())
    print_table(
        [
            ("source", args.source),
            ("variant", info["variant"]),
            ("preset", preset),
            ("matched keys", f"{len(state)} / {len(model.state_dict())}"),
            ("tensors", str(len(state))),
            ("parameters", f"{parameters:,}"),
            ("classes", ", ".join(info["classes"])),
            ("mmdet version", str(info["meta"].get("mmdet_version", "-"))),
            ("output", args.output),
        ],
        headers=("quantity", "value"),
    )
    return 0
