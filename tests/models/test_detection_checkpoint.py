"""Official whole-model detection checkpoints (mmdet 2.x layouts, derived independently in
official_detection_keys.py) convert to our configs' keys and load with no missing or
unexpected key: built at full size on the meta device (shapes checked by
``load_state_dict``), plus a value check of the EfficientFFN merge on real tensors."""

import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import internimage  # noqa: F401  (registers the models)
from internimage.checkpoint.detection import convert_detection_checkpoint
from tests.models.official_detection_keys import (
    _prefixed,
    official_cascade_mask_rcnn_shapes,
    official_cb_backbone_shapes,
    official_channel_mapper_shapes,
    official_dino_head_shapes,
    official_mask_rcnn_shapes,
)
from tests.models.official_keys import official_backbone_shapes, random_state_dict
from tests.tool_runs import run_tool

DET = Path(__file__).resolve().parents[2] / 'configs' / 'detection'


def read_config(path):
    return Config.fromfile(str(path))


# Official arch settings (the official configs' backbone dicts, as keyword names of
# official_backbone_shapes).
OFFICIAL_ARCH = {
    'h': dict(
        channels=320,
        depths=[6, 6, 32, 6],
        groups=[10, 20, 40, 80],
        res_post_norm=True,
        dw_kernel_size=5,
        center_feature_scale=True,
        level2_post_norm_block_ids=[5, 11, 17, 23, 29],
    ),
    'g': dict(
        channels=512,
        depths=[2, 2, 48, 4],
        groups=[16, 32, 64, 128],
        post_norm=True,
        dw_kernel_size=5,
        center_feature_scale=True,
        level2_post_norm_block_ids=[5, 11, 17, 23, 29, 35, 41, 47],
    ),
    'l': dict(
        channels=160,
        depths=[5, 5, 22, 5],
        groups=[10, 20, 40, 80],
        layer_scale=True,
        post_norm=True,
    ),
    't': dict(channels=64, depths=[4, 4, 18, 4], groups=[4, 8, 16, 32], layer_scale=True),
}


def _meta_state(shapes):
    return {k: torch.empty(v, device='meta') for k, v in shapes.items()}


def _build_on_meta(cfg):
    init_default_scope('mmdet')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    with torch.device('meta'):
        return MODELS.build(model_cfg)


def _assert_exact_load(model, converted):
    result = model.load_state_dict(converted, strict=False, assign=True)
    assert not result.missing_keys and not result.unexpected_keys, (
        result.missing_keys[:5],
        result.unexpected_keys[:5],
    )
    model.load_state_dict(converted, strict=True, assign=True)  # shapes too


def _dino_shapes(arch, num_classes, cb=False, efficient_split=0):
    widths = [OFFICIAL_ARCH[arch]['channels'] * 2**i for i in (1, 2, 3)]
    if cb:
        shapes = official_cb_backbone_shapes(OFFICIAL_ARCH[arch])
        neck_prefix = 'neck.0.'  # the official neck is a one-element list
    else:
        shapes = _prefixed('backbone.', official_backbone_shapes(**OFFICIAL_ARCH[arch]))
        neck_prefix = 'neck.'
    shapes.update(official_channel_mapper_shapes(neck_prefix, widths))
    shapes.update(official_dino_head_shapes(num_classes, efficient_split=efficient_split))
    return shapes


@pytest.mark.parametrize(
    'config, arch, num_classes, cb, split',
    [
        ('dino-4scale_cb-internimage-h_o365-pre_20k_coco.py', 'h', 80, True, 0),
        ('dino-4scale_cb-internimage-h_o365-pre_80k_lvis-val.py', 'h', 1203, True, 0),
        ('dino-4scale_internimage-h_o365-pre_20k_coco.py', 'h', 80, False, 0),
        ('dino-4scale_internimage-g_o365-pre_20k_coco.py', 'g', 80, False, 4),
        ('dino-4scale_internimage-l_8xb2-12e_coco_0.1x-backbone-lr.py', 'l', 80, False, 0),
    ],
)
def test_official_dino_checkpoint_loads_exactly(config, arch, num_classes, cb, split):
    model = _build_on_meta(read_config(DET / config))
    official = _meta_state(_dino_shapes(arch, num_classes, cb, split))
    _assert_exact_load(model, convert_detection_checkpoint(official))


