"""`sspnet train`: train a preset on a dataset, with checkpoints, exact resume and torchrun DDP.

    sspnet train --preset fovea_r18_sspnet_small --data DATA_DIR --out runs/a --max-iters 2000
    sspnet train --recipe synthetic-cpu --data DATA_DIR --out runs/b --max-iters 1600   # the demo's recipe
    sspnet train --out runs/a --resume                      # continue after an interruption
    torchrun --nproc_per_node 2 -m sspnet train --preset ... --device cuda ...

Defaults are the original recipe (the configs of the original code): SGD lr 0.002, momentum 0.9, weight decay 1e-4,
12 epochs with x0.1 steps after 8/12 and 11/12 of the run, linear warm-up (500 iterations, at most
10 % of the run) from factor 0.001, batch 1 image/process (Faster R-CNN) or 4 (FoveaBox), no
gradient clipping, mixed precision on GPU.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from sspnet.errors import SSPNetError, UsageError
from sspnet.io.table import print_table

HELP = "train a model preset (config-driven; checkpoints, --resume, torchrun multi-process)"

# Per-process batch of the original configs, by variant.
DEFAULT_BATCH = {"faster_rcnn": 1, "fovea": 4}
DEFAULT_EPOCHS = 12
# Options that may differ between the original launch and --resume (they do not change the math).
RESUME_MAY_CHANGE = ("workers", "eval_every", "log_every", "checkpoint_every")


def add_arguments(parser):
    parser.add_argument("--preset", help="model preset (sspnet info --presets)")
    parser.add_argument(
        "--recipe",
        help="named training recipe (preset + model and optimiser settings; "
        "sspnet/engine/recipes.py): synthetic-cpu (FoveaBox, the demo's), "
        "synthetic-cpu-faster-rcnn. Flags given explicitly win",
    )
    parser.add_argument(
        "--data",
        help="dataset folder as `sspnet synth` writes it, or a YAML naming each "
        "split's images folder and annotation file",
    )
    parser.add_argument("--out", required=True, help="run folder (config.yaml, log.jsonl, checkpoints)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help=f"training epochs (default {DEFAULT_EPOCHS})")
    length.add_argument("--max-iters", type=int, help="training iterations instead of epochs")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last complete checkpoint, exactly"
    )
    parser.add_argument("--batch-size", type=int, help="images per process (default: 1 Faster R-CNN, 4 FoveaBox)")
    parser.add_argument("--lr", type=float, help="base learning rate (default 0.002)")
    parser.add_argument("--workers", type=int, help="data-loading worker processes (default 2)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    parser.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mixed precision (GPU only; default on with --device cuda)",
    )
    parser.add_argument("--clip-grad", type=float, metavar="NORM", help="clip the gradient L2 norm (default off)")
    parser.add_argument(
        "--eval-every", type=int, metavar="E", help="evaluate on val every E epochs (default 1; 0 = never)"
    )
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument(
        "--augment",
        choices=("full", "light", "none"),
        help="training augmentation: the original pipeline, a cheap CPU one, or none (default full)",
    )
    parser.add_argument(
        "--erase-ignore", action="store_true", default=None, help="blank ignore/uncertain regions in training images"
    )
    parser.add_argument("--log-every", type=int, metavar="N", help="log.jsonl record every N iterations (default 50)")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="also checkpoint every N iterations (default 0: at every epoch end)",
    )
    parser.add_argument(
        "--pretrained",
        metavar="imagenet|PATH",
        help="backbone start: 'imagenet' = torchvision's ImageNet weights (downloaded once into "
        "torch's cache, $TORCH_HOME/hub/checkpoints, hash-checked), or a local .pth; "
        "default: the preset's (the R50 presets: from scratch)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model setting override, value in YAML syntax (repeatable), e.g. --set score_thr=0.1",
    )


def parse_overrides(items: list[str]) -> dict:
    """['score_thr=0.1', 'neck=fpn'] -> {'score_thr': 0.1, 'neck': 'fpn'} (values parsed as YAML)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise UsageError(f"--set {item!r}: the value is not valid YAML ({' '.join(str(exc).split())})") from None
    return overrides


