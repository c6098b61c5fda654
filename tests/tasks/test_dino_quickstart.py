"""The quick-start DINO with an H-style tiny backbone and the quick-start CB-DINO (two
tiny H-style branches) each train one iteration on CPU, which must move the backbone, the
head (and for CB-DINO the composite gates), then predict and evaluate."""

import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import internimage  # noqa: F401  (registers the models)
from internimage.datasets import QuickstartSpec

ROOT = Path(__file__).resolve().parents[2]
# A Runner, one DINO training iteration and a COCO evaluation each: tens of seconds on CPU.
pytestmark = pytest.mark.slow

SPEC = QuickstartSpec(num_train=2, num_val=2, image_size=128, seed=5)


@pytest.mark.parametrize(
    'name', ['dino_internimage-h-tiny_quickstart', 'cb-dino_internimage-h-tiny_quickstart']
)
def test_quickstart_dino_trains_and_predicts(name, quickstart_data, tmp_path):
    data_root = str(quickstart_data(SPEC) / 'coco') + '/'
    cfg = Config.fromfile(str(ROOT / 'configs/quickstart' / f'{name}.py'))
    cfg.work_dir = str(tmp_path)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
        cfg[loader].batch_size = 2
        cfg[loader].dataset.data_root = data_root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = data_root + 'annotations/instances_val.json'
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=10)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10)
    runner = Runner.from_cfg(cfg)
    before = {k: v.detach().clone() for k, v in runner.model.named_parameters()}
    runner.train()
    assert runner.iter == 1
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss) and loss > 0
    moved = {k for k, v in runner.model.named_parameters() if not torch.equal(v, before[k])}
    assert any(k.startswith('backbone.') for k in moved)
    assert any(k.startswith('bbox_head.') for k in moved)
    if name.startswith('cb-'):
        assert 'backbone.cb_modules.1.gamma0' in moved  # the composite connections learn
        logged = runner.message_hub.log_scalars
        assert 'train/loss_cls0_w0.5' in logged and 'train/loss_cls1' in logged
    metrics = runner.test()
    assert 0.0 <= float(metrics['coco/bbox_mAP']) <= 1.0
