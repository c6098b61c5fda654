"""docs/custom_dataset.md, followed as a user would: its config files as the page gives them,
its data layouts made by the quick-start generator and linked as the page says, trained for
one epoch or iteration and evaluated with ``tools/train.py`` from a checkout.

The page's config blocks are found by their first line (``# configs/my_data/NAME.py``), so an
edit of the page is what gets tested. The only additions to the page's commands are the ones
the page itself documents for a quick, offline run (no ImageNet download, one epoch or
iteration) and a small work dir.
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from internimage.checkpoint import load_checkpoint_file
from internimage.datasets import QuickstartSpec, make_quickstart_data

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / 'docs' / 'custom_dataset.md'
# Two scenes per split, two images per class: one batch, so one training iteration.
SPEC = QuickstartSpec(
    num_train=2, num_val=2, image_size=64, cls_num_train=2, cls_num_val=1, cls_image_size=32
)
# What the page's own notes add for a first offline look: scratch weights, one epoch/iteration.
QUICK = {
    'mask-rcnn_internimage-t_my-coco': ['train_cfg.max_epochs=1'],
    'upernet_internimage-t_my-seg': ['train_cfg.max_iters=1', 'train_cfg.val_interval=1'],
    'internimage-t_my-cls': [
        'train_cfg.max_epochs=2',
        'param_scheduler.0.end=1',
        'param_scheduler.1.begin=1',
    ],
}
DATA_LINKS = {'my_coco': 'quickstart/coco', 'my_seg': 'quickstart/seg', 'my_cls': 'quickstart/cls'}


def page_configs() -> dict:
    """``{name: source}`` of every config block of the page."""
    blocks = re.findall(r'```python\n(.*?)```', PAGE.read_text(), flags=re.S)
    configs = {}
    for block in blocks:
        first = block.splitlines()[0]
        match = re.fullmatch(r'# configs/my_data/(\S+)\.py', first)
        if match:
            configs[match.group(1)] = block
    return configs


def test_page_gives_a_config_and_commands_per_task():
    configs = page_configs()
    assert set(configs) == set(QUICK)
    text = PAGE.read_text()
    for name in configs:
        assert f'tools/train.py configs/my_data/{name}.py' in text
        assert f'tools/test.py configs/my_data/{name}.py' in text
    for link, target in DATA_LINKS.items():
        assert f'ln -s {target} data/{link}' in text
    for options in QUICK.values():  # the quick-run overrides are the page's own
        assert ' '.join(options) in text


@pytest.fixture(scope='module')
def checkout(tmp_path_factory) -> Path:
    """A directory laid out as the page assumes: ``configs/`` of this repository plus the
    page's ``configs/my_data/``, and ``data/`` with the generated sets linked as the page says."""
    root = tmp_path_factory.mktemp('checkout')
    (root / 'configs').mkdir()
    for entry in (ROOT / 'configs').iterdir():
        (root / 'configs' / entry.name).symlink_to(entry)
    my_data = root / 'configs' / 'my_data'
    my_data.mkdir()
    for name, source in page_configs().items():
        (my_data / f'{name}.py').write_text(source)
    make_quickstart_data(root / 'data' / 'quickstart', SPEC)
    for link, target in DATA_LINKS.items():
        (root / 'data' / link).symlink_to(target)
    return root


def _train(checkout: Path, name: str) -> Path:
    work_dir = checkout / 'work_dirs' / name
    command = [
        sys.executable,
        str(ROOT / 'tools' / 'train.py'),
        f'configs/my_data/{name}.py',
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        'model.backbone.init_cfg=None',
        *QUICK[name],
    ]
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'PYTHONWARNINGS': 'ignore'}
    proc = subprocess.run(
        command, cwd=checkout, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return work_dir


def _logged(work_dir: Path) -> list:
    (scalars,) = work_dir.glob('*/vis_data/scalars.json')
    return [json.loads(line) for line in scalars.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.needs_extension
@pytest.mark.parametrize(
    'name, metric',
    [
        ('mask-rcnn_internimage-t_my-coco', 'coco/bbox_mAP'),
        ('upernet_internimage-t_my-seg', 'mIoU'),
        ('internimage-t_my-cls', 'accuracy/top1'),
    ],
)
def test_page_config_trains_one_iteration_and_evaluates(checkout, name, metric):
    work_dir = _train(checkout, name)
    records = _logged(work_dir)
    losses = [r['loss'] for r in records if 'loss' in r]
    assert losses and all(math.isfinite(loss) for loss in losses)
    metrics = [r[metric] for r in records if metric in r]
    assert metrics, f'{metric} not logged: {records}'
    last = Path((work_dir / 'last_checkpoint').read_text().strip())
    checkpoint = load_checkpoint_file(str(last))
    # One batch per epoch: one iteration (two for the classifier's warm-up + decay).
    assert checkpoint['meta']['iter'] == (2 if name == 'internimage-t_my-cls' else 1)
    # The head was built for the page's classes, not the recipe's.
    num_classes = {'mask-rcnn': 3 + 1, 'upernet': 4, 'internimage-t_my-cls': 3}
    head_key = {
        'mask-rcnn': 'roi_head.bbox_head.fc_cls.weight',
        'upernet': 'decode_head.conv_seg.weight',
        'internimage-t_my-cls': 'head.fc.weight',
    }
    kind = next(k for k in head_key if name.startswith(k))
    weight = checkpoint['state_dict'][head_key[kind]]
    assert isinstance(weight, torch.Tensor) and weight.shape[0] == num_classes[kind]
