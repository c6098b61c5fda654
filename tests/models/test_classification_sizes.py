"""configs/classification: every config parses and its model builds with the official size."""

import glob
import os.path as osp
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import internimage  # noqa: F401

ROOT = str(Path(__file__).resolve().parents[2])  # the repository
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'classification', 'internimage-*.py')))
# arch -> (input size of the official recipe, params in millions with the 1000-class head)
OFFICIAL = {
    't': (224, 29.92),
    's': (224, 50.08),
    'b': (224, 97.46),
    'l': (384, 223.33),
    'xl': (384, 334.82),
    'h': (640, 1089.64),
    'g': (512, 3076.37),
}


def test_all_variants_have_a_config():
    names = {osp.basename(p).split('_')[0] for p in CONFIGS}
    assert names == {f'internimage-{arch}' for arch in OFFICIAL}
    assert osp.join(ROOT, 'configs', 'classification', 'internimage-t_8xb128_in1k.py') in CONFIGS


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    assert 'internimage' in cfg.custom_imports['imports']
    arch = cfg.model.backbone.arch
    size, params_m = OFFICIAL[arch]
    crop = next(t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'CenterCrop')
    assert crop['crop_size'] == size
    init_default_scope('mmpretrain')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(params_m, rel=0.01)
