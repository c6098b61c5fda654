"""tools/deploy: export_onnx.py errors (clear message, no file left), checkpoints and
metadata, and export -> onnx_infer.py as a user runs them."""

import os
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from internimage.deploy import DeployError, export_onnx, load_task_model, read_metadata
from tests.tool_runs import load_tool, run_tool

pytestmark = pytest.mark.needs_extension

ROOT = Path(__file__).resolve().parents[2]
CLS_TINY = 'configs/quickstart/internimage-tiny_quickstart_cls.py'
SEG_TINY = 'configs/quickstart/upernet_internimage-tiny_quickstart.py'


@pytest.fixture(scope='module')
def export_tool():
    return load_tool('deploy/export_onnx.py')


def _write_config(folder: Path, text: str) -> str:
    path = folder / 'config.py'
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    'extra, message',
    [
        (['--shape', '60', '64'], 'not divisible by 32'),
        (
            ['--dcnv3', 'deformconv', '--opset', '18'],
            "opset 18 is too old for DCNv3 mode 'deformconv'",
        ),
        (['--opset', '15'], 'GridSample exists from opset 16'),
        (['--seg-output', 'argmax'], '--seg-output applies to segmentation models'),
        # torch writes opset 18; InternImage's LayerNorm cannot be converted down to 16.
        (['--opset', '16'], 'LayerNormalization do(es) not exist in opset 16'),
    ],
)
def test_bad_options(export_tool, tmp_path, capsys, extra, message):
    out = tmp_path / 'out' / 'model.onnx'
    assert export_tool.main([CLS_TINY, 'none', '--out', str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.parent.exists() or os.listdir(out.parent) == []


def test_missing_checkpoint(export_tool, tmp_path, capsys):
    out = tmp_path / 'model.onnx'
    assert export_tool.main([CLS_TINY, str(tmp_path / 'nope.pth'), '--out', str(out)]) == 2
    assert 'checkpoint file not found' in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_unknown_task(export_tool, tmp_path, capsys):
    config = _write_config(tmp_path, "default_scope = 'mmocr'\nmodel = dict(type='DBNet')\n")
    assert export_tool.main([config, 'none', '--out', str(tmp_path / 'm.onnx')]) == 2
    assert "unknown task: the config default_scope is 'mmocr'" in capsys.readouterr().err


@pytest.mark.parametrize(
    'text, message',
    [
        (
            f"_base_ = '{ROOT / SEG_TINY}'\nmodel = dict(type='CascadeEncoderDecoder')\n",
            "unsupported segmentation model 'CascadeEncoderDecoder'",
        ),
        (f"_base_ = '{ROOT / CLS_TINY}'\nmodel = dict(head=None)\n", 'has no head'),
    ],
)
def test_unsupported_model(export_tool, tmp_path, capsys, text, message):
    config = _write_config(tmp_path, text)
    assert export_tool.main([config, 'none', '--out', str(tmp_path / 'm.onnx')]) == 2
    assert message in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ['config.py']


def test_failed_export_leaves_no_file(tmp_path, monkeypatch):
    def broken_check(*args, **kwargs):
        raise onnx.checker.ValidationError('injected failure')

    monkeypatch.setattr(onnx.checker, 'check_model', broken_check)
    with pytest.raises(onnx.checker.ValidationError, match='injected'):
        export_onnx(CLS_TINY, 'none', str(tmp_path / 'm.onnx'), shape=(64, 64))
    assert os.listdir(tmp_path) == []


def test_checkpoint_weights_and_classes(tmp_path):
    model, *_ = load_task_model(CLS_TINY, 'none')
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.01)
    classes = ['circle', 'square', 'triangle']
    checkpoint = tmp_path / 'epoch_1.pth'
    torch.save(
        {'state_dict': model.state_dict(), 'meta': {'dataset_meta': {'classes': classes}}},
        checkpoint,
    )
    loaded, *_ = load_task_model(CLS_TINY, str(checkpoint))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    path, *_ = export_onnx(CLS_TINY, str(checkpoint), str(tmp_path / 'm.onnx'), shape=(64, 64))
    meta = read_metadata(path)
    assert meta['classes'] == classes and meta['checkpoint'] == 'epoch_1.pth'
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)  # not left private by mkstemp

    # A checkpoint of another model is refused by name.
    seg, *_ = load_task_model(SEG_TINY, 'none')
    other = tmp_path / 'seg.pth'
    torch.save({'state_dict': seg.state_dict()}, other)
    with pytest.raises(DeployError, match=f'{other} does not fit the model: .* missing key'):
        load_task_model(CLS_TINY, str(other))


def _run(*args):
    return run_tool(*args, timeout=600)


@pytest.fixture(scope='module')
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp('img') / 'shapes.png'
    picture = np.full((90, 120, 3), 40, np.uint8)
    cv2.circle(picture, (60, 45), 25, (0, 0, 255), -1)
    cv2.imwrite(str(path), picture)
    return str(path)


@pytest.mark.slow
def test_classification_export_and_infer(tmp_path, image):
    out = tmp_path / 'cls.onnx'
    log = _run(
        'tools/deploy/export_onnx.py', CLS_TINY, 'none', '--out', str(out), '--shape', '64', '64',
        '--verify',
    )  # fmt: skip
    assert 'saved' in log and 'verify onnxruntime' in log and 'verify openvino' in log
    printed = _run('tools/deploy/onnx_infer.py', str(out), image)
    lines = [line for line in printed.splitlines() if line[:2] in ('1.', '2.', '3.')]
    assert len(lines) == 3  # three classes in the quick-start model


@pytest.mark.slow
def test_segmentation_export_and_infer(tmp_path, image):
    out = tmp_path / 'seg.onnx'
    _run(
        'tools/deploy/export_onnx.py', SEG_TINY, 'none', '--out', str(out), '--dynamic',
        '--shape', '64', '64', '--seg-output', 'argmax',
    )  # fmt: skip
    colour = tmp_path / 'seg.png'
    for runtime in ('onnxruntime', 'openvino'):
        printed = _run(
            'tools/deploy/onnx_infer.py', str(out), image, '--out', str(colour),
            '--runtime', runtime,
        )  # fmt: skip
        assert 'saved' in printed
        written = cv2.imread(str(colour))
        assert written.shape == (90, 120, 3)
