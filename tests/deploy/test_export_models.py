"""Whole models exported to ONNX and run in ONNX Runtime and OpenVINO against PyTorch eager.

InternImage-T classifier and UperNet-T (random weights, small inputs), tiny H-style and
L-style archs (every DCNv3/backbone feature: dw_kernel_size 5, center_feature_scale,
res_post_norm, level-2 post norms, the attention-pooling head; offset_scale 2, post_norm,
layer scale); the whole detector is in test_export_detector.py. DCNv3 offsets/masks, gates
and layer scales are randomised first (ops_dcnv3.testing.randomise_parameters): the default
init would hide mapping bugs.
Max relative difference (max|a-b| / max|b|) must stay <= 1e-4 in float32.
"""

import numpy as np
import onnx
import pytest
import torch

from internimage.deploy import export_task_model, load_task_model, read_metadata, wrap_for_export
from internimage.deploy.runtime import (
    compare_outputs,
    openvino_model,
    ort_session,
    run_openvino,
    run_ort,
)
from ops_dcnv3 import DCNv3
from ops_dcnv3.onnx_export import CUSTOM_DOMAIN, CUSTOM_OP_TYPE
from ops_dcnv3.testing import randomise_parameters

pytestmark = [pytest.mark.needs_extension, pytest.mark.slow]

TOLERANCE = 1e-4
CLS_T = 'configs/classification/internimage-t_8xb128_in1k.py'
SEG_T = 'configs/segmentation/internimage-t_upernet_8xb2-160k_ade20k-512x512.py'
CLS_TINY = 'configs/quickstart/internimage-tiny_quickstart_cls.py'
CLS_FLASH_TINY = 'configs/quickstart/flash-internimage-tiny_quickstart_cls.py'
TINY = dict(channels=32, depths=[1, 1, 2, 1], groups=[2, 4, 8, 16])
H_STYLE = dict(
    TINY,
    dw_kernel_size=5,
    center_feature_scale=True,
    res_post_norm=True,
    level2_post_norm_block_ids=[0, 1],
)
L_STYLE = dict(TINY, offset_scale=2.0, post_norm=True, layer_scale=1e-5)


def _build(config, cfg_options=None, seed=0):
    model, cfg, task, info = load_task_model(config, 'none', cfg_options)
    randomise_parameters(model, seed=seed)
    return model, task, info


def _expected(model, task, image, seg_output='logits'):
    with torch.no_grad():
        out = wrap_for_export(model, task, seg_output)(image)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def _check_runtimes(path, model, task, inputs, openvino=True):
    ort = ort_session(path)
    compiled = openvino_model(path) if openvino else None
    for batch, height, width in inputs:
        image = torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(7))
        expected = _expected(model, task, image)
        errors = compare_outputs(run_ort(ort, image.numpy()), expected)
        assert max(errors) <= TOLERANCE, ('onnxruntime', batch, height, width, errors)
        if compiled is not None:
            errors = compare_outputs(run_openvino(compiled, image.numpy()), expected)
            assert max(errors) <= TOLERANCE, ('openvino', batch, height, width, errors)


def _check_graph(path, mode='gridsample'):
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path)
    domains = {node.domain for node in model.graph.node}
    if mode == 'custom':
        assert domains <= {'', CUSTOM_DOMAIN}
    else:
        assert domains <= {''}, domains
        assert not model.functions
    return model


def test_internimage_t_classifier_dynamic(tmp_path):
    model, task, info = _build(CLS_T)
    path = export_task_model(
        model, task, str(tmp_path / 't.onnx'), shape=(64, 64), dynamic=True, info=info
    )
    _check_graph(path)
    meta = read_metadata(path)
    assert meta['task'] == 'classification' and len(meta['classes']) == 1000
    assert meta['mean'] == [123.675, 116.28, 103.53] and meta['channel_order'] == 'rgb'
    # batch 1 and 3, two input sizes, one file
    _check_runtimes(path, model, task, [(1, 64, 64), (3, 96, 64)])


