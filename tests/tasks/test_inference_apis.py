"""OpenMMLab's own inference APIs with our configs and checkpoints (docs/inference.md).

For each task, two checkpoints of the quick-start model: one written by a one-iteration
``tools/train.py`` run (mmengine's metadata: numpy values, ``HistoryBuffer``) and one made
from an official-layout file (detection / segmentation: ``{'meta', 'state_dict'}`` as the
released files; classification: ``{'model': ...}`` converted by
``tools/convert_checkpoint.py``). Every upstream entry point predicts with each and saves
its drawing; the predictions' structure and the saved picture are checked, and the model
each entry point built must hold exactly the checkpoint's tensors (the upstream loaders use
``strict=False``: a dropped or misnamed key would otherwise pass unnoticed). The
official-layout files hold seeded random values in every tensor, so a key left at its
initial value cannot match by chance.

Every ``torch.load`` in this module is watched: a test fails if any runs with a full
unpickle (``weights_only=False``, passed or forced by the environment). The allow-list
that makes the Runner files load comes from importing the plugin; a subprocess checks
that a config's ``custom_imports`` alone is enough.
"""

import copy
import functools
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

import internimage  # noqa: F401  (what a user imports; registers the allow-list)
from internimage.datasets import QuickstartSpec
from tests.models.official_keys import official_classification_layout
from tests.tool_runs import run_tool

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = 'configs/quickstart'
CONFIGS = {
    'det': f'{QUICKSTART}/mask-rcnn_internimage-tiny_quickstart.py',
    'seg': f'{QUICKSTART}/upernet_internimage-tiny_quickstart.py',
    'cls': f'{QUICKSTART}/internimage-tiny_quickstart_cls.py',
}
DET_CLASSES = ('circle', 'square', 'triangle')
SEG_CLASSES = ('background', *DET_CLASSES)
SEG_PALETTE = [[0, 0, 0], [220, 20, 60], [0, 160, 80], [30, 90, 230]]
SPEC = QuickstartSpec(
    num_train=2, num_val=2, image_size=64, cls_num_train=1, cls_num_val=1, cls_image_size=32
)
pytestmark = pytest.mark.slow


# ---------------------------------------------------------------- isolation
@pytest.fixture(autouse=True)
def restore_default_scope():
    """mmdet's and mmseg's inferencers set mmengine's global default scope; put it back
    so later tests (in this process) build in the scope they expect."""
    saved = copy.copy(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = saved


# ---------------------------------------------------------------- no full unpickling
@pytest.fixture(autouse=True)
def weights_only_loads(monkeypatch):
    """Fails the test if any torch.load unpickles fully; returns the list of loads."""
    real_load = torch.load
    calls = []

    def watched_load(*args, **kwargs):
        weights_only = kwargs.get('weights_only')
        forced_off = os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '0').lower() in (
            '1',
            'y',
            'yes',
            'true',
        )
        forced_on = os.environ.get('TORCH_FORCE_WEIGHTS_ONLY_LOAD', '0').lower() in (
            '1',
            'y',
            'yes',
            'true',
        )
        full_unpickle = not forced_on and (
            weights_only is False or (weights_only is None and forced_off)
        )
        calls.append(args[0] if args else kwargs.get('f'))
        assert not full_unpickle, f'torch.load fell back to full unpickling: {calls[-1]}'
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', watched_load)
    yield calls


# ---------------------------------------------------------------- checkpoints
# Whole (short) training runs: a longer limit than a single tool call.
_run_tool = functools.partial(run_tool, timeout=600)


def _train_options(task: str, data_root: Path) -> list:
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    options = []
    for loader in loaders:
        options += [
            f'{loader}.num_workers=0',
            f'{loader}.persistent_workers=False',
            f'{loader}.batch_size={3 if task == "cls" else 2}',
        ]
    if task == 'det':
        coco = f'{data_root}/coco/'
        options += [f'{loader}.dataset.data_root={coco}' for loader in loaders]
        # The COCO metric reads the annotation file itself (built at val even if unused).
        options += [
            f'{evaluator}.ann_file={coco}annotations/instances_val.json'
            for evaluator in ('val_evaluator', 'test_evaluator')
        ]
        options += [
            'train_cfg.max_epochs=1',
            'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=1',
            # An untrained model scores near chance: keep every detection.
            'model.test_cfg.rcnn.score_thr=0.0',
        ]
    elif task == 'seg':
        options += [f'{loader}.dataset.data_root={data_root}/seg' for loader in loaders]
        options += [
            'train_cfg.max_iters=1',
            'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=1',
            f'model.data_preprocessor.size=({SPEC.image_size},{SPEC.image_size})',
        ]
    else:
        options += [f'{loader}.dataset.data_root={data_root}/cls' for loader in loaders]
        options += ['train_cfg.max_epochs=1', 'train_cfg.val_interval=2']
    return options


