"""The classification fine-tune lr rule equals the official trainer's, re-derived here.

``official_ratio`` restates the official classification trainer (its model's
``lr_decay_keywards`` table, matched by substring in insertion order, then the DCN lr
multiplier on names with ``offset`` / ``attention_weights`` / ``center_feature_scale_proj``
/ ``alpha_beta``; no weight decay for 1-D parameters and biases) without calling our code.
Full-size L and H classifiers are built on the meta device.
"""

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmpretrain.models import ImageClassifier

import internimage  # noqa: F401  (registers the constructor, backbone and heads)

BASE_LR, BASE_WD, RATE, DCN_MULT = 2e-5, 0.05, 0.9, 0.1


def official_keywords(depths, rate):
    table = {}
    idx = 0
    for i in range(4):
        stage = 3 - i
        for j in range(depths[stage]):
            block = depths[stage] - j - 1
            table[f'levels.{stage}.blocks.{block}.'] = rate**idx
            idx += 1
    table['patch_embed'] = table['levels.0.blocks.0.']
    table['levels.0.downsample'] = table['levels.1.blocks.0.']
    table['levels.0.norm'] = table['levels.1.blocks.0.']
    table['levels.1.downsample'] = table['levels.2.blocks.0.']
    table['levels.1.norm'] = table['levels.2.blocks.0.']
    table['levels.2.downsample'] = table['levels.3.blocks.0.']
    table['levels.2.norm'] = table['levels.3.blocks.0.']
    return table


def official_ratio(name, table):
    ratio = 1.0
    for key, value in table.items():
        if key in name:
            ratio = value
            break
    for marker in ('offset', 'attention_weights', 'center_feature_scale_proj', 'alpha_beta'):
        if marker in name:
            return ratio * DCN_MULT
    return ratio


def _classifier(arch, head, backbone_type='InternImage'):
    with torch.device('meta'):
        return ImageClassifier(
            backbone=dict(type=backbone_type, arch=arch, **head[0]), head=head[1]
        )


HEADS = {
    'l': (
        dict(out_indices=(3,)),
        dict(type='InternImageClsHead', num_classes=1000, in_channels=1280),
    ),
    'h': (
        dict(out_indices=(2, 3)),
        dict(type='InternImageAttnPoolClsHead', num_classes=1000, in_channels=2560),
    ),
}
DEPTHS = {'l': [5, 5, 22, 5], 'h': [6, 6, 32, 6]}


@pytest.mark.parametrize(
    'arch, backbone_type',
    # FlashInternImage-L: the official DCNv4 trainer has the same rule (its DCNv4
    # offset_mask / offset_mask_dw names contain 'offset').
    [('l', 'InternImage'), ('h', 'InternImage'), ('l', 'FlashInternImage')],
)
def test_groups_equal_the_official_rule(arch, backbone_type):
    model = _classifier(arch, HEADS[arch], backbone_type)
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=BASE_WD),
            constructor='InternImageClsLayerDecayOptimizerConstructor',
            paramwise_cfg=dict(layer_decay_rate=RATE, dcn_lr_mult=DCN_MULT),
        ),
    )
    per_param = {}
    for group in wrapper.optimizer.param_groups:
        for name in group['param_names']:
            per_param[name] = (group['lr'], group['weight_decay'])
    named = dict(model.named_parameters())
    assert per_param.keys() == named.keys()
    table = official_keywords(DEPTHS[arch], RATE)
    for name, param in named.items():
        lr, wd = per_param[name]
        assert lr == pytest.approx(BASE_LR * official_ratio(name, table), rel=1e-12), name
        no_decay = len(param.shape) == 1 or name.endswith('.bias')
        assert wd == (0.0 if no_decay else BASE_WD), name


def test_spot_values_by_hand():
    """L (5-5-22-5, 37 blocks): the last block 1.0, the first block 0.9**36, the stem
    with it; stage 3's downsampling with stage 4's first block (0.9**4); the head 1.0; an
    offset of the last block 0.1."""
    model = _classifier('l', HEADS['l'])
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='AdamW', lr=1.0, weight_decay=BASE_WD),
            constructor='InternImageClsLayerDecayOptimizerConstructor',
            paramwise_cfg=dict(layer_decay_rate=RATE, dcn_lr_mult=DCN_MULT),
        ),
    )
    lr = {n: g['lr'] for g in wrapper.optimizer.param_groups for n in g['param_names']}
    assert lr['backbone.levels.3.blocks.4.mlp.fc1.weight'] == pytest.approx(1.0)
    assert lr['backbone.levels.3.blocks.4.dcn.offset.weight'] == pytest.approx(0.1)
    assert lr['backbone.levels.0.blocks.0.mlp.fc1.weight'] == pytest.approx(0.9**36)
    assert lr['backbone.patch_embed.conv1.weight'] == pytest.approx(0.9**36)
    assert lr['backbone.levels.2.downsample.conv.weight'] == pytest.approx(0.9**4)
    assert lr['head.fc.weight'] == pytest.approx(1.0)


@pytest.mark.parametrize(
    'paramwise_cfg, message',
    [
        (dict(dcn_lr_mult=0.1), 'layer_decay_rate'),
        (dict(layer_decay_rate=1.5), 'layer_decay_rate'),
        (dict(layer_decay_rate=0.9, num_layers=37), 'unknown keys'),
    ],
)
def test_bad_paramwise_cfg(paramwise_cfg, message):
    model = _classifier('l', HEADS['l'])
    with pytest.raises(ValueError, match=message):
        build_optim_wrapper(
            model,
            dict(
                optimizer=dict(type='AdamW', lr=1.0),
                constructor='InternImageClsLayerDecayOptimizerConstructor',
                paramwise_cfg=paramwise_cfg,
            ),
        )
