"""Official (mmdet 2.x) whole-model detection layouts, written from the official module
code (detection/mmdet_custom: DINOHead / DinoTransformer / EfficientFFN / CBInternImage /
CBChannelMapper; mmdet 2.x FPN / RPNHead / Shared2FCBBoxHead / FCNMaskHead; mmcv 1.x
BaseTransformerLayer), independently of our modules and of the converter.

Helper for tests/models/test_detection_checkpoint.py (not a test module itself).
"""

from collections import OrderedDict
from typing import Dict, Sequence

from tests.models.official_keys import Shape, _linear, _ln, official_backbone_shapes


def _prefixed(prefix: str, shapes: Dict[str, Shape]) -> 'OrderedDict[str, Shape]':
    return OrderedDict((prefix + k, v) for k, v in shapes.items())


def _msda(prefix: str, embed: int, heads: int = 8, levels: int = 4, points: int = 4):
    """mmcv MultiScaleDeformableAttention."""
    shapes = OrderedDict()
    shapes.update(_linear(f'{prefix}.sampling_offsets', embed, heads * levels * points * 2))
    shapes.update(_linear(f'{prefix}.attention_weights', embed, heads * levels * points))
    shapes.update(_linear(f'{prefix}.value_proj', embed, embed))
    shapes.update(_linear(f'{prefix}.output_proj', embed, embed))
    return shapes


def _ffn(prefix: str, embed: int, hidden: int, efficient_split: int = 0):
    """mmcv FFN: layers = [Sequential(Linear, ReLU, Dropout), Linear, Dropout]; or the
    official EfficientFFN (fc1_s / fc2_s column slices, fc2_bias)."""
    shapes = OrderedDict()
    if efficient_split:
        part = hidden // efficient_split
        for s in range(efficient_split):
            shapes.update(_linear(f'{prefix}.fc1_{s}', embed, part))
        for s in range(efficient_split):
            shapes.update(_linear(f'{prefix}.fc2_{s}', part, embed, bias=False))
        shapes[f'{prefix}.fc2_bias'] = (embed,)
    else:
        shapes.update(_linear(f'{prefix}.layers.0.0', embed, hidden))
        shapes.update(_linear(f'{prefix}.layers.1', hidden, embed))
    return shapes


def official_dino_head_shapes(
    num_classes: int,
    embed: int = 256,
    ffn: int = 2048,
    enc_layers: int = 6,
    dec_layers: int = 6,
    num_queries: int = 900,
    efficient_split: int = 0,
) -> 'OrderedDict[str, Shape]':
    """bbox_head.* of the official DINOHead (DeformableDETRHead, two-stage, box refine)."""
    shapes = OrderedDict()
    t = 'bbox_head.transformer'
    shapes[f'{t}.level_embeds'] = (4, embed)
    shapes.update(_linear(f'{t}.enc_output', embed, embed))
    shapes.update(_ln(f'{t}.enc_output_norm', embed))
    shapes[f'{t}.query_embed.weight'] = (num_queries, embed)
    for i in range(enc_layers):
        layer = f'{t}.encoder.layers.{i}'
        shapes.update(_msda(f'{layer}.attentions.0', embed))
        shapes.update(_ffn(f'{layer}.ffns.0', embed, ffn, efficient_split))
        for k in range(2):
            shapes.update(_ln(f'{layer}.norms.{k}', embed))
    for i in range(dec_layers):
        layer = f'{t}.decoder.layers.{i}'
        shapes[f'{layer}.attentions.0.attn.in_proj_weight'] = (3 * embed, embed)
        shapes[f'{layer}.attentions.0.attn.in_proj_bias'] = (3 * embed,)
        shapes.update(_linear(f'{layer}.attentions.0.attn.out_proj', embed, embed))
        shapes.update(_msda(f'{layer}.attentions.1', embed))
        shapes.update(_ffn(f'{layer}.ffns.0', embed, ffn, efficient_split))
        for k in range(3):
            shapes.update(_ln(f'{layer}.norms.{k}', embed))
    shapes.update(_linear(f'{t}.decoder.ref_point_head.0', 2 * embed, embed))
    shapes.update(_linear(f'{t}.decoder.ref_point_head.2', embed, embed))
    shapes.update(_ln(f'{t}.decoder.norm', embed))
    for i in range(dec_layers + 1):  # decoder layers + the two-stage encoder output
        shapes.update(_linear(f'bbox_head.cls_branches.{i}', embed, num_classes))
        for j, (cin, cout) in zip((0, 2, 4), ((embed, embed), (embed, embed), (embed, 4))):
            shapes.update(_linear(f'bbox_head.reg_branches.{i}.{j}', cin, cout))
    shapes['bbox_head.label_embedding.weight'] = (num_classes, embed)
    return shapes


def official_channel_mapper_shapes(
    prefix: str, in_channels: Sequence[int], out: int = 256
) -> 'OrderedDict[str, Shape]':
    """mmdet ChannelMapper, 1x1 convs + one 3x3 extra conv, GN, no conv bias."""
    shapes = OrderedDict()
    for i, cin in enumerate(in_channels):
        shapes[f'{prefix}convs.{i}.conv.weight'] = (out, cin, 1, 1)
        shapes.update(_ln(f'{prefix}convs.{i}.gn', out))
    shapes[f'{prefix}extra_convs.0.conv.weight'] = (out, in_channels[-1], 3, 3)
    shapes.update(_ln(f'{prefix}extra_convs.0.gn', out))
    return shapes


