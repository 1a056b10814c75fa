"""ResNet backbone (frozen stages, norm_eval, local ImageNet weights) and the SSFPN / FPN necks."""

import pytest
import torch
import torchvision
from torch import nn

from sspnet.errors import InputError
from sspnet.models.backbone import ResNetBackbone
from sspnet.models.neck import FPN, SSFPN, FPNWithCAM


# ---- backbone ----------------------------------------------------------------------------
@pytest.mark.parametrize("depth,channels", [(18, (64, 128, 256, 512)), (50, (256, 512, 1024, 2048))])
def test_backbone_outputs_c2_to_c5(depth, channels):
    backbone = ResNetBackbone(depth).eval()
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, 64, 96))
    assert backbone.out_channels == channels
    assert [tuple(o.shape) for o in outs] == [(1, c, 64 // s, 96 // s) for c, s in zip(channels, (4, 8, 16, 32))]


def test_backbone_matches_torchvision_resnet_features():
    backbone = ResNetBackbone(18, frozen_stages=-1).eval()
    reference = torchvision.models.resnet18(weights=None).eval()
    reference.load_state_dict(
        {**backbone.state_dict(), **{k: v for k, v in reference.state_dict().items() if k.startswith("fc.")}}
    )
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = reference.layer4(
            reference.layer3(
                reference.layer2(reference.layer1(reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))))
            )
        )
        assert torch.allclose(backbone(x)[3], expected)


def test_frozen_stages_have_no_trainable_parameters():
    backbone = ResNetBackbone(18, frozen_stages=1)
    for name, param in backbone.named_parameters():
        frozen = name.startswith(("conv1.", "bn1.", "layer1."))
        assert param.requires_grad != frozen, name


def test_norm_eval_keeps_batchnorm_statistics_in_train_mode():
    backbone = ResNetBackbone(18, frozen_stages=1, norm_eval=True).train()
    assert all(not m.training for m in backbone.modules() if isinstance(m, nn.BatchNorm2d))
    assert backbone.layer2.training  # only the norms are switched to eval
    before = backbone.layer3[0].bn1.running_mean.clone()
    backbone(torch.randn(2, 3, 64, 64))
    assert torch.equal(backbone.layer3[0].bn1.running_mean, before)


def test_without_norm_eval_only_frozen_stages_stay_in_eval():
    backbone = ResNetBackbone(18, frozen_stages=1, norm_eval=False).train()
    assert not backbone.bn1.training and not backbone.layer1.training
    assert backbone.layer2[0].bn1.training


def test_invalid_depth_is_rejected():
    with pytest.raises(ValueError, match="depth"):
        ResNetBackbone(42)


def test_imagenet_weights_load_from_a_local_file(tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)  # includes fc.*, which is dropped
    backbone = ResNetBackbone(18)
    backbone.load_imagenet_weights(path)
    assert torch.equal(backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert torch.equal(backbone.bn1.running_var, reference.bn1.running_var)


def test_imagenet_weights_of_another_depth_fail_naming_the_keys(tmp_path):
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match=r"unexpected keys: layer1\.2\."):
        ResNetBackbone(18).load_imagenet_weights(path)
    with pytest.raises(InputError, match="missing.pth"):
        ResNetBackbone(18).load_imagenet_weights(tmp_path / "missing.pth")


# ---- necks -------------------------------------------------------------------------------
def pyramid(batch=2, channels=(16, 24, 32, 40), size=(64, 96)):
    """C2..C5 for an input of `size` (ceil-halving like ResNet)."""
    h, w = size[0] // 4, size[1] // 4
    feats = []
    for c in channels:
        feats.append(torch.randn(batch, c, h, w))
        h, w = (h + 1) // 2, (w + 1) // 2
    return feats


