"""ResNet backbone: torchvision's ResNet body (mmdetection-compatible key names), outputs C2..C5.

Matches mmdetection's ResNet(style='pytorch') as the original configs use it: stride on the 3x3 conv, frozen stages
that never train, and `norm_eval` (every BatchNorm uses and keeps its running statistics).
"""

from __future__ import annotations

from pathlib import Path

import torchvision
from torch import Tensor, nn

RESNET_BUILDERS = {
    18: torchvision.models.resnet18,
    34: torchvision.models.resnet34,
    50: torchvision.models.resnet50,
    101: torchvision.models.resnet101,
}


class ResNetBackbone(nn.Module):
    """ResNet-{18,34,50,101} without avgpool / fc.

    forward: [N, 3, H, W] float -> (C2, C3, C4, C5) at strides 4, 8, 16, 32 with
    `out_channels` channels (64/128/256/512 times the block expansion: 1 or 4).

    frozen_stages: -1 nothing frozen, 0 the stem (conv1, bn1), k >= 1 the stem and layer1..layerk.
    Frozen parts have requires_grad=False and always run in eval mode.
    norm_eval: every BatchNorm stays in eval mode during training (running stats used, not updated);
    the affine weights of non-frozen stages still train.
    """

    def __init__(self, depth: int = 50, frozen_stages: int = 1, norm_eval: bool = True):
        super().__init__()
        if depth not in RESNET_BUILDERS:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNET_BUILDERS)}, got {depth}")
        if not -1 <= frozen_stages <= 4:
            raise ValueError(f"frozen_stages must be in [-1, 4], got {frozen_stages}")
        resnet = RESNET_BUILDERS[depth](weights=None)
        self.depth = depth
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4
        expansion = 4 if depth >= 50 else 1
        self.out_channels = tuple(c * expansion for c in (64, 128, 256, 512))
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        for module in self._frozen_modules():
            for param in module.parameters():
                param.requires_grad_(False)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        stages = [self.conv1, self.bn1]
        stages += [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]
        return stages

    def train(self, mode: bool = True) -> ResNetBackbone:
        super().train(mode)
        if mode:
            for module in self._frozen_modules():
                module.eval()
            if self.norm_eval:
                for module in self.modules():
                    if isinstance(module, nn.modules.batchnorm._BatchNorm):
                        module.eval()
        return self

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return c2, c3, c4, c5

    def load_imagenet_weights(self, path: str | Path) -> None:
        """Load torchvision ImageNet weights: "imagenet" (torchvision's file in torch's cache, downloaded
        when missing: sspnet.models.pretrained) or a local .pth (e.g. resnet50-0676ba61.pth).

        The classifier (`fc.*`) is dropped; every other key must match by name and shape.
        """
        from sspnet.io.checkpoint_files import check_state_dict, torch_load_restricted
        from sspnet.models.pretrained import resolve_pretrained

        path = resolve_pretrained(path, self.depth)
        state = torch_load_restricted(path)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
        state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith(("fc.", "module.fc."))}
        check_state_dict(self, state, source=str(path))
        self.load_state_dict(state, strict=True)