def test_official_mask_rcnn_checkpoint_loads_exactly():
    """mmdet 2.x -> 3.x Mask R-CNN: the same module names (RPN rpn_conv / rpn_cls,
    Shared2FC fc_cls / fc_reg, FCN mask head), so the keys pass unchanged."""
    model = _build_on_meta(read_config(DET / 'mask-rcnn_internimage-t_fpn_1x_coco.py'))
    official = _meta_state(official_mask_rcnn_shapes(OFFICIAL_ARCH['t']))
    converted = convert_detection_checkpoint(official)
    assert list(converted) == list(official)
    _assert_exact_load(model, converted)


def test_official_cascade_checkpoint_loads_exactly():
    """mmdet 2.x -> 3.x Cascade Mask R-CNN: per-stage roi_head.bbox_head.{s} /
    mask_head.{s}, ConvModule norms named bn: the same names in mmdet 3.3."""
    model = _build_on_meta(read_config(DET / 'cascade-mask-rcnn_internimage-l_fpn_1x_coco.py'))
    official = _meta_state(official_cascade_mask_rcnn_shapes(OFFICIAL_ARCH['l']))
    converted = convert_detection_checkpoint(official)
    assert list(converted) == list(official)
    _assert_exact_load(model, converted)


def test_efficient_ffn_merge_is_the_same_function():
    """G's EfficientFFN (sum over column slices) equals mmcv's FFN with the merged weights."""
    torch.manual_seed(0)
    embed, hidden, split = 8, 16, 4
    shapes = official_dino_head_shapes(3, embed=embed, ffn=hidden, efficient_split=split)
    state = {k: torch.randn(v) for k, v in shapes.items()}
    converted = convert_detection_checkpoint(state)
    x = torch.randn(5, embed)
    prefix = 'bbox_head.transformer.encoder.layers.0.ffns.0'
    official_out = state[f'{prefix}.fc2_bias'] + sum(
        torch.relu(x @ state[f'{prefix}.fc1_{s}.weight'].T + state[f'{prefix}.fc1_{s}.bias'])
        @ state[f'{prefix}.fc2_{s}.weight'].T
        for s in range(split)
    )
    ours = 'encoder.layers.0.ffn.layers'
    hidden_out = torch.relu(x @ converted[f'{ours}.0.0.weight'].T + converted[f'{ours}.0.0.bias'])
    merged_out = hidden_out @ converted[f'{ours}.1.weight'].T + converted[f'{ours}.1.bias']
    torch.testing.assert_close(merged_out, official_out)


def test_unknown_layout_and_key_are_named():
    with pytest.raises(KeyError, match='not an official InternImage detection'):
        convert_detection_checkpoint({'foo.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match='bbox_head.transformer.mystery'):
        convert_detection_checkpoint({'bbox_head.transformer.mystery': torch.zeros(1)})


def test_cb_backbone_state_dict_is_the_official_layout():
    from internimage.models import CBInternImage

    arch = dict(channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8])
    with torch.device('meta'):
        ours = CBInternImage(arch).state_dict()
    official = official_cb_backbone_shapes(dict(arch, layer_scale=False))
    assert {'backbone.' + k: tuple(v.shape) for k, v in ours.items()} == dict(official)


def test_convert_tool_on_an_official_cb_dino_file(tmp_path):
    """tools/convert_checkpoint.py: a tiny official-layout CB-DINO file (mmdet 2.x keys,
    one-element neck list) -> a file that loads strictly into the quick-start CB-DINO."""
    cfg = read_config(DET.parent / 'quickstart' / 'cb-dino_internimage-h-tiny_quickstart.py')
    arch = dict(cfg.arch, layer_scale=False)
    official = official_cb_backbone_shapes(arch)
    official.update(official_channel_mapper_shapes('neck.0.', [64, 128, 256]))
    official.update(
        official_dino_head_shapes(3, ffn=256, enc_layers=2, dec_layers=2, num_queries=100)
    )
    weights = random_state_dict(official)
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save({'state_dict': weights, 'meta': {}}, src)
    run_tool('tools/convert_checkpoint.py', str(src), str(dst))
    converted = torch.load(dst, weights_only=True)['state_dict']
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    model.load_state_dict(converted, strict=True)
    torch.testing.assert_close(
        model.level_embed.detach(), weights['bbox_head.transformer.level_embeds']
    )
    torch.testing.assert_close(
        model.neck.convs[0].conv.weight.detach(), weights['neck.0.convs.0.conv.weight']
    )
