"""The layer-decay groups equal the official InternImage constructor's, re-derived here.

``official_layer_id`` / ``official_lr_scale`` below restate the rules of the official
``CustomLayerDecayOptimizerConstructor`` (detection/mmcv_custom and segmentation/mmcv_custom
of OpenGVLab/InternImage) from their description: parameter names split on dots, the
stage and block read from fixed positions, a per-stage table of sums. They do not call
anything of ours. Full-size T and H backbones are built on the meta device (names and
shapes only, no memory or init), so the check covers every real parameter name.
"""

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from torch import nn

import internimage  # noqa: F401  (registers the constructor)
from internimage import FlashInternImage, InternImage

BASE_LR, BASE_WD = 1e-4, 0.05


def official_layer_id(name: str, num_ids: int, depths) -> int:
    """The official numbering (``num_ids = num_layers + 2``), case by case."""
    d0, d1, d2, _ = depths
    if name.startswith('backbone.patch_embed') or 'level_embeds' in name:
        return 0
    for prefix in (
        'decode_head.mask_embed',
        'decode_head.cls_embed',
        'decode_head.level_embed',
        'decode_head.query_embed',
        'decode_head.query_feat',
    ):
        if name.startswith(prefix):
            return 0
    if name.startswith('backbone.levels'):
        parts = name.split('.')
        stage = int(parts[2])
        if parts[3] in ('downsample', 'norm'):
            return {0: 1 + d0, 1: 1 + d0 + d1, 2: 1 + d0 + d1 + d2, 3: 1 + d0 + d1 + d2}[stage]
        index = int(parts[4])
        return index + 1 + {0: 0, 1: d0, 2: d0 + d1, 3: d0 + d1 + d2}[stage]
    return num_ids - 1


def official_no_decay(name: str, param: nn.Parameter) -> bool:
    return (
        len(param.shape) == 1
        or name.endswith('.bias')
        or 'relative_position' in name
        or 'norm' in name
        or 'sampling_offsets' in name
    )


def official_lr_scale(name, num_ids, depths, rate, small_lr=False, dino=False, offset=1.0):
    layer_id = official_layer_id(name, num_ids, depths)
    scale = rate ** (num_ids - layer_id - 1)
    if scale < 1 and small_lr:
        scale *= 0.1
    is_offset = 'sampling_offsets' in name or 'reference_points' in name
    if is_offset and dino and layer_id == num_ids - 1:
        scale *= 0.1
    elif is_offset:
        scale *= offset
    return scale


class _Detector(nn.Module):
    """A backbone plus head-side parameters named as mmdet 3.x DINO names them."""

    def __init__(self, arch: str):
        super().__init__()
        self.backbone = InternImage(arch=arch)
        self.level_embed = nn.Parameter(torch.zeros(4, 8))
        self.encoder = nn.ModuleDict(
            dict(sampling_offsets=nn.Linear(8, 8), value_proj=nn.Linear(8, 8))
        )
        self.reference_points = nn.Linear(8, 2)
        self.neck_norm = nn.LayerNorm(8)


def _per_param(model: nn.Module, **paramwise_cfg):
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=BASE_WD),
            constructor='InternImageLayerDecayOptimizerConstructor',
            paramwise_cfg=paramwise_cfg,
        ),
    )
    out = {}
    for group in wrapper.optimizer.param_groups:
        for name in group['param_names']:
            out[name] = (group['lr'], group['weight_decay'])
    return out


def _rename_level_embed(name: str) -> str:
    """mmdet 3.x's ``level_embed`` is the official DINO's ``level_embeds``."""
    return 'transformer.level_embeds' if name == 'level_embed' else name


@pytest.mark.parametrize(
    'arch, depths, rule',
    [
        ('t', [4, 4, 18, 4], dict(layer_decay_rate=0.9)),
        ('h', [6, 6, 32, 6], dict(layer_decay_rate=0.9)),
        ('t', [4, 4, 18, 4], dict(layer_decay_rate=0.9, offset_lr_scale=0.01)),
        ('t', [4, 4, 18, 4], dict(layer_decay_rate=0.94, dino_head=True, offset_lr_scale=0.5)),
        ('h', [6, 6, 32, 6], dict(layer_decay_rate=0.9, backbone_small_lr=True)),
    ],
)
def test_groups_equal_the_official_rule(arch, depths, rule):
    with torch.device('meta'):
        model = _Detector(arch)
    per_param = _per_param(model, **rule)
    named = dict(model.named_parameters())
    assert per_param.keys() == named.keys()
    num_ids = sum(depths) + 2
    kwargs = dict(
        rate=rule['layer_decay_rate'],
        small_lr=rule.get('backbone_small_lr', False),
        dino=rule.get('dino_head', False),
        offset=rule.get('offset_lr_scale', 1.0),
    )
    for name, param in named.items():
        lr, wd = per_param[name]
        official = official_lr_scale(_rename_level_embed(name), num_ids, depths, **kwargs)
        assert lr == pytest.approx(BASE_LR * official, rel=1e-12), name
        assert wd == (0.0 if official_no_decay(name, param) else BASE_WD), name


