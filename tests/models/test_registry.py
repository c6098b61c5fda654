"""`import internimage` makes the backbone, heads and constructor reachable from the
mmpretrain, mmdet and mmseg registries (one class, registered in mmengine's root)."""

import pytest
import torch
from mmengine.registry import DefaultScope, init_default_scope

import internimage
from internimage import InternImage
from tests.models.official_keys import TINY_ARCH

SCOPES = ['mmpretrain', 'mmdet', 'mmseg']


def _registries(scope):
    module = __import__(f'{scope}.registry', fromlist=['MODELS'])
    return module.MODELS, module.OPTIM_WRAPPER_CONSTRUCTORS


@pytest.mark.parametrize('scope', SCOPES)
def test_backbone_builds_from_registry(scope):
    models, constructors = _registries(scope)
    init_default_scope(scope)
    with DefaultScope.overwrite_default_scope(scope):
        backbone = models.build(dict(type='InternImage', arch=dict(TINY_ARCH), out_indices=(3,)))
        assert models.get('InternImage') is InternImage
        assert (
            constructors.get('InternImageLayerDecayOptimizerConstructor')
            is internimage.InternImageLayerDecayOptimizerConstructor
        )
    assert type(backbone) is InternImage
    assert backbone.out_indices == [3]


def test_named_arch_from_registry():
    from mmdet.registry import MODELS

    with DefaultScope.overwrite_default_scope('mmdet'), torch.device('meta'):
        backbone = MODELS.build(dict(type='InternImage', arch='t'))
    assert backbone.num_features == [64, 128, 256, 512]


def test_heads_build_from_mmpretrain():
    from mmpretrain.registry import MODELS

    with DefaultScope.overwrite_default_scope('mmpretrain'):
        head = MODELS.build(dict(type='InternImageClsHead', num_classes=3, in_channels=128))
    assert head.fc.out_features == 3 and head.conv_head[0].out_channels == 192


def test_mmdet_own_decay_constructor_untouched():
    """We must not shadow the constructor mmdet/mmseg register under their own name."""
    from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as ROOT

    assert ROOT.get('InternImageLayerDecayOptimizerConstructor') is not None
    found = OPTIM_WRAPPER_CONSTRUCTORS.get('LearningRateDecayOptimizerConstructor')
    assert found is not None and found.__module__.startswith('mmdet')
