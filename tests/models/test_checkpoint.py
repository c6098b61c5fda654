"""Released-checkpoint loading: official key layouts (built here from docs/checkpoints.md,
not from our model) load with nothing missing; mismatches are reported or raise."""

from unittest import mock

import pytest
import torch

from internimage import InternImage
from internimage.checkpoint import load_backbone_checkpoint
from tests.models.official_keys import (
    TINY_ARCH,
    assert_loads_exactly,
    official_backbone_shapes,
    official_cls_head_shapes,
    random_state_dict,
    use_reference_op,
)

POST_NORM_ARCH = dict(TINY_ARCH, layer_scale=1e-5, post_norm=True)


def _official(arch: dict, seed: int = 0):
    shapes = official_backbone_shapes(
        arch['channels'],
        arch['depths'],
        arch['groups'],
        layer_scale=arch.get('layer_scale') is not None,
        post_norm=arch.get('post_norm', False),
    )
    return random_state_dict(shapes, seed)


def _build(arch: dict, path=None, **kwargs) -> InternImage:
    init_cfg = dict(type='Pretrained', checkpoint=str(path)) if path else None
    return InternImage(
        arch=dict(arch), init_cfg=init_cfg, use_reference=use_reference_op(), **kwargs
    )


def _wrap(layout: str, backbone: dict) -> dict:
    if layout == 'classification':
        head = random_state_dict(official_cls_head_shapes(128, 10))
        return {'model': {**backbone, **head}}
    prefix = {'detection': 'backbone.', 'ddp': 'module.backbone.'}[layout]
    wrapper = prefix[: -len('backbone.')]  # '' or the DDP 'module.'
    state_dict = {prefix + k: v for k, v in backbone.items()}
    state_dict[wrapper + 'neck.lateral_convs.0.conv.weight'] = torch.zeros(4, 16, 1, 1)
    return {'meta': {'epoch': 12}, 'state_dict': state_dict}


@pytest.mark.parametrize('arch', [TINY_ARCH, POST_NORM_ARCH])
@pytest.mark.parametrize('layout', ['classification', 'detection', 'ddp'])
def test_official_layouts_load_exactly(tmp_path, arch, layout):
    weights = _official(arch)
    path = tmp_path / 'official.pth'
    torch.save(_wrap(layout, weights), path)
    model = _build(arch, path)
    assert_loads_exactly(model, weights)
    # and the loaded model runs
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32))[-1].shape == (1, 128, 1, 1)


def test_foreign_checkpoint_raises(tmp_path):
    path = tmp_path / 'resnet.pth'
    torch.save(
        {
            'state_dict': {
                'conv1.weight': torch.zeros(64, 3, 7, 7),
                'layer1.0.bn1.weight': torch.zeros(64),
            }
        },
        path,
    )
    with pytest.raises(KeyError, match='no InternImage backbone weights'):
        _build(TINY_ARCH, path).init_weights()


def test_other_arch_raises_with_shapes(tmp_path):
    path = tmp_path / 'wider.pth'
    torch.save({'model': _official(dict(TINY_ARCH, channels=32))}, path)
    with pytest.raises(ValueError, match='patch_embed.conv1.weight'):
        _build(TINY_ARCH, path).init_weights()


def test_partial_checkpoint_logs_names(tmp_path):
    weights = _official(TINY_ARCH)
    dropped = ['levels.2.blocks.1.mlp.fc2.weight', 'levels.0.norm.0.bias']
    for key in dropped:
        del weights[key]
    weights['levels.0.blocks.0.extra'] = torch.zeros(3)
    path = tmp_path / 'partial.pth'
    torch.save({'model': weights}, path)
    with mock.patch('internimage.checkpoint.print_log') as log:
        missing, unexpected = load_backbone_checkpoint(_build(TINY_ARCH), str(path))
    assert sorted(missing) == sorted(dropped)
    assert unexpected == ['levels.0.blocks.0.extra']
    messages = ' '.join(str(c.args[0]) for c in log.call_args_list)
    assert all(key in messages for key in dropped + unexpected)


def test_downstream_layer_scale_keeps_gammas(tmp_path):
    """Detection/segmentation configs add layer_scale=1.0 to T, whose file has no gammas."""
    path = tmp_path / 't.pth'
    torch.save({'model': _official(TINY_ARCH)}, path)
    model = _build(TINY_ARCH, path, layer_scale=1.0)
    with mock.patch('internimage.checkpoint.print_log') as log:
        model.init_weights()
    assert torch.equal(model.levels[1].blocks[0].gamma2, torch.ones(32))
    messages = ' '.join(str(c.args[0]) for c in log.call_args_list)
    assert 'levels.0.blocks.0.gamma1' in messages and 'Missing' not in messages


def test_non_weights_only_file_refused(tmp_path):
    path = tmp_path / 'pickled.pth'
    torch.save({'model': _official(TINY_ARCH), 'config': _Opaque()}, path)
    with pytest.raises(RuntimeError, match='weights_only=True'):
        _build(TINY_ARCH, path).init_weights()


class _Opaque:
    """An arbitrary pickled object, as training frameworks leave in checkpoints."""


def test_runner_style_metadata_allowed(tmp_path):
    """mmengine Runner checkpoints carry numpy values in meta; they still load safely."""
    import numpy as np

    path = tmp_path / 'runner.pth'
    weights = {'backbone.' + k: v for k, v in _official(TINY_ARCH).items()}
    torch.save({'meta': {'seed': np.int64(3), 'hist': np.zeros(2)}, 'state_dict': weights}, path)
    model = _build(TINY_ARCH, path)
    model.init_weights()
    assert torch.equal(model.patch_embed.conv1.weight, weights['backbone.patch_embed.conv1.weight'])