def _official_layout(task: str, path: Path) -> str:
    """A file laid out as the released ones, from an untrained quick-start model."""
    cfg = Config.fromfile(str(ROOT / CONFIGS[task]))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    state_dict = _randomised(model.state_dict())
    if task == 'cls':
        # Official classification files: backbone keys at the root, head Linear `head.*`.
        official = official_classification_layout(state_dict)
        source = path.with_name('internimage_quickstart_official.pth')
        torch.save({'model': official, 'epoch': 300}, source)
        _run_tool('tools/convert_checkpoint.py', str(source), str(path))
    else:
        # The released files' meta (mmdet 2.x / mmseg 0.x): CLASSES, and PALETTE for mmseg.
        meta = {'CLASSES': DET_CLASSES, 'epoch': 36}
        if task == 'seg':
            meta = {'CLASSES': SEG_CLASSES, 'PALETTE': SEG_PALETTE, 'iter': 160000}
        torch.save({'meta': meta, 'state_dict': state_dict}, path)
    return str(path)


def _randomised(state_dict: dict) -> dict:
    """Seeded noise (std 0.02) added to every floating-point tensor: none keeps a value a
    freshly built model has (zero-initialised offset projections and biases, unit norms and
    BN statistics included), while the model stays numerically tame."""
    generator = torch.Generator().manual_seed(5)
    return {
        key: value + 0.02 * torch.randn(value.shape, generator=generator)
        if value.is_floating_point()
        else value
        for key, value in state_dict.items()
    }


def _assert_holds_checkpoint(model: torch.nn.Module, checkpoint: str) -> None:
    """Every tensor of ``model`` equals the checkpoint's under the same key, and the
    checkpoint has no key the model lacks."""
    saved = torch.load(checkpoint, map_location='cpu', weights_only=True)['state_dict']
    state = model.state_dict()
    assert sorted(set(state) - set(saved)) == [], 'model keys not in the checkpoint'
    assert sorted(set(saved) - set(state)) == [], 'checkpoint keys the model lacks'
    for key, value in state.items():
        assert torch.equal(value.cpu(), saved[key]), f'{key} differs from the checkpoint'


@pytest.fixture(scope='module')
def data_root(quickstart_data) -> Path:
    return quickstart_data(SPEC)


@pytest.fixture(scope='module')
def checkpoints(data_root, tmp_path_factory) -> dict:
    """(task, kind) -> checkpoint path, kind 'trained' (tools/train.py, one iteration) or
    'official' (official layout, converted where the task needs it)."""
    base = tmp_path_factory.mktemp('inference')
    found = {}
    for task in CONFIGS:
        work_dir = base / f'{task}-work'
        _run_tool(
            'tools/train.py',
            CONFIGS[task],
            '--work-dir',
            str(work_dir),
            '--cfg-options',
            *_train_options(task, data_root),
        )
        found[task, 'trained'] = (work_dir / 'last_checkpoint').read_text().strip()
        found[task, 'official'] = _official_layout(task, base / f'{task}-official.pth')
    return found


def _image(task: str, data_root: Path) -> str:
    if task == 'cls':
        return str(data_root / 'cls' / 'val' / 'square' / 'square_00000.png')
    return str(data_root / 'coco' / 'val' / 'val_00000.png')


def _assert_picture(path: Path, like: str) -> None:
    assert path.is_file() and path.stat().st_size > 0, f'no picture at {path}'
    picture = cv2.imread(str(path))
    assert picture is not None and picture.size > 0
    assert picture.shape[:2] == cv2.imread(like).shape[:2]


