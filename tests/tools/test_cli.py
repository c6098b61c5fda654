"""The command-line tools as a user runs them, on a shrunken quick-start job.

tools/make_quickstart_data.py -> tools/train.py (1 iteration) ->
tools/train.py --resume -> tools/test.py --show-dir -> tools/image_demo.py,
each as a subprocess. The Runner's checkpoints carry numpy values, so test and
resume only work if the checkpoint allow-list is right: it is also checked
directly against ``torch.serialization.get_unsafe_globals_in_checkpoint``.
"""

import pickle
from pathlib import Path

import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from internimage.apis import (
    enable_amp,
    enable_resume,
    enable_show_dir,
    render_prediction,
    task_scope,
)
from internimage.checkpoint import checkpoint_safe_globals, register_checkpoint_safe_globals
from tests.tool_runs import run_tool

ROOT = Path(__file__).resolve().parents[2]
DET_CONFIG = 'configs/quickstart/mask-rcnn_internimage-tiny_quickstart.py'


def _det_options(data_root: Path, max_epochs: int) -> list:
    coco = f'{data_root}/coco/'
    options = [
        f'train_cfg.max_epochs={max_epochs}',
        # No validation during training: tools/test.py evaluates below.
        f'train_cfg.val_interval={max_epochs + 1}',
        'default_hooks.checkpoint.interval=1',
        # An untrained model scores near chance: keep all detections.
        'model.test_cfg.rcnn.score_thr=0.0',
        f'val_evaluator.ann_file={coco}annotations/instances_val.json',
        f'test_evaluator.ann_file={coco}annotations/instances_val.json',
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [
            f'{loader}.dataset.data_root={coco}',
            f'{loader}.num_workers=0',
            f'{loader}.persistent_workers=False',
            f'{loader}.batch_size=2',
        ]
    return options


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Data from the CLI, then one training iteration with tools/train.py."""
    base = tmp_path_factory.mktemp('tools')
    data_root = base / 'data'
    out = run_tool(
        'tools/make_quickstart_data.py',
        '--out',
        str(data_root),
        '--num-train',
        '2',
        '--num-val',
        '2',
        '--image-size',
        '64',
    )
    assert 'quick-start data ready' in out
    work_dir = base / 'work'
    out = run_tool(
        'tools/train.py',
        DET_CONFIG,
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        *_det_options(data_root, max_epochs=1),
    )
    assert 'Epoch(train) [1][1/1]' in out
    checkpoint = (work_dir / 'last_checkpoint').read_text().strip()
    return dict(data_root=data_root, work_dir=work_dir, checkpoint=checkpoint)


@pytest.mark.slow
def test_checkpoint_needs_exactly_the_allow_list(trained):
    checkpoint = trained['checkpoint']
    # What the file needs beyond torch's own allow-list: list it with the process's
    # registrations (``import internimage`` made them) set aside, then restore them.
    registered = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(checkpoint))
    finally:
        torch.serialization.add_safe_globals(registered)
    assert unsafe, 'the Runner checkpoint is expected to carry numpy values'
    allowed = {
        entry[1] if isinstance(entry, tuple) else f'{entry.__module__}.{entry.__qualname__}'
        for entry in checkpoint_safe_globals()
    }
    assert unsafe <= allowed, f'not allow-listed: {sorted(unsafe - allowed)}'
    # `import internimage` registered the list (a safe_globals context would remove it
    # from the process on exit).
    register_checkpoint_safe_globals()
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    assert state['meta']['epoch'] == 1
    assert state['meta']['dataset_meta']['classes'] == ('circle', 'square', 'triangle')


class _SneakyGetattr:
    """Pickles as getattr(HistoryBuffer, '__init__'): not a statistic."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer

        return getattr, (HistoryBuffer, '__init__')


def test_allow_list_refuses_other_getattr(tmp_path):
    path = tmp_path / 'sneaky.pth'
    torch.save({'meta': _SneakyGetattr()}, path)
    register_checkpoint_safe_globals()
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        torch.load(path, weights_only=True)


@pytest.mark.slow
def test_resume_continues_from_checkpoint(trained, tmp_path):
    work_dir = tmp_path / 'resumed'
    out = run_tool(
        'tools/train.py',
        DET_CONFIG,
        '--work-dir',
        str(work_dir),
        '--resume',
        trained['checkpoint'],
        '--cfg-options',
        *_det_options(trained['data_root'], max_epochs=2),
    )
    assert 'resumed epoch: 1, iter: 1' in out
    assert 'Epoch(train) [2][1/1]' in out


@pytest.mark.slow
def test_test_tool_prints_coco_metrics_and_renders(trained, tmp_path):
    show_dir = tmp_path / 'show'
    out = run_tool(
        'tools/test.py',
        DET_CONFIG,
        trained['checkpoint'],
        '--work-dir',
        str(tmp_path / 'test'),
        '--show-dir',
        str(show_dir),
        '--cfg-options',
        *_det_options(trained['data_root'], max_epochs=1),
    )
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert key in out
    rendered = list(show_dir.rglob('*.png'))
    assert len(rendered) == 2  # one per val image


@pytest.mark.slow
def test_image_demo_detection(trained, tmp_path):
    image = trained['data_root'] / 'coco' / 'val' / 'val_00000.png'
    out_file = tmp_path / 'det.png'
    run_tool(
        'tools/image_demo.py',
        DET_CONFIG,
        trained['checkpoint'],
        str(image),
        '--out-file',
        str(out_file),
        '--score-thr',
        '0',
    )
    rendered = cv2.imread(str(out_file))
    assert rendered is not None
    # Inference resizes to the config's 128 px; the drawing is on the input.
    assert rendered.shape == cv2.imread(str(image)).shape


def _fresh_checkpoint(config: str, path: Path, dataset_meta: dict) -> str:
    """A checkpoint of an untrained model, as mmengine would save it."""
    cfg = Config.fromfile(str(ROOT / config))
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dataset_meta)), path)
    return str(path)


