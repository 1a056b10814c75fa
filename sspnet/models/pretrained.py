"""ImageNet weights for the ResNet backbones, through torchvision's weights API.

`pretrained: imagenet` in a preset or `--set`, or `sspnet train --pretrained imagenet`, means torchvision's
IMAGENET1K_V1 weights of the backbone's depth (for ResNet-50 the file resnet50-0676ba61.pth, the weights that
mmdetection's `torchvision://resnet50` loads for the original SSPNet configs). Any other value is the path of a
local torchvision-style .pth file.

Where the file comes from: torch's cache, `$TORCH_HOME/hub/checkpoints` (default ~/.cache/torch/hub/checkpoints).
When it is missing there, torchvision downloads it into that folder (`weights.get_state_dict(check_hash=True)`:
the download is refused unless its SHA-256 starts with the hex digits in the file name). With SSPNET_OFFLINE=1,
or when the download fails, one line names the file and the folder to put it in.

Why a hash check of our own: torch.hub checks the hash only while it downloads; a file that is already in the
cache (copied there by hand from a connected machine, or cut short) is loaded as it is. We check that file's
SHA-256 prefix before using it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from pathlib import Path

from sspnet.errors import InputError, MissingDependencyError

IMAGENET = "imagenet"
OFFLINE_VARIABLE = "SSPNET_OFFLINE"
HASH_IN_FILE_NAME = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's rule: resnet50-0676ba61.pth -> 0676ba61


def imagenet_weights(depth: int):
    """torchvision's IMAGENET1K_V1 weights entry (a WeightsEnum member) of ResNet-`depth`."""
    import torchvision

    return torchvision.models.get_model_weights(f"resnet{depth}").IMAGENET1K_V1


def imagenet_cache_file(depth: int) -> Path:
    """Where torchvision keeps (and downloads) the ImageNet weights of ResNet-`depth`."""
    import torch

    name = imagenet_weights(depth).url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def resolve_pretrained(value: str | os.PathLike | None, depth: int) -> Path | None:
    """The local file that `pretrained` names: None stays None (training from scratch), "imagenet" is
    torchvision's file in torch's cache (downloaded when missing and allowed), anything else a path."""
    if value is None:
        return None
    if str(value) == IMAGENET:
        return fetch_imagenet(depth)
    path = Path(value)
    if not path.is_file():
        raise InputError(
            "the pretrained backbone weights file does not exist",
            path=path,
            field="pretrained",
            expected=f"a torchvision ResNet-{depth} .pth file or '{IMAGENET}'",
        )
    return path


def fetch_imagenet(depth: int) -> Path:
    """torchvision's ImageNet file of ResNet-`depth` in torch's cache, hash-checked; downloaded when missing.

    Processes that start together (torchrun ranks) take turns through a lock file next to it: the first
    downloads, the others then find the file."""
    weights = imagenet_weights(depth)
    path = imagenet_cache_file(depth)
    where = f"put {path.name} (from {weights.url}) into {path.parent}"
    if not path.is_file():
        if os.environ.get(OFFLINE_VARIABLE, "").lower() not in ("", "0", "false", "no"):
            raise MissingDependencyError(
                f"ResNet-{depth} ImageNet weights are not in torch's cache and {OFFLINE_VARIABLE} is set: {where} "
                "(a connected machine downloads it there on the first --pretrained imagenet run)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / f".{path.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
            if not path.is_file():
                _download(weights, depth, where)
            return path  # downloaded (hash-checked) by this process or the one before it
    check_hash_prefix(path)
    return path


def _download(weights, depth: int, where: str) -> None:
    try:
        weights.get_state_dict(progress=True, check_hash=True)  # torchvision / torch.hub: download + hash check
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a hash mismatch a RuntimeError
        reason = " ".join(str(error).split()) or type(error).__name__
        raise MissingDependencyError(
            f"cannot download the ResNet-{depth} ImageNet weights ({reason}): {where}"
        ) from None


def check_hash_prefix(path: Path) -> None:
    """InputError unless the file's SHA-256 starts with the hex digits in its name (torch.hub's convention)."""
    match = HASH_IN_FILE_NAME.search(path.name)
    if match is None:
        return  # a file name without a hash: nothing to check against
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(match.group(1)):
        raise InputError(
            "the cached ImageNet weights are damaged or not the file their name says: delete it and download again",
            path=path,
            expected=f"SHA-256 starting {match.group(1)}",
            got=digest.hexdigest()[: len(match.group(1))],
        )


__all__ = [
    "IMAGENET",
    "OFFLINE_VARIABLE",
    "fetch_imagenet",
    "imagenet_cache_file",
    "imagenet_weights",
    "resolve_pretrained",
]
