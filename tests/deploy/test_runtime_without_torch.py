"""tools/deploy/onnx_infer.py runs where PyTorch cannot be imported (the deploy-only install).

A subprocess blocks torch and the OpenMMLab packages on ``sys.meta_path`` and runs the tool
on a small hand-built ONNX classifier (mean of each input channel = its logit), so the
expected top class follows from the image's colour and the file's metadata.
"""

import json
import textwrap

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.tool_runs import run_tool

BLOCKED = ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain')

# Installs the blocker, runs the tool as __main__, then checks nothing blocked slipped in.
RUN_BLOCKED = textwrap.dedent(
    """
    import importlib.abc, runpy, sys

    BLOCKED = {blocked!r}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in BLOCKED:
                raise ModuleNotFoundError(f'{{name}} is blocked by the test', name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    sys.argv = {argv!r}
    try:
        runpy.run_path(sys.argv[0], run_name='__main__')
    except SystemExit as exit:
        assert not exit.code, exit.code
    loaded = sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED)
    assert not loaded, loaded
    try:
        import internimage
        internimage.InternImage
    except ImportError as error:
        print('models:', error)
    """
)


def _channel_mean_classifier(path: str) -> None:
    """(1, 3, 32, 32) image -> (1, 3) logits, each the mean of one channel."""
    graph = helper.make_graph(
        [
            helper.make_node('ReduceMean', ['image', 'axes'], ['pooled'], keepdims=0),
        ],
        'channel_mean',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info('pooled', TensorProto.FLOAT, [1, 3])],
        initializer=[helper.make_tensor('axes', TensorProto.INT64, [2], [2, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)])
    metadata = {
        'task': 'classification',
        'classes': ['red', 'green', 'blue'],
        'mean': [100.0, 100.0, 100.0],
        'std': [10.0, 10.0, 10.0],
        'channel_order': 'rgb',
        'input_size': [32, 32],
        'input_shape': [1, 3, 32, 32],
        'dynamic': False,
        'outputs': ['logits'],
    }
    helper.set_model_props(model, {k: json.dumps(v) for k, v in metadata.items()})
    onnx.checker.check_model(model)
    onnx.save(model, path)


@pytest.mark.parametrize('runtime', ['onnxruntime', 'openvino'])
def test_onnx_infer_runs_without_torch(tmp_path, runtime):
    model = str(tmp_path / 'channel_mean.onnx')
    _channel_mean_classifier(model)
    image = str(tmp_path / 'image.png')
    # BGR (10, 130, 105): RGB logits (105-100)/10, (130-100)/10, (10-100)/10 -> green first.
    cv2.imwrite(image, np.tile(np.array([10, 130, 105], np.uint8), (40, 48, 1)))
    argv = ['tools/deploy/onnx_infer.py', model, image, '--runtime', runtime, '--topk', '2']
    output = run_tool('-c', RUN_BLOCKED.format(blocked=BLOCKED, argv=argv), timeout=120)
    probs = np.exp([0.5, 3.0, -9.0]) / np.exp([0.5, 3.0, -9.0]).sum()
    assert f'1. green (1): {probs[1]:.4f}' in output, output
    assert f'2. red (0): {probs[0]:.4f}' in output, output
    assert 'models: internimage.InternImage needs PyTorch' in output, output
