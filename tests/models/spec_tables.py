"""The key / shape tables of the original checkpoints, written out by hand (not from the model)."""

import torch

BN_KEYS = ("weight", "bias", "running_mean", "running_var")


def _bn(prefix, channels):
    table = {f"{prefix}.{k}": [channels] for k in BN_KEYS}
    table[f"{prefix}.num_batches_tracked"] = []
    return table


def backbone_table():
    """Backbone: ResNet-50, 318 tensors."""
    table = {"backbone.conv1.weight": [64, 3, 7, 7], **_bn("backbone.bn1", 64)}
    c_in = 64
    for layer, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
        for b in range(blocks):
            prefix = f"backbone.layer{layer}.{b}"
            table[f"{prefix}.conv1.weight"] = [planes, c_in, 1, 1]
            table[f"{prefix}.conv2.weight"] = [planes, planes, 3, 3]
            table[f"{prefix}.conv3.weight"] = [4 * planes, planes, 1, 1]
            table.update(_bn(f"{prefix}.bn1", planes))
            table.update(_bn(f"{prefix}.bn2", planes))
            table.update(_bn(f"{prefix}.bn3", 4 * planes))
            if b == 0:
                table[f"{prefix}.downsample.0.weight"] = [4 * planes, c_in, 1, 1]
                table.update(_bn(f"{prefix}.downsample.1", 4 * planes))
            c_in = 4 * planes
    return table


def neck_table():
    """Neck: 49 tensors."""
    table = {}
    for i, c in enumerate((256, 512, 1024, 2048)):
        table[f"neck.lateral_convs.{i}.conv.weight"] = [256, c, 1, 1]
        table[f"neck.lateral_convs.{i}.conv.bias"] = [256]
    for i in range(4):
        table[f"neck.fpn_convs.{i}.conv.weight"] = [256, 256, 3, 3]
        table[f"neck.fpn_convs.{i}.conv.bias"] = [256]
    table["neck.CAM.dila_conv.0.weight"] = [256, 1024, 3, 3]
    table["neck.CAM.dila_conv.0.bias"] = [256]
    for i, k in enumerate((1, 3, 3, 1)):
        table[f"neck.CAM.dila_conv.1.aspp.{i}.weight"] = [64, 256, k, k]
        table[f"neck.CAM.dila_conv.1.aspp.{i}.bias"] = [64]
    table["neck.CAM.dila_conv.2.weight"] = [256, 256, 3, 3]
    table["neck.CAM.dila_conv.2.bias"] = [256]
    table.update(_bn("neck.CAM.dila_conv.3", 256))
    for i in range(4):
        table[f"neck.CAM.down_conv.{i}.weight"] = [256, 256, 3, 3]
        table[f"neck.CAM.down_conv.{i}.bias"] = [256]
        table[f"neck.CAM.att_conv.{i}.weight"] = [1, 256, 3, 3]
        table[f"neck.CAM.att_conv.{i}.bias"] = [1]
    return table


FASTER_HEADS = {  # RPN + RoI head
    "rpn_head.rpn_conv.weight": [256, 256, 3, 3],
    "rpn_head.rpn_conv.bias": [256],
    "rpn_head.rpn_cls.weight": [12, 256, 1, 1],
    "rpn_head.rpn_cls.bias": [12],
    "rpn_head.rpn_reg.weight": [48, 256, 1, 1],
    "rpn_head.rpn_reg.bias": [48],
    "roi_head.bbox_head.shared_fcs.0.weight": [1024, 12544],
    "roi_head.bbox_head.shared_fcs.0.bias": [1024],
    "roi_head.bbox_head.shared_fcs.1.weight": [1024, 1024],
    "roi_head.bbox_head.shared_fcs.1.bias": [1024],
    "roi_head.bbox_head.fc_cls.weight": [2, 1024],
    "roi_head.bbox_head.fc_cls.bias": [2],
    "roi_head.bbox_head.fc_reg.weight": [4, 1024],
    "roi_head.bbox_head.fc_reg.bias": [4],
}


def fovea_head_table():
    """FoveaBox head: 20 tensors."""
    table = {}
    for branch in ("cls_convs", "reg_convs"):
        for i in range(4):
            table[f"bbox_head.{branch}.{i}.conv.weight"] = [256, 256, 3, 3]
            table[f"bbox_head.{branch}.{i}.conv.bias"] = [256]
    table.update(
        {
            "bbox_head.conv_cls.weight": [1, 256, 3, 3],
            "bbox_head.conv_cls.bias": [1],
            "bbox_head.conv_reg.weight": [4, 256, 3, 3],
            "bbox_head.conv_reg.bias": [4],
        }
    )
    return table


def spec_table(variant):
    heads = FASTER_HEADS if variant == "faster_rcnn" else fovea_head_table()
    return {**backbone_table(), **neck_table(), **heads}


def random_state_dict(table, seed=0):
    """Random tensors with the table's names and shapes (int64 counters for num_batches_tracked)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in table.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.01
    return state
