"""--pretrained imagenet: torchvision's ImageNet weights from torch's cache ($TORCH_HOME/hub/checkpoints),
hash-checked, one clear line when they are missing offline. Nothing is downloaded: every test points
TORCH_HOME at an empty temporary folder and sets SSPNET_OFFLINE=1 (or replaces the download)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.error

import pytest
import torch
import torchvision

from sspnet.errors import InputError, MissingDependencyError
from sspnet.models import build_model
from sspnet.models import pretrained as pretrained_module
from sspnet.models.pretrained import fetch_imagenet, imagenet_cache_file, resolve_pretrained

SMALL = "fovea_r18_sspnet_small"  # ResNet-18: torchvision's resnet18-f37072fd.pth


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("SSPNET_OFFLINE", "1")
    return home


def test_the_cache_file_is_torchvisions(torch_home):
    assert imagenet_cache_file(50) == torch_home / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    assert imagenet_cache_file(18).name == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]


def test_offline_without_the_file_names_file_and_folder(torch_home):
    with pytest.raises(MissingDependencyError) as error:
        resolve_pretrained("imagenet", 50)
    message = str(error.value)
    assert "resnet50-0676ba61.pth" in message and str(torch_home / "hub" / "checkpoints") in message
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in message


def test_a_cached_file_torchvision_would_load_unchecked_is_refused(torch_home):
    """What really happens: torch.hub checks the SHA-256 prefix only while downloading. A file already in
    the cache under the right name is loaded as it is, even with check_hash=True; fetch_imagenet refuses it."""
    path = imagenet_cache_file(18)
    path.parent.mkdir(parents=True)
    torch.save({"not": torch.zeros(1)}, path)
    loaded = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True)
    assert list(loaded) == ["not"]  # torchvision returned the wrong file without a word
    with pytest.raises(InputError, match=r"damaged or not the file .*expected SHA-256 starting f37072fd"):
        fetch_imagenet(18)


class FakeWeights:
    """Stands in for a torchvision weights entry whose file name carries the hash of `content`."""

    def __init__(self, content: bytes, download=None):
        self.url = f"https://download.pytorch.org/models/resnet18-{hashlib.sha256(content).hexdigest()[:8]}.pth"
        self.download = download

    def get_state_dict(self, progress=True, check_hash=False):
        assert check_hash, "the download must be hash-checked"
        return self.download()


@pytest.fixture
def resnet18_file(tmp_path):
    """A torchvision-layout ResNet-18 state dict (random weights) as bytes, and the state dict."""
    torch.manual_seed(3)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "r18.pth"
    torch.save(state, path)
    return path.read_bytes(), state


def test_imagenet_weights_from_the_cache_reach_the_backbone(torch_home, resnet18_file, monkeypatch):
    content, state = resnet18_file
    fake = FakeWeights(content)
    monkeypatch.setattr(pretrained_module, "imagenet_weights", lambda depth: fake)
    path = imagenet_cache_file(18)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    model = build_model(SMALL, pretrained="imagenet")
    backbone = model.backbone.state_dict()
    assert all(torch.equal(backbone[key], value) for key, value in state.items() if not key.startswith("fc."))
    # and a local path keeps working
    local = build_model(SMALL, pretrained=str(path))
    assert torch.equal(local.backbone.conv1.weight, state["conv1.weight"])


def test_a_failed_download_is_one_line(torch_home, monkeypatch):
    monkeypatch.delenv("SSPNET_OFFLINE")

    def no_network():
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(pretrained_module, "imagenet_weights", lambda depth: FakeWeights(b"x", no_network))
    with pytest.raises(MissingDependencyError) as error:
        fetch_imagenet(18)
    assert "cannot download the ResNet-18 ImageNet weights" in str(error.value)
    assert "\n" not in str(error.value) and str(torch_home / "hub" / "checkpoints") in str(error.value)


def test_a_missing_local_file_names_it(tmp_path):
    with pytest.raises(InputError, match=r"does not exist .*nope\.pth: pretrained"):
        resolve_pretrained(tmp_path / "nope.pth", 50)


def test_train_pretrained_imagenet_offline_is_one_line_exit_2(torch_home, tmp_path):
    """The CLI checks the weights before any work: one line naming the file and the folder, exit 2."""
    from sspnet.data.synth import write_dataset

    data = tmp_path / "data"
    write_dataset(data, 4, seed=1, val_fraction=0.5, size=(64, 64), progress=False)
    env = {**os.environ, "TORCH_HOME": str(torch_home), "SSPNET_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("SSPNET_DEBUG", None)
    command = (
        f"train --preset faster_rcnn_r50_sspnet --data {data} --out {tmp_path / 'run'} --pretrained imagenet "
        "--max-iters 1 --device cpu"
    )
    result = subprocess.run(
        [sys.executable, "-m", "sspnet", *command.split()], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("sspnet train: ") and "resnet50-0676ba61.pth" in line
    assert str(torch_home / "hub" / "checkpoints") in line
    assert not (tmp_path / "run").exists()


def test_processes_starting_together_download_once(torch_home, resnet18_file, monkeypatch):
    """torchrun ranks resolve `imagenet` at the same time: one downloads, the others wait and find the file."""
    import threading
    import time

    monkeypatch.delenv("SSPNET_OFFLINE")
    content, _ = resnet18_file
    downloads = []

    def slow_download():
        downloads.append(threading.get_ident())
        time.sleep(0.5)  # the others arrive while the file is not there yet
        path = imagenet_cache_file(18)
        path.write_bytes(content)

    monkeypatch.setattr(pretrained_module, "imagenet_weights", lambda depth: FakeWeights(content, slow_download))
    found, errors = [], []

    def rank():
        try:
            found.append(fetch_imagenet(18))
        except Exception as error:  # collected: the assertion below shows it
            errors.append(error)

    threads = [threading.Thread(target=rank) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(downloads) == 1
    assert found == [imagenet_cache_file(18)] * 3