def _assert_detections(sample, image: str) -> None:
    instances = sample.pred_instances
    height, width = cv2.imread(image).shape[:2]
    count = len(instances)
    assert instances.bboxes.shape == (count, 4)
    assert instances.scores.shape == (count,) and instances.labels.shape == (count,)
    assert instances.masks.shape == (count, height, width)
    assert ((instances.labels >= 0) & (instances.labels < len(DET_CLASSES))).all()


def _assert_segmentation(sample, image: str) -> None:
    height, width = cv2.imread(image).shape[:2]
    assert sample.pred_sem_seg.data.shape == (1, height, width)
    labels = sample.pred_sem_seg.data.unique()
    assert ((labels >= 0) & (labels < len(SEG_CLASSES))).all()


def _assert_classification(sample) -> None:
    assert sample.pred_score.shape == (len(DET_CLASSES),)
    assert 0 <= int(sample.pred_label) < len(DET_CLASSES)
    assert torch.isclose(sample.pred_score.sum(), torch.tensor(1.0), atol=1e-4)


KINDS = ['trained', 'official']


# ---------------------------------------------------------------- mmdet
@pytest.mark.parametrize('kind', KINDS)
def test_det_inferencer(checkpoints, data_root, tmp_path, kind, weights_only_loads):
    from mmdet.apis import DetInferencer

    image = _image('det', data_root)
    inferencer = DetInferencer(
        model=str(ROOT / CONFIGS['det']),
        weights=checkpoints['det', kind],
        device='cpu',
        show_progress=False,
    )
    assert weights_only_loads, 'the checkpoint was not read through torch.load'
    _assert_holds_checkpoint(inferencer.model, checkpoints['det', kind])
    results = inferencer(image, out_dir=str(tmp_path), pred_score_thr=0.0, return_datasamples=True)
    _assert_detections(results['predictions'][0], image)
    _assert_picture(tmp_path / 'vis' / Path(image).name, image)
    if kind == 'official':
        assert inferencer.model.dataset_meta['classes'] == DET_CLASSES


@pytest.mark.parametrize('kind', KINDS)
def test_init_detector_inference_detector(checkpoints, data_root, tmp_path, kind):
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS

    image = _image('det', data_root)
    model = init_detector(str(ROOT / CONFIGS['det']), checkpoints['det', kind], device='cpu')
    _assert_holds_checkpoint(model, checkpoints['det', kind])
    sample = inference_detector(model, image)
    _assert_detections(sample, image)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    out_file = tmp_path / 'det.png'
    visualizer.add_datasample(
        'det',
        cv2.imread(image)[..., ::-1],
        data_sample=sample,
        draw_gt=False,
        pred_score_thr=0.0,
        out_file=str(out_file),
    )
    _assert_picture(out_file, image)


# ---------------------------------------------------------------- mmseg
@pytest.mark.parametrize('kind', KINDS)
def test_mmseg_inferencer(checkpoints, data_root, tmp_path, kind, weights_only_loads):
    from mmseg.apis import MMSegInferencer

    image = _image('seg', data_root)
    inferencer = MMSegInferencer(
        model=str(ROOT / CONFIGS['seg']), weights=checkpoints['seg', kind], device='cpu'
    )
    assert weights_only_loads
    _assert_holds_checkpoint(inferencer.model, checkpoints['seg', kind])
    sample = inferencer(image, out_dir=str(tmp_path), return_datasamples=True)
    _assert_segmentation(sample, image)
    _assert_picture(tmp_path / 'vis' / Path(image).name, image)
    assert tuple(inferencer.model.dataset_meta['classes']) == SEG_CLASSES


@pytest.mark.parametrize('kind', KINDS)
def test_init_model_inference_model_seg(checkpoints, data_root, tmp_path, kind):
    from mmseg.apis import inference_model, init_model, show_result_pyplot

    image = _image('seg', data_root)
    model = init_model(str(ROOT / CONFIGS['seg']), checkpoints['seg', kind], device='cpu')
    _assert_holds_checkpoint(model, checkpoints['seg', kind])
    sample = inference_model(model, image)
    _assert_segmentation(sample, image)
    out_file = tmp_path / 'seg.png'
    show_result_pyplot(model, image, sample, show=False, draw_gt=False, out_file=str(out_file))
    _assert_picture(out_file, image)


