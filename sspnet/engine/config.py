"""The resolved training configuration: preset + dataset + schedule in one dataclass.

`sspnet train` turns its command line into a `TrainConfig` (defaults from the original
recipe), completes the schedule once the training-set size is known (`finalize_schedule`), and
writes it to ``RUN_DIR/config.yaml``. `--resume` reads that file back (`load_config`), so a
resumed run continues with exactly the settings it started with.

Dataset (`--data`): either a folder laid out as `sspnet synth` writes it
(``images/``, ``annotations/train.json``, ``annotations/val.json``) or a YAML file naming the
image folder and annotation file of each split (relative paths are relative to the YAML file)::

    train: {images: data/dense/images, annotations: data/dense/annotation/train.json}
    val:   {images: data/dense/test_images, annotations: data/dense/annotation/test.json}
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sspnet.engine.schedule import milestones_for_run, warmup_iters_for_run
from sspnet.errors import InputError, UsageError

AUGMENT_CHOICES = ("full", "light", "none")
DEVICE_CHOICES = ("cpu", "cuda")
SPLITS = ("train", "val")


@dataclass
class SplitConfig:
    """One split: the folder the annotation's `file_name`s are relative to, and the COCO json."""

    images: str
    annotations: str


@dataclass
class DataConfig:
    source: str  # the --data argument as given (folder or YAML file)
    train: SplitConfig
    val: SplitConfig | None = None


@dataclass
class TrainConfig:
    """Everything a training run depends on. Schedule fields are filled by `finalize_schedule`."""

    preset: str
    data: DataConfig
    out: str
    model_overrides: dict[str, Any] = field(default_factory=dict)
    # length of the run: exactly one of epochs / max_iters
    epochs: int | None = None
    max_iters: int | None = None
    # optimisation (the original configs' schedule)
    batch_size: int = 1  # images per process
    lr: float = 0.002
    momentum: float = 0.9
    weight_decay: float = 1e-4
    gamma: float = 0.1
    warmup_ratio: float = 0.001
    clip_grad: float | None = None  # max gradient L2 norm; the original does not clip
    amp: bool = False
    # data
    augment: str = "full"
    erase_ignore: bool = False
    workers: int = 2
    # bookkeeping
    device: str = "cpu"
    seed: int = 0
    eval_every: int = 1  # epochs; 0 = never
    log_every: int = 50  # iterations (the original logs every 50)
    checkpoint_every: int = 0  # iterations; 0 = at the end of every epoch only
    world_size: int = 1
    # filled by finalize_schedule
    iters_per_epoch: int | None = None
    total_iters: int | None = None
    warmup_iters: int | None = None
    milestones: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- dataset argument ----------------------------------------------------------------------------