@pytest.mark.parametrize("size", [(64, 96), (100, 70)])
def test_ssfpn_shapes_and_attention_range(size):
    neck = SSFPN([16, 24, 32, 40], out_channels=8).eval()
    inputs = pyramid(size=size)
    with torch.no_grad():
        features, attention = neck(inputs)
    expected = [tuple(x.shape[-2:]) for x in inputs]
    expected.append(((expected[-1][0] + 1) // 2, (expected[-1][1] + 1) // 2))  # P6 = stride-2 subsampling
    assert [tuple(f.shape) for f in features] == [(2, 8, h, w) for h, w in expected]
    assert [tuple(a.shape) for a in attention] == [(2, 1, h, w) for h, w in expected[:4]]
    for a in attention:
        assert a.min() >= 0 and a.max() <= 1


def test_p6_is_strided_subsampling_of_p5():
    neck = SSFPN([16, 24, 32, 40], out_channels=8).eval()
    with torch.no_grad():
        features, _ = neck(pyramid())
    assert torch.equal(features[4], features[3][:, :, ::2, ::2])


def identity_neck(channels, attention_maps):
    """An SSFPN whose convs are identities and whose CAM returns the given maps."""
    neck = SSFPN([channels] * 4, out_channels=channels)
    with torch.no_grad():
        for module in list(neck.lateral_convs) + list(neck.fpn_convs):
            conv = module.conv
            conv.weight.zero_()
            conv.bias.zero_()
            centre = conv.kernel_size[0] // 2
            conv.weight[range(channels), range(channels), centre, centre] = 1.0
    neck.CAM.forward = lambda laterals: tuple(attention_maps)
    return neck


def test_ssm_gate_multiplies_adjacent_constant_attention_maps():
    a = [0.5, 0.25, 0.2, 0.1]
    c = [1.0, 2.0, 3.0, 4.0]
    sizes = [(8, 8), (4, 4), (2, 2), (1, 1)]
    maps = [torch.full((1, 1, *s), v) for v, s in zip(a, sizes)]
    inputs = [torch.full((1, 4, *s), v) for v, s in zip(c, sizes)]
    with torch.no_grad():
        features, attention = identity_neck(4, maps)(inputs)
    # closed form: SEM, then top-down L_{i-1} += a_{i-1} a_i L_i, then P_i = (1 + a_i) L_i
    lat = [(1 + ai) * ci for ai, ci in zip(a, c)]
    for i in (3, 2, 1):
        lat[i - 1] = lat[i - 1] + a[i - 1] * a[i] * lat[i]
    for level in range(4):
        assert torch.allclose(features[level], torch.full_like(features[level], (1 + a[level]) * lat[level])), level
    assert attention[0] is maps[0]


def test_ssm_gate_upsamples_the_coarser_map_nearest():
    torch.manual_seed(0)
    sizes = [(8, 8), (4, 4), (2, 2), (1, 1)]
    maps = [torch.rand(1, 1, *s) for s in sizes]
    inputs = [torch.rand(1, 4, *s) for s in sizes]
    with torch.no_grad():
        features, _ = identity_neck(4, maps)(inputs)

    def up(x, factor):  # nearest upsampling by repetition
        return x.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)

    lat = [(1 + m) * x for m, x in zip(maps, inputs)]
    for i in (3, 2, 1):
        lat[i - 1] = lat[i - 1] + maps[i - 1] * up(maps[i], 2) * up(lat[i], 2)
    for level in range(4):
        assert torch.allclose(features[level], (1 + maps[level]) * lat[level], atol=1e-6)


def test_fpn_has_the_same_interface_without_attention():
    neck = FPN([16, 24, 32, 40], out_channels=8).eval()
    with torch.no_grad():
        features, attention = neck(pyramid())
    assert attention == ()
    assert [f.shape[-2:] for f in features] == [torch.Size(s) for s in [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]]


def test_fpn_with_cam_predicts_maps_that_do_not_touch_the_features():
    torch.manual_seed(0)
    with_cam = FPNWithCAM([16, 24, 32, 40], out_channels=8).eval()
    plain = FPN([16, 24, 32, 40], out_channels=8).eval()
    plain.load_state_dict({k: v for k, v in with_cam.state_dict().items() if not k.startswith("CAM.")})
    inputs = pyramid()
    with torch.no_grad():
        features, attention = with_cam(inputs)
        expected, _ = plain(inputs)
        ssfpn_maps = SSFPN([16, 24, 32, 40], out_channels=8).eval()
        ssfpn_maps.load_state_dict(with_cam.state_dict())
        _, expected_maps = ssfpn_maps(inputs)
    for got, want in zip(features, expected):  # exactly the plain FPN's features
        assert torch.equal(got, want)
    for got, want in zip(attention, expected_maps):  # and exactly SSFPN's CAM maps
        assert torch.equal(got, want)
    # The maps still train: the attention loss reaches the laterals through the CAM.
    with_cam.train()
    _, attention = with_cam([x.requires_grad_() for x in inputs])
    sum(a.sum() for a in attention).backward()
    assert with_cam.lateral_convs[0].conv.weight.grad.abs().sum() > 0


def test_neck_convs_are_xavier_initialised_with_zero_bias():
    neck = SSFPN([16, 24, 32, 40], out_channels=8)
    conv = neck.CAM.dila_conv[0]
    fan_in, fan_out = conv.in_channels * 9, conv.out_channels * 9
    bound = (6 / (fan_in + fan_out)) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.5 * bound
    assert all((m.bias == 0).all() for m in neck.modules() if isinstance(m, nn.Conv2d))


def test_ssfpn_needs_four_levels():
    with pytest.raises(ValueError, match="4 input levels"):
        SSFPN([16, 24, 32], out_channels=8)
