"""Layer-wise lr decay: hand-written ids for a tiny model; mmpretrain's path agrees."""

import re

import pytest
from mmengine.optim import build_optim_wrapper
from torch import nn

import internimage  # noqa: F401  (registers the constructor)
from internimage import InternImage
from tests.models.official_keys import TINY_ARCH

BASE_LR, BASE_WD, RATE = 1e-3, 0.05, 0.9


class _Model(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.backbone = InternImage(arch=dict(TINY_ARCH, layer_scale=1.0), **kwargs)
        self.neck = nn.Conv2d(128, 8, 1)


def _groups(model, **paramwise_cfg):
    """lr and weight decay per parameter name; the layers come from the backbone."""
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=BASE_WD),
            constructor='InternImageLayerDecayOptimizerConstructor',
            paramwise_cfg=dict(layer_decay_rate=RATE, **paramwise_cfg),
        ),
    )
    per_param = {}
    for group in wrapper.optimizer.param_groups:
        for name in group['param_names']:
            assert name not in per_param
            per_param[name] = (group['lr'], group['weight_decay'])
    return per_param


# depths [1, 1, 2, 1]: 5 blocks, ids 0..6; lr = base * rate ** (6 - id)
EXPECTED = {
    'backbone.patch_embed.conv1.weight': (0, True),
    'backbone.patch_embed.conv1.bias': (0, False),
    'backbone.patch_embed.norm1.1.weight': (0, False),
    'backbone.levels.0.blocks.0.dcn.offset.weight': (1, True),
    'backbone.levels.0.blocks.0.dcn.dw_conv.0.weight': (1, True),
    'backbone.levels.0.blocks.0.dcn.dw_conv.1.1.weight': (1, False),
    'backbone.levels.0.blocks.0.gamma1': (1, False),
    'backbone.levels.0.norm.0.weight': (2, False),
    'backbone.levels.0.downsample.conv.weight': (2, True),
    'backbone.levels.0.downsample.norm.1.bias': (2, False),
    'backbone.levels.1.blocks.0.mlp.fc1.weight': (2, True),
    'backbone.levels.1.blocks.0.mlp.fc1.bias': (2, False),
    'backbone.levels.1.downsample.conv.weight': (3, True),
    'backbone.levels.2.blocks.0.dcn.input_proj.weight': (3, True),
    'backbone.levels.2.blocks.1.norm2.0.weight': (4, False),
    'backbone.levels.2.blocks.1.mlp.fc2.weight': (4, True),
    'backbone.levels.2.downsample.conv.weight': (5, True),
    'backbone.levels.3.blocks.0.dcn.output_proj.weight': (5, True),
    'backbone.levels.3.blocks.0.gamma2': (5, False),
    # official: the last stage's norm is numbered like stage 2's (1 + d0 + d1 + d2)
    'backbone.levels.3.norm.0.weight': (5, False),
    'neck.weight': (6, True),
    'neck.bias': (6, False),
}


def test_hand_written_groups():
    model = _Model()
    per_param = _groups(model)
    assert set(per_param) == {n for n, _ in model.named_parameters()}
    for name, (layer_id, decays) in EXPECTED.items():
        lr, wd = per_param[name]
        assert lr == pytest.approx(BASE_LR * RATE ** (6 - layer_id)), name
        assert wd == (BASE_WD if decays else 0.0), name


def test_frozen_params_left_out():
    per_param = _groups(_Model(frozen_stages=1))
    assert not any(n.startswith(('backbone.patch_embed', 'backbone.levels.0.')) for n in per_param)
    assert 'backbone.levels.1.blocks.0.mlp.fc1.weight' in per_param


def test_extra_post_norms_take_their_own_index():
    """Official: ``levels.2.post_norms.k`` is read like ``levels.2.blocks.k``."""
    arch = dict(
        TINY_ARCH, depths=[1, 1, 6, 1], level2_post_norm_block_ids=[1, 5], center_feature_scale=True
    )
    backbone = InternImage(arch=arch)
    # stage 2 starts at id 1 + 1 + 1 = 3; post-norm 0 -> 3, post-norm 1 -> 4
    assert backbone.get_layer_depth('levels.2.post_norms.0.0.weight') == (3, 11)
    assert backbone.get_layer_depth('backbone.levels.2.post_norms.1.0.bias', 'backbone.') == (4, 11)


def test_official_paramwise_cfg_accepted_when_it_agrees():
    """Configs written for the official constructor (num_layers, depths) still work."""
    assert _groups(_Model(), num_layers=5, depths=[1, 1, 2, 1]) == _groups(_Model())


@pytest.mark.parametrize(
    'paramwise_cfg, named',
    [
        (dict(num_layers=30), 'num_layers=30'),
        (dict(depths=[4, 4, 18, 4]), 'depths=[4, 4, 18, 4]'),
        (dict(num_layers=5, depths=[1, 1, 1, 2]), 'depths=[1, 1, 1, 2]'),
    ],
)
def test_paramwise_cfg_disagreeing_with_backbone(paramwise_cfg, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        _groups(_Model(), **paramwise_cfg)


def test_unknown_paramwise_key():
    with pytest.raises(ValueError, match='unknown keys'):
        _groups(_Model(), decay_mult=0.5)


def test_backbone_without_layer_depth():
    with pytest.raises(ValueError, match='get_layer_depth'):
        _groups(nn.Sequential(nn.Linear(2, 2)))


def test_constructor_asks_the_backbone():
    """The ids are the backbone's get_layer_depth, whatever it says."""
    model = _Model()
    calls = []
    original = model.backbone.get_layer_depth

    def spy(name, prefix=''):
        calls.append((name, prefix))
        return original(name, prefix)

    model.backbone.get_layer_depth = spy
    _groups(model)
    names = {name for name, _ in calls}
    assert names == {n for n, _ in model.named_parameters()}
    assert {prefix for _, prefix in calls} == {'backbone.'}


def test_mmpretrain_path_agrees():
    """mmpretrain's constructor (via get_layer_depth) gives the same lrs as ours."""
    from mmpretrain.models import ImageClassifier
    from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS  # noqa: F401 (registers)

    classifier = ImageClassifier(
        backbone=dict(type='InternImage', arch=dict(TINY_ARCH), out_indices=(3,)),
        head=dict(type='InternImageClsHead', num_classes=4, in_channels=128),
    )
    ours = _groups(classifier)
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope('mmpretrain'):
        wrapper = build_optim_wrapper(
            classifier,
            dict(
                optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=BASE_WD),
                constructor='LearningRateDecayOptimWrapperConstructor',
                paramwise_cfg=dict(layer_decay_rate=RATE),
            ),
        )
    theirs = {g['param_name']: g['lr'] for g in wrapper.optimizer.param_groups}
    assert theirs.keys() == ours.keys()
    for name, lr in theirs.items():
        assert lr == pytest.approx(ours[name][0]), name