def test_spot_values_t_and_h():
    """A few ids written out by hand: T depths 4-4-18-4, H 6-6-32-6 (post-norms in stage 2)."""
    with torch.device('meta'):
        t, h = InternImage(arch='t'), InternImage(arch='h')
    assert t.get_layer_depth('levels.3.norm.0.weight') == (27, 32)
    assert t.get_layer_depth('levels.2.downsample.conv.weight') == (27, 32)
    assert t.get_layer_depth('levels.3.blocks.3.mlp.fc1.weight') == (30, 32)
    assert h.get_layer_depth('levels.2.post_norms.0.0.weight') == (13, 52)
    assert h.get_layer_depth('levels.2.post_norms.4.0.bias') == (17, 52)
    assert h.get_layer_depth('levels.3.norm.0.bias') == (45, 52)


def test_official_paramwise_cfg_of_the_dino_recipe_accepted():
    """The official DINO-T paramwise_cfg, keys and all, builds (num_layers / depths checked)."""
    with torch.device('meta'):
        model = _Detector('t')
    cfg = dict(num_layers=30, layer_decay_rate=0.9, depths=[4, 4, 18, 4])
    assert _per_param(model, **cfg) == _per_param(model, layer_decay_rate=0.9)


@pytest.mark.parametrize('key', ['dino_head', 'backbone_small_lr'])
def test_switch_must_be_bool(key):
    with torch.device('meta'):
        model = _Detector('t')
    with pytest.raises(ValueError, match=key):
        _per_param(model, layer_decay_rate=0.9, **{key: 'yes'})


def official_dcnv4_lr_scale(name, num_ids, depths, rate, offset=1.0):
    """The official DCNv4 detection constructor (OpenGVLab/DCNv4 detection/mmcv_custom):
    the InternImage rule, and where that gives no offset factor, ``offset_lr_scale`` also
    for names containing ``offset_mask`` but not ``offset_mask_dw``, and names ending in
    ``offset``."""
    scale = official_lr_scale(name, num_ids, depths, rate, offset=offset)
    if 'sampling_offsets' in name or 'reference_points' in name:
        return scale
    dcnv4_offset = 'offset_mask' in name and 'offset_mask_dw' not in name
    return scale * offset if dcnv4_offset or name.endswith('offset') else scale


class _FlashDetector(nn.Module):
    def __init__(self, arch: str):
        super().__init__()
        self.backbone = FlashInternImage(arch=arch)
        self.neck_norm = nn.LayerNorm(8)


def test_flash_groups_equal_the_official_dcnv4_rule():
    """The Flash-B Mask R-CNN 3x recipe (layer decay 0.9, offset_lr_scale 0.01): DCNv4's
    offset_mask projections get 0.01x on top of their layer's decay, offset_mask_dw not."""
    depths = [4, 4, 21, 4]
    with torch.device('meta'):
        model = _FlashDetector('b')
    per_param = _per_param(model, layer_decay_rate=0.9, offset_lr_scale=0.01)
    named = dict(model.named_parameters())
    assert per_param.keys() == named.keys()
    assert any('offset_mask_dw' in name for name in named)
    scaled = 0
    for name, param in named.items():
        lr, wd = per_param[name]
        official = official_dcnv4_lr_scale(name, sum(depths) + 2, depths, 0.9, offset=0.01)
        assert lr == pytest.approx(BASE_LR * official, rel=1e-12), name
        assert wd == (0.0 if official_no_decay(name, param) else BASE_WD), name
        scaled += 'offset_mask.' in name
    assert scaled == 2 * sum(depths)  # weight and bias of every block's projection


def test_layer_count_comes_from_the_backbone():
    """The number of layers is the backbone's ``num_layers``; a backbone without it is
    refused by name."""

    class _NoCount(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(2))

        def get_layer_depth(self, name, prefix=''):
            return 0, 2

    with pytest.raises(ValueError, match='num_layers'):
        _per_param(_NoCount(), layer_decay_rate=0.9)