def test_upernet_t_dynamic(tmp_path):
    model, task, info = _build(SEG_T)
    path = export_task_model(
        model, task, str(tmp_path / 'seg.onnx'), shape=(64, 64), dynamic=True, info=info
    )
    _check_graph(path)
    assert read_metadata(path)['outputs'] == ['seg_logits']
    # 96 is not a multiple of the example size: the pyramid pooling must follow the input.
    _check_runtimes(path, model, task, [(1, 64, 64), (3, 96, 64)])


def test_segmentation_argmax_output(tmp_path):
    model, task, info = _build('configs/quickstart/upernet_internimage-tiny_quickstart.py')
    path = export_task_model(
        model, task, str(tmp_path / 'seg.onnx'), shape=(64, 96), seg_output='argmax', info=info
    )
    image = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    [expected] = _expected(model, task, image, 'argmax')
    [labels] = run_ort(ort_session(path), image.numpy())
    assert labels.shape == (1, 64, 96) and labels.dtype == np.int64
    assert np.mean(labels != expected) < 1e-3  # ties aside, the same label map


@pytest.mark.parametrize(
    'name, arch, head',
    [
        pytest.param(
            'h_style',
            H_STYLE,
            dict(
                _delete_=True,
                type='InternImageAttnPoolClsHead',
                num_classes=3,
                in_channels=256,
                embed_dim=64,
                num_heads=4,
                out_dim=32,
            ),
            id='h_style',
        ),
        pytest.param('l_style', L_STYLE, None, id='l_style'),
    ],
)
def test_arch_variants(tmp_path, name, arch, head):
    options = {'model.backbone.arch': arch}
    if head is not None:
        options['model.backbone.out_indices'] = (2, 3)
        options['model.head'] = head
    model, task, info = _build(CLS_TINY, options, seed=1)
    path = export_task_model(model, task, str(tmp_path / f'{name}.onnx'), shape=(64, 64))
    _check_graph(path)
    _check_runtimes(path, model, task, [(1, 64, 64)])
    # The ONNX Runtime-only DeformConv form of the same model.
    path = export_task_model(
        model, task, str(tmp_path / f'{name}_dc.onnx'), shape=(64, 64), mode='deformconv'
    )
    _check_graph(path, 'deformconv')
    _check_runtimes(path, model, task, [(1, 64, 64)], openvino=False)


def test_custom_mode_graph(tmp_path):
    model, task, info = _build(CLS_TINY, {'model.backbone.arch': H_STYLE}, seed=2)
    path = export_task_model(
        model, task, str(tmp_path / 'custom.onnx'), shape=(64, 64), mode='custom'
    )
    graph = _check_graph(path, 'custom').graph
    dcn_modules = [m for m in model.modules() if isinstance(m, DCNv3)]
    nodes = [n for n in graph.node if n.domain == CUSTOM_DOMAIN]
    assert len(nodes) == len(dcn_modules) == sum(TINY['depths'])
    assert {n.op_type for n in nodes} == {CUSTOM_OP_TYPE}
    groups = []
    for node in nodes:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attributes['kernel_h'] == attributes['kernel_w'] == 3
        assert attributes['pad_h'] == attributes['pad_w'] == 1
        assert attributes['group_channels'] == 16 and attributes['im2col_step'] == 256
        assert attributes['offset_scale'] == 1.0 and attributes['remove_center'] == 0
        groups.append(attributes['group'])
    assert sorted(groups) == sorted(m.group for m in dcn_modules)
    # One explicit softmax per call (the official plugin takes normalised weights).
    assert sum(n.op_type == 'Softmax' for n in graph.node) == len(nodes)
    assert read_metadata(path)['dcnv3_mode'] == 'custom'


def test_flash_internimage_classifier_dynamic(tmp_path):
    """FlashInternImage (DCNv4) in the GridSample form, in both runtimes."""
    torch.manual_seed(0)  # the layers randomise_parameters leaves at their init
    model, task, info = _build(CLS_FLASH_TINY, seed=3)
    path = export_task_model(
        model, task, str(tmp_path / 'flash.onnx'), shape=(64, 64), dynamic=True, info=info
    )
    graph = _check_graph(path).graph
    assert 'GridSample' in {n.op_type for n in graph.node}
    _check_runtimes(path, model, task, [(1, 64, 64), (2, 96, 64)])
