"""Every tool that loads a whole model, and the upstream inference APIs after ``import
internimage``, refuse a checkpoint that does not fit the model or cannot be read, with an
error naming the file; ``--allow-partial`` (``partial_checkpoint_loading()`` in Python)
is the one way to load it anyway (docs/checkpoints.md)."""

import copy
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

import internimage  # noqa: F401  (installs the strict loader, as a user's import does)
from internimage.checkpoint import (
    CheckpointMismatchError,
    CheckpointReadError,
    partial_checkpoint_loading,
)
from tests.models.official_keys import official_classification_layout
from tests.tool_runs import load_tool

from .dist_support import make_cls_data

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / 'configs/quickstart'
CLS = str(QUICKSTART / 'internimage-tiny_quickstart_cls.py')
DET = str(QUICKSTART / 'mask-rcnn_internimage-tiny_quickstart.py')
SEG = str(QUICKSTART / 'upernet_internimage-tiny_quickstart.py')
CLASSES = ('circle', 'square', 'triangle')


@pytest.fixture(autouse=True)
def restore_default_scope():
    saved = copy.copy(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = saved


def _fresh_state_dict(config: str) -> dict:
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    from mmengine.registry import MODELS

    torch.manual_seed(0)
    return MODELS.build(cfg.model).state_dict()


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """The classifier's checkpoint, and the ways a checkpoint goes wrong."""
    base = tmp_path_factory.mktemp('strict')
    weights = _fresh_state_dict(CLS)
    meta = {'dataset_meta': {'classes': CLASSES}}
    paths = dict(data=make_cls_data(base / 'data'))
    paths['good'] = base / 'good.pth'
    torch.save({'state_dict': weights, 'meta': meta}, paths['good'])
    # Another model's file: none of the classifier's weights.
    paths['wrong'] = base / 'wrong.pth'
    torch.save({'state_dict': {'encoder.weight': torch.zeros(4, 4)}}, paths['wrong'])
    # The backbone only: the head would stay random.
    paths['headless'] = base / 'headless.pth'
    backbone = {k: v for k, v in weights.items() if k.startswith('backbone.')}
    torch.save({'state_dict': backbone, 'meta': meta}, paths['headless'])
    paths['half'] = base / 'half.pth'
    paths['half'].write_bytes(paths['good'].read_bytes()[: paths['good'].stat().st_size // 2])
    paths['directory'] = base / 'folder.pth'
    paths['directory'].mkdir()
    return {k: str(v) for k, v in paths.items()}


BROKEN = [
    ('half', 'is not a readable torch checkpoint (truncated or corrupted?)'),
    ('directory', 'is a directory, not a checkpoint file'),
    ('unreadable', 'cannot be read'),
]


def _path(files, kind):
    # /proc/self/mem exists but reading it at offset 0 fails (EIO), even for root.
    return '/proc/self/mem' if kind == 'unreadable' else files[kind]


def _mismatch_text(path: str, missing: int) -> str:
    return f'checkpoint {path} does not fit the model: {missing} missing key(s)'


def _head_keys(files) -> list:
    good = torch.load(files['good'], weights_only=True)['state_dict']
    # mmengine's rule: a BatchNorm counter may be missing.
    return [k for k in good if k.startswith('head.') and 'num_batches_tracked' not in k]


# ------------------------------------------------------------------ tools/test.py
def _test_args(files, checkpoint, tmp_path, *extra):
    data = files['data']
    return [
        CLS,
        checkpoint,
        '--work-dir',
        str(tmp_path / 'work'),
        '--cfg-options',
        f'test_dataloader.dataset.data_root={data}',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        *extra,
    ]


@pytest.mark.slow
def test_test_tool_refuses_a_checkpoint_that_does_not_fit(files, tmp_path, capsys):
    tool = load_tool('test.py')
    with pytest.raises(CheckpointMismatchError) as error:
        tool.main(_test_args(files, files['headless'], tmp_path))
    head = _head_keys(files)
    assert _mismatch_text(files['headless'], len(head)) in str(error.value)
    assert ', '.join(head[:5]) in str(error.value)
    assert error.value.missing == head
    assert 'accuracy/top1' not in capsys.readouterr().out, 'it must not evaluate'
    # Asked for explicitly, the partial load evaluates.
    tool.main(_test_args(files, files['headless'], tmp_path, '--allow-partial'))
    assert 'accuracy/top1' in capsys.readouterr().out


@pytest.mark.parametrize('kind, problem', BROKEN)
def test_test_tool_names_a_broken_file(files, tmp_path, kind, problem):
    path = _path(files, kind)
    with pytest.raises(CheckpointReadError, match=re.escape(f'{path} {problem}')):
        load_tool('test.py').main(_test_args(files, path, tmp_path))


# ------------------------------------------------------------------ tools/image_demo.py
def _image(files) -> str:
    return str(Path(files['data']) / 'val' / 'square' / 'square_00000.png')


def test_image_demo_refuses_and_allows_partial(files, tmp_path):
    tool = load_tool('image_demo.py')
    out = tmp_path / 'out.png'
    with pytest.raises(CheckpointMismatchError) as error:
        tool.main([CLS, files['wrong'], _image(files), '--out-file', str(out)])
    assert f'checkpoint {files["wrong"]} does not fit the model' in str(error.value)
    assert '1 unexpected key(s) (not in the model): encoder.weight' in str(error.value)
    assert not out.exists()
    tool.main([CLS, files['headless'], _image(files), '--out-file', str(out), '--allow-partial'])
    assert out.is_file()


@pytest.mark.parametrize('kind, problem', BROKEN)
def test_image_demo_names_a_broken_file(files, tmp_path, kind, problem):
    path = _path(files, kind)
    with pytest.raises(CheckpointReadError, match=re.escape(f'{path} {problem}')):
        load_tool('image_demo.py').main(
            [CLS, path, _image(files), '--out-file', str(tmp_path / 'o.png')]
        )


# ------------------------------------------------------------------ tools/deploy/export_onnx.py
@pytest.mark.parametrize(
    'kind, problem',
    [('wrong', 'does not fit the model: '), ('headless', 'does not fit the model: '), *BROKEN],
)
def test_export_refuses_by_name(files, tmp_path, capsys, kind, problem):
    path = _path(files, kind)
    out = tmp_path / 'model.onnx'
    assert load_tool('deploy/export_onnx.py').main([CLS, path, '--out', str(out)]) == 2
    assert f'{path} {problem}' in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------ tools/convert_checkpoint.py
@pytest.fixture(scope='module')
def official(files, tmp_path_factory):
    """The classifier in the official classification layout ({'model': ...})."""
    base = tmp_path_factory.mktemp('official')
    good = torch.load(files['good'], weights_only=True)['state_dict']
    weights = official_classification_layout(good)
    paths = {}
    paths['full'] = base / 'official.pth'
    torch.save({'model': weights}, paths['full'])
    paths['headless'] = base / 'official_headless.pth'
    torch.save(
        {'model': {k: v for k, v in weights.items() if k.startswith(('patch', 'lev'))}},
        paths['headless'],
    )
    paths['short'] = base / 'official_short.pth'  # one backbone tensor dropped
    torch.save(
        {'model': {k: v for k, v in weights.items() if k != 'levels.0.norm.0.weight'}},
        paths['short'],
    )
    return {k: str(v) for k, v in paths.items()}


def test_convert_checkpoint_refuses_an_incomplete_classifier(official, tmp_path):
    tool = load_tool('convert_checkpoint.py')
    out = tmp_path / 'converted.pth'
    with pytest.raises(CheckpointMismatchError) as error:
        tool.main([official['headless'], str(out)])
    assert _mismatch_text(official['headless'], 2) in str(error.value)  # head.fc weight, bias
    with pytest.raises(CheckpointMismatchError) as error:
        tool.main([official['short'], str(out), '--config', CLS])
    assert (
        _mismatch_text(official['short'], 1) + ' (model weights not in the file): '
        'backbone.levels.0.norm.0.weight'
    ) in str(error.value)
    assert not out.exists()
    tool.main([official['full'], str(out), '--config', CLS])  # fits exactly
    tool.main([official['short'], str(out), '--config', CLS, '--allow-partial'])
    assert out.is_file()


@pytest.mark.parametrize('kind, problem', BROKEN)
def test_convert_checkpoint_names_a_broken_file(files, tmp_path, kind, problem):
    path = _path(files, kind)
    with pytest.raises(CheckpointReadError, match=re.escape(f'{path} {problem}')):
        load_tool('convert_checkpoint.py').main([path, str(tmp_path / 'out.pth')])


def test_convert_checkpoint_names_a_file_of_another_kind(files, tmp_path):
    with pytest.raises(KeyError, match=f'{files["wrong"]}: not an official InternImage'):
        load_tool('convert_checkpoint.py').main([files['wrong'], str(tmp_path / 'out.pth')])


# ------------------------------------------------------------------ upstream APIs
def _det_inferencer(path):
    from mmdet.apis import DetInferencer

    return DetInferencer(model=DET, weights=path, device='cpu', show_progress=False)


def _init_detector(path):
    from mmdet.apis import init_detector

    return init_detector(DET, path, device='cpu')


def _seg_inferencer(path):
    from mmseg.apis import MMSegInferencer

    return MMSegInferencer(model=SEG, weights=path, device='cpu')


def _init_segmentor(path):
    from mmseg.apis import init_model

    return init_model(SEG, path, device='cpu')


def _cls_inferencer(path):
    from mmpretrain.apis import ImageClassificationInferencer

    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return ImageClassificationInferencer(model=CLS, pretrained=path, device='cpu')


def _get_model(path):
    from mmpretrain.apis import get_model

    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return get_model(CLS, pretrained=path, device='cpu')


def _init_classifier(path):
    from mmpretrain.apis import init_model

    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return init_model(CLS, path, device='cpu')


APIS = [
    _det_inferencer,
    _init_detector,
    _seg_inferencer,
    _init_segmentor,
    _cls_inferencer,
    _get_model,
    _init_classifier,
]


@pytest.mark.slow
@pytest.mark.parametrize('api', APIS, ids=lambda f: f.__name__.strip('_'))
def test_upstream_apis_refuse_by_name(files, api):
    with pytest.raises(CheckpointMismatchError) as error:
        api(files['wrong'])
    assert f'checkpoint {files["wrong"]} does not fit the model: ' in str(error.value)
    assert '1 unexpected key(s) (not in the model): encoder.weight' in str(error.value)


def test_upstream_api_names_a_broken_file(files):
    # Every API reads through the same patched CheckpointLoader; one stands for all.
    with pytest.raises(CheckpointReadError, match=re.escape(f'{files["half"]} is not a readable')):
        _det_inferencer(files['half'])


def test_upstream_api_partial_load_is_explicit(files):
    with partial_checkpoint_loading():
        model = _init_classifier(files['headless'])
    good = torch.load(files['good'], weights_only=True)['state_dict']
    key = 'backbone.patch_embed.conv1.weight'
    assert torch.equal(model.state_dict()[key], good[key])


@pytest.mark.parametrize(
    'tool, argv',
    [
        ('test.py', [CLS, 'x.pth']),
        ('train.py', [CLS]),
        ('image_demo.py', [CLS, 'x.pth', 'image.png']),
        ('deploy/export_onnx.py', [CLS, 'x.pth', '--out', 'x.onnx']),
        ('convert_checkpoint.py', ['src.pth', 'dst.pth']),
    ],
)
def test_every_tool_takes_the_same_option(tool, argv):
    module = load_tool(tool)
    assert module.parse_args(argv).allow_partial is False
    assert module.parse_args([*argv, '--allow-partial']).allow_partial is True
