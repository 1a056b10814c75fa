"""Resume state: pickle-free round trips, and an optimizer restored from the file continues exactly."""

import json
import random

import numpy as np
import pytest
import torch

from sspnet.engine.state import (
    capture_rng_state,
    decode_resume_state,
    encode_resume_state,
    flatten_to_tensors,
    preserved_rng_state,
    restore_rng_state,
    unflatten_from_tensors,
)
from sspnet.errors import InputError


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


def _step(net, optimizer, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 4, generator=g)
    loss = net(x).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def test_flatten_round_trip_keeps_types():
    nested = {
        "state": {0: {"momentum_buffer": torch.arange(3.0)}, 7: {"m": None}},
        "groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0, 7], "name": "x", "flag": True}],
    }
    tensors = {}
    encoded = flatten_to_tensors(nested, "optim", tensors)
    decoded = unflatten_from_tensors(json.loads(json.dumps(encoded)), tensors)
    assert set(decoded["state"]) == {0, 7}  # int keys survive JSON
    assert torch.equal(decoded["state"][0]["momentum_buffer"], torch.arange(3.0))
    assert decoded["groups"][0]["betas"] == (0.9, 0.99)
    assert decoded["groups"][0] == {**nested["groups"][0]}


def test_flatten_rejects_unstorable_values():
    with pytest.raises(TypeError, match="set"):
        flatten_to_tensors({"a": {1, 2}}, "x", {})
    with pytest.raises(TypeError, match="key"):
        flatten_to_tensors({(1, 2): 3}, "x", {})


def test_restored_optimizer_continues_like_an_uninterrupted_one(tmp_path):
    # reference: 6 uninterrupted SGD steps
    net = _net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    reference_losses = [_step(net, optimizer, s) for s in range(6)]
    reference_weights = {k: v.clone() for k, v in net.state_dict().items()}

    # 3 steps, save, restore into fresh objects, 3 more steps
    net = _net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    losses = [_step(net, optimizer, s) for s in range(3)]
    path = tmp_path / "state.safetensors"
    path.write_bytes(
        encode_resume_state(
            model_state=net.state_dict(),
            optimizer_state=optimizer.state_dict(),
            rng_states=[capture_rng_state()],
            progress={"iteration": 3},
        )
    )
    state = decode_resume_state(path)
    assert state["progress"] == {"iteration": 3}
    net = _net()
    net.load_state_dict(state["model_state"])
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    optimizer.load_state_dict(state["optimizer_state"])
    losses += [_step(net, optimizer, s) for s in range(3, 6)]

    assert losses == reference_losses
    for key, value in net.state_dict().items():
        assert torch.equal(value, reference_weights[key]), key


def test_state_file_is_plain_safetensors_with_json_header(tmp_path):
    from safetensors import safe_open

    net = _net()
    path = tmp_path / "state.safetensors"
    path.write_bytes(
        encode_resume_state(
            model_state=net.state_dict(),
            optimizer_state={"state": {}, "param_groups": []},
            rng_states=[capture_rng_state()],
            progress={"iteration": 0},
        )
    )
    with safe_open(str(path), framework="pt") as f:
        names = set(f.keys())
        header = json.loads(f.metadata()["sspnet_resume_state"])
    assert {"model.0.weight", "model.1.running_mean", "rng.0.torch"} <= names
    assert header["format"] == "sspnet-resume-state"
    assert len(header["rng"][0]["python"][1]) == 625  # Mersenne Twister state + position


def test_decode_rejects_foreign_files(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(1)}, str(path))
    with pytest.raises(InputError, match="not an sspnet resume state"):
        decode_resume_state(path)


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"random bytes that are not safetensors" * 10])
def test_decode_names_a_damaged_file(tmp_path, content):
    path = tmp_path / "last_state.safetensors"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"last_state\.safetensors: not a readable resume state"):
        decode_resume_state(path)


def test_rng_round_trip_reproduces_the_next_draws():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    saved = capture_rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(2))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng_state(*saved)
    got = (random.random(), np.random.rand(), torch.rand(2))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])


def test_preserved_rng_state_leaves_streams_untouched():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    with preserved_rng_state():
        torch.rand(100), random.random(), np.random.rand(7)
    assert torch.equal(torch.rand(3), expected)