SEG_META = dict(
    classes=('background', 'circle', 'square', 'triangle'),
    palette=[[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]],
)
CLS_META = dict(classes=('circle', 'square', 'triangle'))


@pytest.mark.slow
@pytest.mark.parametrize(
    'config, image, dataset_meta',
    [
        (
            'configs/quickstart/upernet_internimage-tiny_quickstart.py',
            'coco/val/val_00001.png',
            SEG_META,
        ),
        (
            'configs/quickstart/internimage-tiny_quickstart_cls.py',
            'cls/val/square/square_00000.png',
            CLS_META,
        ),
    ],
)
def test_image_demo_segmentation_and_classification(trained, tmp_path, config, image, dataset_meta):
    classes = dataset_meta['classes']
    checkpoint = _fresh_checkpoint(config, tmp_path / 'model.pth', dataset_meta)
    image = str(trained['data_root'] / image)
    out_file = tmp_path / 'rendered.png'
    result = render_prediction(str(ROOT / config), checkpoint, image, str(out_file))
    assert cv2.imread(str(out_file)) is not None
    if 'pred_sem_seg' in result:
        assert result.pred_sem_seg.data.shape[-2:] == cv2.imread(image).shape[:2]
    else:
        assert 0 <= int(result.pred_label) < len(classes)


def test_task_scope_rejects_foreign_configs():
    with pytest.raises(ValueError, match='default_scope'):
        task_scope(Config(dict(default_scope='mmocr')))
    assert task_scope(Config(dict(default_scope='mmseg'))) == 'mmseg'


def test_amp_without_cuda_trains_in_bfloat16(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)  # also on a GPU machine
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'CPUBFloat16AmpOptimWrapper'
    with pytest.raises(ValueError, match='--amp only applies to optim_wrapper.type'):
        enable_amp(Config(dict(optim_wrapper=dict(type='ApexOptimWrapper'))))


def test_resume_options(tmp_path):
    cfg = Config(dict(resume=False, load_from=None))
    enable_resume(cfg, 'auto')
    assert cfg.resume is True and cfg.load_from is None
    with pytest.raises(FileNotFoundError, match='--resume'):
        enable_resume(cfg, str(tmp_path / 'missing.pth'))


@pytest.mark.parametrize(
    'scope, hook, where',
    [
        ('mmdet', 'DetVisualizationHook', 'default_hooks.visualization.test_out_dir'),
        ('mmseg', 'SegVisualizationHook', 'visualizer.save_dir'),
        ('mmpretrain', 'VisualizationHook', 'default_hooks.visualization.out_dir'),
    ],
)
def test_show_dir_uses_each_librarys_hook(tmp_path, scope, hook, where):
    cfg = Config(
        dict(
            default_scope=scope,
            default_hooks=dict(visualization=dict(type=hook)),
            visualizer=dict(type='Visualizer'),
        )
    )
    enable_show_dir(cfg, str(tmp_path / 'show'))
    value = cfg
    for key in where.split('.'):
        value = value[key]
    assert value == str(tmp_path / 'show')
    visualization = cfg.default_hooks.visualization
    assert visualization.get('draw', visualization.get('enable')) is True