def official_cb_backbone_shapes(arch: dict) -> 'OrderedDict[str, Shape]':
    """CBInternImage: two InternImages (the second without patch_embed), gamma0-3 on the
    second, cb_linears[i][j] = 1x1 conv stage i+j -> stage i for j >= 1."""
    single = official_backbone_shapes(**arch)
    shapes = _prefixed('backbone.cb_modules.0.', single)
    shapes.update(
        _prefixed(
            'backbone.cb_modules.1.',
            {k: v for k, v in single.items() if not k.startswith('patch_embed.')},
        )
    )
    widths = [arch['channels'] * 2**i for i in range(4)]
    for i, width in enumerate(widths):
        shapes[f'backbone.cb_modules.1.gamma{i}'] = (width,)
    for i in range(4):
        for j in range(1, 4 - i):
            shapes[f'backbone.cb_linears.{i}.{j}.weight'] = (widths[i], widths[i + j], 1, 1)
            shapes[f'backbone.cb_linears.{i}.{j}.bias'] = (widths[i],)
    return shapes


def official_mask_rcnn_shapes(
    backbone_arch: dict, num_classes: int = 80, fpn: int = 256
) -> 'OrderedDict[str, Shape]':
    """mmdet 2.x Mask R-CNN (FPN, RPNHead, Shared2FCBBoxHead, FCNMaskHead) on InternImage."""
    shapes = _prefixed('backbone.', official_backbone_shapes(**backbone_arch))
    for i in range(4):
        cin = backbone_arch['channels'] * 2**i
        shapes[f'neck.lateral_convs.{i}.conv.weight'] = (fpn, cin, 1, 1)
        shapes[f'neck.lateral_convs.{i}.conv.bias'] = (fpn,)
        shapes[f'neck.fpn_convs.{i}.conv.weight'] = (fpn, fpn, 3, 3)
        shapes[f'neck.fpn_convs.{i}.conv.bias'] = (fpn,)
    shapes['rpn_head.rpn_conv.weight'] = (fpn, fpn, 3, 3)
    shapes['rpn_head.rpn_conv.bias'] = (fpn,)
    shapes['rpn_head.rpn_cls.weight'] = (3, fpn, 1, 1)  # 3 anchors, sigmoid
    shapes['rpn_head.rpn_cls.bias'] = (3,)
    shapes['rpn_head.rpn_reg.weight'] = (12, fpn, 1, 1)
    shapes['rpn_head.rpn_reg.bias'] = (12,)
    shapes.update(_linear('roi_head.bbox_head.shared_fcs.0', fpn * 7 * 7, 1024))
    shapes.update(_linear('roi_head.bbox_head.shared_fcs.1', 1024, 1024))
    shapes.update(_linear('roi_head.bbox_head.fc_cls', 1024, num_classes + 1))
    shapes.update(_linear('roi_head.bbox_head.fc_reg', 1024, num_classes * 4))
    for i in range(4):
        shapes[f'roi_head.mask_head.convs.{i}.conv.weight'] = (fpn, fpn, 3, 3)
        shapes[f'roi_head.mask_head.convs.{i}.conv.bias'] = (fpn,)
    shapes['roi_head.mask_head.upsample.weight'] = (fpn, fpn, 2, 2)
    shapes['roi_head.mask_head.upsample.bias'] = (fpn,)
    shapes['roi_head.mask_head.conv_logits.weight'] = (num_classes, fpn, 1, 1)
    shapes['roi_head.mask_head.conv_logits.bias'] = (num_classes,)
    return shapes


def official_cascade_mask_rcnn_shapes(
    backbone_arch: dict, num_classes: int = 80, fpn: int = 256
) -> 'OrderedDict[str, Shape]':
    """mmdet 2.x Cascade Mask R-CNN of the official L/XL configs: per stage
    ``roi_head.bbox_head.{s}`` a ConvFCBBoxHead (4 shared convs with SyncBN, norm name
    ``bn``, no conv bias; 1 shared fc; class-specific regression) and
    ``roi_head.mask_head.{s}`` an FCNMaskHead."""
    base = official_mask_rcnn_shapes(backbone_arch, num_classes, fpn)
    shapes = OrderedDict((k, v) for k, v in base.items() if not k.startswith('roi_head.'))
    for s in range(3):
        head = f'roi_head.bbox_head.{s}'
        for k in range(4):
            shapes[f'{head}.shared_convs.{k}.conv.weight'] = (fpn, fpn, 3, 3)
            for name in ('weight', 'bias', 'running_mean', 'running_var'):
                shapes[f'{head}.shared_convs.{k}.bn.{name}'] = (fpn,)
            shapes[f'{head}.shared_convs.{k}.bn.num_batches_tracked'] = ()
        shapes.update(_linear(f'{head}.shared_fcs.0', fpn * 7 * 7, 1024))
        shapes.update(_linear(f'{head}.fc_cls', 1024, num_classes + 1))
        shapes.update(_linear(f'{head}.fc_reg', 1024, num_classes * 4))
        for key, shape in base.items():
            if key.startswith('roi_head.mask_head.'):
                shapes[key.replace('roi_head.mask_head.', f'roi_head.mask_head.{s}.')] = shape
    return shapes
