"""Each task end to end through mmengine's real Runner, on CPU.

The quick-start configs are pointed at a tiny generated dataset (64 px
scenes), trained for one iteration, then evaluated with their task metric:
COCO bbox/segm AP (Mask R-CNN), mIoU (UperNet) and top-1 (classifier).
"""

import math
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import internimage  # noqa: F401  (registers InternImage & co.)
from internimage.quickstart import QuickstartSpec, make_quickstart_data

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / 'configs' / 'quickstart'
SPEC = QuickstartSpec(
    num_train=2,
    num_val=2,
    image_size=64,
    cls_num_train=2,
    cls_num_val=1,
    cls_image_size=32,
    seed=11,
)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory) -> Path:
    return make_quickstart_data(tmp_path_factory.mktemp('e2e') / 'data', SPEC)


def _single_process_loaders(cfg: Config, batch_size: int) -> None:
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].num_workers = 0
        cfg[name].persistent_workers = False
        cfg[name].batch_size = batch_size


def _run(cfg: Config) -> dict:
    """Train (one iteration), then evaluate on the test split."""
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss) and loss > 0
    return runner.test()


def _assert_metrics(metrics: dict, keys, low=0.0, high=1.0) -> None:
    for key in keys:
        assert key in metrics, f'{key} missing from {sorted(metrics)}'
        value = float(metrics[key])
        assert low <= value <= high, f'{key}={value}'


def test_mask_rcnn_one_iteration_and_coco_eval(data_root, tmp_path):
    cfg = Config.fromfile(str(QUICKSTART / 'mask-rcnn_internimage-tiny_quickstart.py'))
    cfg.work_dir = str(tmp_path)
    _single_process_loaders(cfg, batch_size=SPEC.num_train)
    coco_root = str(data_root / 'coco') + '/'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].dataset.data_root = coco_root
    for name in ('val_evaluator', 'test_evaluator'):
        cfg[name].ann_file = coco_root + 'annotations/instances_val.json'
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    # An untrained model scores every class near chance: keep all boxes so
    # the COCO evaluation has detections to match.
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    metrics = _run(cfg)
    _assert_metrics(
        metrics, ['coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50']
    )


def test_upernet_one_iteration_and_miou(data_root, tmp_path):
    cfg = Config.fromfile(str(QUICKSTART / 'upernet_internimage-tiny_quickstart.py'))
    cfg.work_dir = str(tmp_path)
    _single_process_loaders(cfg, batch_size=SPEC.num_train)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].dataset.data_root = str(data_root / 'seg')
    size = (SPEC.image_size, SPEC.image_size)
    cfg.model.data_preprocessor.size = size
    cfg.train_cfg.update(max_iters=1, val_interval=1)
    metrics = _run(cfg)
    # mmseg reports percentages.
    _assert_metrics(metrics, ['mIoU', 'aAcc'], high=100.0)


def test_classifier_one_iteration_and_top1(data_root, tmp_path):
    cfg = Config.fromfile(str(QUICKSTART / 'internimage-tiny_quickstart_cls.py'))
    cfg.work_dir = str(tmp_path)
    _single_process_loaders(cfg, batch_size=3 * SPEC.cls_num_train)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].dataset.data_root = str(data_root / 'cls')
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    metrics = _run(cfg)
    _assert_metrics(metrics, ['accuracy/top1'], high=100.0)
