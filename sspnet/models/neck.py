"""Necks: SSFPN (docs/model.md), and for ablations a plain FPN and a plain FPN with an auxiliary CAM.

All take (C2, C3, C4, C5) and return `(features, attention_maps)`: features = (P2..P6) at
strides 4..64 with `out_channels` channels; attention_maps = (A0..A3), each [N, 1, H_l, W_l] in
[0, 1] at strides 4..32 (SSFPN, FPNWithCAM) or () (FPN). Module names mirror the original mmdetection checkpoint's
keys: `lateral_convs.{i}.conv`, `fpn_convs.{i}.conv`, `CAM.dila_conv`, `CAM.down_conv`,
`CAM.att_conv`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvModule(nn.Module):
    """A Conv2d (with bias) stored as `.conv`, optionally followed by ReLU.

    Exists only so parameter names carry mmcv ConvModule's extra `.conv.` segment.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, relu: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return F.relu(x) if self.relu else x


def resize_nearest(x: Tensor, like: Tensor) -> Tensor:
    """Nearest-neighbour resize of x to the spatial size of `like`."""
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling of the CAM: 4 branches of out_channels / 4, concatenated.

    Branches: 1x1; 3x3 dilation 2; 3x3 dilation 5; global average pool -> 1x1 -> broadcast.
    Every branch is followed by ReLU; no BatchNorm.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        if out_channels % 4:
            raise ValueError(f"ASPP out_channels must be divisible by 4, got {out_channels}")
        branch = out_channels // 4
        self.aspp = nn.ModuleList(
            [
                nn.Conv2d(in_channels, branch, 1),
                nn.Conv2d(in_channels, branch, 3, padding=2, dilation=2),
                nn.Conv2d(in_channels, branch, 3, padding=5, dilation=5),
                nn.Conv2d(in_channels, branch, 1),
            ]
        )

    def forward(self, x: Tensor) -> Tensor:
        outs = [F.relu(conv(x)) for conv in self.aspp[:3]]
        pooled = F.relu(self.aspp[3](F.adaptive_avg_pool2d(x, 1)))
        outs.append(pooled.expand(-1, -1, x.shape[2], x.shape[3]))
        return torch.cat(outs, dim=1)


class ContextAttentionModule(nn.Module):
    """CAM: fuses all laterals at stride 4 and predicts one attention map per level.

    forward: laterals (L0..L3) -> (A0..A3), A_i = sigmoid(att_conv_i(G_i)), where
    G_0 = down_conv_0(dila_conv(concat[L0, up(L1), up(L2), up(L3)])) and
    G_i = down_conv_i(G_{i-1}) with stride 2 (so A_i has L_i's spatial size).
    """

    def __init__(self, channels: int, num_levels: int = 4):
        super().__init__()
        self.dila_conv = nn.Sequential(
            nn.Conv2d(channels * num_levels, channels, 3, padding=1),
            ASPP(channels, channels),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        self.down_conv = nn.ModuleList(
            [nn.Conv2d(channels, channels, 3, stride=1 if i == 0 else 2, padding=1) for i in range(num_levels)]
        )
        self.att_conv = nn.ModuleList([nn.Conv2d(channels, 1, 3, padding=1) for _ in range(num_levels)])

    def forward(self, laterals: Sequence[Tensor]) -> tuple[Tensor, ...]:
        fused = torch.cat([laterals[0]] + [resize_nearest(x, laterals[0]) for x in laterals[1:]], dim=1)
        x = self.dila_conv(fused)
        attention = []
        for down, att in zip(self.down_conv, self.att_conv):
            x = down(x)
            attention.append(torch.sigmoid(att(x)))
        return tuple(attention)


def _add_pyramid_convs(neck: nn.Module, name: str, in_channels: Sequence[int], out_channels: int) -> None:
    """The 1x1 lateral and 3x3 output convolution of every level, which both necks have under the same
    key names (a checkpoint's neck weights load into either)."""
    if len(in_channels) != neck.num_levels:
        raise ValueError(f"{name} needs 4 input levels (C2..C5), got in_channels={list(in_channels)}")
    neck.out_channels = out_channels
    neck.lateral_convs = nn.ModuleList([ConvModule(c, out_channels, 1) for c in in_channels])
    neck.fpn_convs = nn.ModuleList([ConvModule(out_channels, out_channels, 3, padding=1) for _ in in_channels])


def _init_neck(neck: nn.Module) -> None:
    """mmdet re-initialises every Conv2d of the neck with Xavier-uniform, bias 0 (mmdetection 2.19 init_weights)."""
    for module in neck.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class SSFPN(nn.Module):
    """Scale Selection FPN (CAM, SEM and SSM: docs/model.md).

    1. L_i = lateral_i(C_{i+2})                      (1x1 conv)
    2. A_i = CAM(L_0..L_3)                           (attention, [N, 1, H_i, W_i])
    3. L_i <- (1 + A_i) * L_i                         (scale enhancement)
    4. for i = 3, 2, 1: L_{i-1} <- L_{i-1} + A_{i-1} * up(A_i) * up(L_i)   (scale selection)
    5. P_{i+2} = (1 + A_i) * fpn_conv_i(L_i)          (3x3 conv, attention applied again)
    6. P6 = max_pool(P5, kernel 1, stride 2)
    """

    num_levels = 4

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256):
        super().__init__()
        _add_pyramid_convs(self, "SSFPN", in_channels, out_channels)
        self.CAM = ContextAttentionModule(out_channels, self.num_levels)
        _init_neck(self)

    def forward(self, inputs: Sequence[Tensor]) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        attention = self.CAM(laterals)
        laterals = [(1 + a) * lat for a, lat in zip(attention, laterals)]
        for i in range(self.num_levels - 1, 0, -1):
            gate = attention[i - 1] * resize_nearest(attention[i], attention[i - 1])
            laterals[i - 1] = laterals[i - 1] + gate * resize_nearest(laterals[i], laterals[i - 1])
        outs = [(1 + a) * conv(lat) for a, conv, lat in zip(attention, self.fpn_convs, laterals)]
        outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs), attention


class FPN(nn.Module):
    """Plain FPN (no attention) with SSFPN's interface and key names; returns (P2..P6, ())."""

    num_levels = 4

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256):
        super().__init__()
        _add_pyramid_convs(self, "FPN", in_channels, out_channels)
        _init_neck(self)

    def forward(self, inputs: Sequence[Tensor]) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        for i in range(self.num_levels - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + resize_nearest(laterals[i], laterals[i - 1])
        outs = [conv(lat) for conv, lat in zip(self.fpn_convs, laterals)]
        outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs), ()


class FPNWithCAM(FPN):
    """Plain FPN plus SSFPN's CAM as an auxiliary branch: the attention maps are predicted from the
    laterals (and supervised when the model has an attention loss) but never gate the features.

    Separates the two things SSFPN adds: with the attention loss, this model gets the extra
    supervision of the backbone and laterals without the scale selection. Returns (P2..P6, A0..A3).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256):
        super().__init__(in_channels, out_channels)
        self.CAM = ContextAttentionModule(out_channels, self.num_levels)
        _init_neck(self)

    def forward(self, inputs: Sequence[Tensor]) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        attention = self.CAM(laterals)
        for i in range(self.num_levels - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + resize_nearest(laterals[i], laterals[i - 1])
        outs = [conv(lat) for conv, lat in zip(self.fpn_convs, laterals)]
        outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs), attention