def resolve_data(source: str | Path) -> DataConfig:
    """Turn `--data` (a synth-style folder or a YAML file) into checked split paths."""
    path = Path(source)
    if not path.exists():
        raise UsageError(f"--data: {path} does not exist (expected a dataset folder or a YAML file)")
    if path.is_dir():
        return _data_from_folder(path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise InputError(f"--data: {path} is a file but not a .yaml/.yml dataset description")
    return _data_from_yaml(path)


def _data_from_folder(folder: Path) -> DataConfig:
    images = folder / "images"
    train_json = folder / "annotations" / "train.json"
    val_json = folder / "annotations" / "val.json"
    missing = [str(p) for p in (images, train_json) if not p.exists()]
    if missing:
        raise InputError(
            f"--data: folder {folder} is not laid out as `sspnet synth` writes it; missing: "
            f"{', '.join(missing)} (expected images/, annotations/train.json, optional annotations/val.json)"
        )
    val = SplitConfig(str(images.resolve()), str(val_json.resolve())) if val_json.exists() else None
    return DataConfig(str(folder), SplitConfig(str(images.resolve()), str(train_json.resolve())), val)


def _data_from_yaml(path: Path) -> DataConfig:
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"--data: {path} is not valid YAML ({_one_line(exc)})") from None
    except UnicodeDecodeError:
        raise InputError(f"--data: {path} is not a text (YAML) file") from None
    if not isinstance(spec, dict):
        raise InputError(f"--data: {path} must hold a mapping with keys {SPLITS}, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(SPLITS))
    if unknown:
        raise InputError(f"--data: {path} has unknown key(s) {unknown}; allowed: {list(SPLITS)}")
    if "train" not in spec:
        raise InputError(f"--data: {path} has no 'train' split (keys found: {sorted(spec)})")
    splits = {name: _split_from_yaml(path, name, spec[name]) for name in SPLITS if spec.get(name) is not None}
    return DataConfig(str(path), splits["train"], splits.get("val"))


def _split_from_yaml(path: Path, name: str, entry: Any) -> SplitConfig:
    where = f"--data: {path}: split '{name}'"
    if not isinstance(entry, dict):
        raise InputError(f"{where} must be a mapping {{images: DIR, annotations: FILE}}, got {entry!r}")
    keys = set(entry)
    if keys != {"images", "annotations"}:
        raise InputError(f"{where} must have exactly the keys ['annotations', 'images'], got {sorted(keys)}")
    resolved = {}
    for key, want_dir in (("images", True), ("annotations", False)):
        value = entry[key]
        if not isinstance(value, str) or not value:
            raise InputError(f"{where}: '{key}' must be a non-empty path string, got {value!r}")
        target = Path(value) if Path(value).is_absolute() else path.parent / value
        if want_dir and not target.is_dir():
            raise InputError(f"{where}: images folder {target} does not exist or is not a folder")
        if not want_dir and not target.is_file():
            raise InputError(f"{where}: annotation file {target} does not exist")
        resolved[key] = str(target.resolve())
    return SplitConfig(**resolved)


# --- checks and the schedule ---------------------------------------------------------------------


def validate(config: TrainConfig) -> None:
    """Raise UsageError naming the option for every inconsistent setting."""
    if (config.epochs is None) == (config.max_iters is None):
        raise UsageError(
            f"give exactly one of --epochs / --max-iters (got epochs={config.epochs}, max_iters={config.max_iters})"
        )
    positive = {"--epochs": config.epochs, "--max-iters": config.max_iters, "--batch-size": config.batch_size}
    for option, value in positive.items():
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise UsageError(f"{option} must be a positive integer, got {value!r}")
    if not (isinstance(config.lr, (int, float)) and 0 < config.lr < math.inf):
        raise UsageError(f"--lr must be a finite number > 0, got {config.lr!r}")
    if config.clip_grad is not None and not (
        isinstance(config.clip_grad, (int, float)) and 0 < config.clip_grad < math.inf
    ):
        raise UsageError(f"--clip-grad must be a finite number > 0, got {config.clip_grad!r}")
    if not isinstance(config.seed, int) or not 0 <= config.seed < 2**32:
        raise UsageError(f"--seed must be an integer in [0, 2**32), got {config.seed!r}")
    nonneg = {
        "--workers": config.workers,
        "--eval-every": config.eval_every,
        "--checkpoint-every": config.checkpoint_every,
    }
    for option, value in nonneg.items():
        if not isinstance(value, int) or value < 0:
            raise UsageError(f"{option} must be an integer >= 0, got {value!r}")
    if not isinstance(config.log_every, int) or config.log_every <= 0:
        raise UsageError(f"--log-every must be a positive integer, got {config.log_every!r}")
    if config.augment not in AUGMENT_CHOICES:
        raise UsageError(f"--augment must be one of {AUGMENT_CHOICES}, got {config.augment!r}")
    if config.device not in DEVICE_CHOICES:
        raise UsageError(f"--device must be one of {DEVICE_CHOICES}, got {config.device!r}")
    if config.amp and config.device != "cuda":
        raise UsageError("--amp needs --device cuda (mixed precision is used on GPU only)")
    if not isinstance(config.model_overrides, dict):
        raise UsageError(f"model overrides must be a mapping, got {type(config.model_overrides).__name__}")


def finalize_schedule(config: TrainConfig, dataset_size: int, world_size: int) -> TrainConfig:
    """Fill the run length, warm-up and milestones once the training-set size is known."""
    global_batch = config.batch_size * world_size
    config.world_size = world_size
    config.iters_per_epoch = -(-dataset_size // global_batch)
    if config.epochs is not None:
        config.total_iters = config.epochs * config.iters_per_epoch
        config.milestones = list(milestones_for_run(config.total_iters, config.iters_per_epoch))
    else:
        config.total_iters = config.max_iters
        config.milestones = list(milestones_for_run(config.total_iters))
    config.warmup_iters = warmup_iters_for_run(config.total_iters)
    return config


# --- config.yaml ---------------------------------------------------------------------------------


def save_config(config: TrainConfig, path: Path) -> None:
    from sspnet.io.atomic import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(config.to_dict(), sort_keys=False))


def config_from_dict(raw: dict[str, Any], where: str = "config") -> TrainConfig:
    """Build a TrainConfig from a mapping (config.yaml), rejecting unknown / missing keys
    (InputError naming `where`; invalid settings: UsageError as for the command line)."""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping, got {type(raw).__name__}")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}")
    for required in ("preset", "data", "out"):
        if required not in raw:
            raise InputError(f"{where}: missing key {required!r}")
    values = dict(raw)
    data = values["data"]
    try:
        values["data"] = DataConfig(
            source=data["source"],
            train=SplitConfig(**data["train"]),
            val=SplitConfig(**data["val"]) if data.get("val") else None,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{where}: malformed 'data' entry ({exc})") from None
    config = TrainConfig(**values)
    validate(config)
    return config


def load_config(path: Path) -> TrainConfig:
    """The config.yaml of a run folder (what --resume continues)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist: nothing to resume in {path.parent} (run without --resume first)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: the run's config is not valid YAML ({_one_line(exc)})") from None
    return config_from_dict(raw, where=str(path))


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
