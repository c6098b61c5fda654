"""The exported GELU is the node pattern ONNX Runtime fuses into one ``Gelu`` kernel.

``internimage.deploy.export`` writes ``aten.gelu`` as ``(x * (1 + erf(x / sqrt 2))) * 0.5``
because that is the order ONNX Runtime's GeluFusion matches (torchlib's own order stays five
nodes). That is ONNX Runtime's behaviour, not a standard: this test fails when an ONNX
Runtime release stops fusing the pattern, so the translation can follow it.
"""

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from internimage.deploy import export_module


def test_onnx_runtime_fuses_the_exported_gelu(tmp_path):
    module = nn.Sequential(nn.Conv2d(3, 8, 1), nn.GELU()).eval()
    example = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    path = export_module(module, str(tmp_path / 'gelu.onnx'), example, ['y'])
    exported = [node.op_type for node in onnx.load(path).graph.node]
    assert 'Erf' in exported  # written as the erf formula, not as a Gelu node

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / 'optimized.onnx')
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    optimized = [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]
    assert 'Gelu' in optimized and 'Erf' not in optimized, (ort.__version__, optimized)

    [result] = session.run(None, {'image': example.numpy()})
    with torch.no_grad():
        expected = module(example).numpy()
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)