def config_from_args(args):
    """A validated TrainConfig (schedule not yet finalised) from the command line."""
    import torch

    from sspnet.engine.config import TrainConfig, resolve_data, validate
    from sspnet.models.presets import load_preset, preset_names

    recipe_values, overrides = {}, {}
    if args.recipe:
        from sspnet.engine.recipes import get_recipe

        try:
            recipe = get_recipe(args.recipe)
        except SSPNetError:
            raise
        except ValueError as exc:  # an unknown name
            raise UsageError(f"--recipe: {exc}") from None
        if args.preset and args.preset != recipe.preset:
            raise UsageError(f"--recipe {recipe.name} trains preset {recipe.preset}, not --preset {args.preset}")
        args.preset = recipe.preset
        overrides = dict(recipe.overrides)
        recipe_values = {
            "batch_size": recipe.batch_size,
            "lr": recipe.lr,
            "clip_grad": recipe.clip_grad,
            "augment": recipe.augment,
        }
    if not args.preset:
        raise UsageError("--preset or --recipe is required (sspnet info --presets lists the presets)")
    if not args.data:
        raise UsageError("--data is required (a `sspnet synth` folder or a dataset YAML)")
    if args.preset not in preset_names():
        raise UsageError(f"--preset: unknown preset {args.preset!r}; available: {', '.join(preset_names())}")
    overrides.update(parse_overrides(args.overrides))
    if args.pretrained is not None:
        overrides["pretrained"] = args.pretrained
    try:
        model_config = load_preset(args.preset, **overrides)  # validates the overrides
    except SSPNetError:
        raise
    except (ValueError, TypeError) as exc:  # load_preset's documented errors for a bad setting
        raise UsageError(f"--set: {exc}") from None
    from sspnet.models.pretrained import resolve_pretrained

    resolve_pretrained(model_config.pretrained, model_config.depth)  # found (or downloaded) before any work
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    given = {
        "epochs": args.epochs,
        "max_iters": args.max_iters,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "workers": args.workers,
        "device": device,
        "amp": args.amp,
        "clip_grad": args.clip_grad,
        "eval_every": args.eval_every,
        "seed": args.seed,
        "augment": args.augment,
        "erase_ignore": args.erase_ignore,
        "log_every": args.log_every,
        "checkpoint_every": args.checkpoint_every,
    }
    values = {**recipe_values, **{k: v for k, v in given.items() if v is not None}}
    values.setdefault("batch_size", DEFAULT_BATCH[model_config.variant])
    values.setdefault("amp", device == "cuda")
    if values.get("epochs") is None and values.get("max_iters") is None:
        values["epochs"] = DEFAULT_EPOCHS
    config = TrainConfig(
        preset=args.preset, data=resolve_data(args.data), out=str(args.out), model_overrides=overrides, **values
    )
    validate(config)
    return config


def resume_config(args):
    """The stored config of --out; options given again must agree with it (except a few)."""
    from sspnet.engine.config import load_config
    from sspnet.engine.trainer import CONFIG_FILE

    config = load_config(Path(args.out) / CONFIG_FILE)
    given = {
        "preset": args.preset,
        "epochs": args.epochs,
        "max_iters": args.max_iters,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "device": args.device,
        "amp": args.amp,
        "clip_grad": args.clip_grad,
        "seed": args.seed,
        "augment": args.augment,
        "erase_ignore": args.erase_ignore,
        "model_overrides": parse_overrides(args.overrides) or None,
    }
    for key, value in given.items():
        if value is not None and value != getattr(config, key):
            option = "--set" if key == "model_overrides" else "--" + key.replace("_", "-")
            raise UsageError(
                f"--resume: {option} {value!r} differs from the stored run ({getattr(config, key)!r} in "
                f"{Path(args.out) / CONFIG_FILE}); a resumed run keeps its settings"
            )
    if args.data is not None and Path(args.data).resolve() != Path(config.data.source).resolve():
        raise UsageError(f"--resume: --data {args.data!r} differs from the stored run ({config.data.source!r})")
    for key in RESUME_MAY_CHANGE:
        value = getattr(args, key)
        if value is not None:
            setattr(config, key, value)
    return config


def run(args) -> int:
    from sspnet.engine.distributed import shutdown_distributed
    from sspnet.engine.trainer import Trainer

    # Everything is checked before anything is written: options and data paths here, then the
    # Trainer refuses an output that would destroy an input and a run folder another process
    # owns (BusyError), and loads the data (printing what it kept and dropped) before training.
    config = resume_config(args) if args.resume else config_from_args(args)
    try:
        result = Trainer(config, resume=args.resume).fit()
    finally:
        shutdown_distributed()
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 reports
        return 0
    rows = [
        ("iterations", f"{result.iteration} / {result.total_iters}"),
        ("run folder", str(result.run_dir)),
        ("best val AP50_tiny (%)", "-" if result.best_metric is None else f"{result.best_metric:.2f}"),
    ]
    print_table(rows, headers=("training", "result"))
    return 0