# ---------------------------------------------------------------- mmpretrain
@pytest.mark.parametrize('kind', KINDS)
def test_image_classification_inferencer(
    checkpoints, data_root, tmp_path, kind, weights_only_loads
):
    from mmpretrain.apis import ImageClassificationInferencer

    image = _image('cls', data_root)
    # mmpretrain's inferencer builds its pipeline in the current default scope, which the
    # mmdet/mmseg tests of this process changed; a user's fresh process has none.
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        inferencer = ImageClassificationInferencer(
            model=str(ROOT / CONFIGS['cls']), pretrained=checkpoints['cls', kind], device='cpu'
        )
    assert weights_only_loads
    _assert_holds_checkpoint(inferencer.model, checkpoints['cls', kind])
    [sample] = inferencer(image, return_datasamples=True, show_dir=str(tmp_path / 'vis'))
    _assert_classification(sample)
    _assert_picture(tmp_path / 'vis' / (Path(image).stem + '.png'), image)
    [result] = inferencer(image)
    if kind == 'trained':  # dataset_meta saved by the Runner: named classes
        assert result['pred_class'] in DET_CLASSES


@pytest.mark.parametrize('entry', ['get_model', 'init_model'])
@pytest.mark.parametrize('kind', KINDS)
def test_get_model_inference_model_cls(checkpoints, data_root, tmp_path, kind, entry):
    """By config path (prediction through the inferencer) and by the model-index name that
    ``import internimage`` registered (``inference_model`` needs the name's task)."""
    import mmpretrain.apis

    image = _image('cls', data_root)
    build = getattr(mmpretrain.apis, entry)
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # see the inferencer test
        by_path = build(str(ROOT / CONFIGS['cls']), checkpoints['cls', kind], device='cpu')
        _assert_holds_checkpoint(by_path, checkpoints['cls', kind])
        [sample] = mmpretrain.apis.ImageClassificationInferencer(by_path)(
            image, return_datasamples=True
        )
        _assert_classification(sample)

        model = build('internimage-tiny_quickstart_cls', checkpoints['cls', kind], device='cpu')
        _assert_holds_checkpoint(model, checkpoints['cls', kind])
        result = mmpretrain.apis.inference_model(model, image, show_dir=str(tmp_path / 'vis'))
    assert set(result) >= {'pred_label', 'pred_score', 'pred_scores'}
    assert len(result['pred_scores']) == len(DET_CLASSES)
    assert 0 <= result['pred_label'] < len(DET_CLASSES)
    _assert_picture(tmp_path / 'vis' / (Path(image).stem + '.png'), image)


# ---------------------------------------------------------------- the plugin's import
def test_custom_imports_alone_allow_runner_checkpoints(checkpoints, data_root, tmp_path):
    """A fresh process that never imports internimage itself: the config's custom_imports
    does, and that registers the allow-list (torch.load still weights_only)."""
    script = f"""
import torch
real_load = torch.load
def watched(*args, **kwargs):
    assert kwargs.get('weights_only') is not False, 'full unpickle'
    return real_load(*args, **kwargs)
torch.load = watched
import sys
from mmdet.apis import DetInferencer
assert 'internimage' not in sys.modules
inferencer = DetInferencer(model={str(ROOT / CONFIGS['det'])!r},
                           weights={checkpoints['det', 'trained']!r}, device='cpu',
                           show_progress=False)
assert 'internimage' in sys.modules
results = inferencer({_image('det', data_root)!r}, out_dir={str(tmp_path)!r})
print('predicted', len(results['predictions'][0]['labels']))
"""
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    proc = subprocess.run(
        [sys.executable, '-c', script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert 'predicted' in proc.stdout
    assert (tmp_path / 'vis' / 'val_00000.png').stat().st_size > 0


# ---------------------------------------------------------------- tools/image_demo.py
@pytest.mark.parametrize('task', list(CONFIGS))
def test_image_demo_over_the_upstream_apis(checkpoints, data_root, tmp_path, task):
    image = _image(task, data_root)
    out_file = tmp_path / f'{task}.jpg'
    _run_tool(
        'tools/image_demo.py',
        CONFIGS[task],
        checkpoints[task, 'trained'],
        image,
        '--out-file',
        str(out_file),
        '--score-thr',
        '0',
    )
    _assert_picture(out_file, image)
