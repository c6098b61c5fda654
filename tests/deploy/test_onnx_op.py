"""The DCNv3 and DCNv4 ops' ONNX translations (ops_dcnv3.onnx_export) against
dcnv3_reference / dcnv4_reference.

Each case exports a module calling ``ops_dcnv3::dcnv3_forward`` (or ``dcnv4_forward``) with
``torch.onnx.export(dynamo=True)`` and runs the file: ``gridsample`` in ONNX Runtime and
OpenVINO, ``deformconv`` in ONNX Runtime; ``custom`` is checked by reading the graph.
Offsets reach past the image border, so the zero padding is exercised too.
"""

import onnx
import pytest
import torch

from internimage.deploy.runtime import max_relative_error, openvino_model, ort_session
from ops_dcnv3 import dcnv3_reference, dcnv4_reference, pack_offset_mask
from ops_dcnv3.onnx_export import (
    CUSTOM_DOMAIN,
    CUSTOM_OP_TYPE,
    check_export_opset,
    dcnv3_translation_table,
)

pytestmark = pytest.mark.needs_extension

TOLERANCE = 1e-4

# (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, group,
#  group_channels, offset_scale, remove_center, softmax_mask)
CASES = {
    'default': (3, 3, 1, 1, 1, 1, 1, 1, 2, 8, 1.0, False, False),
    'softmax_mask': (3, 3, 1, 1, 1, 1, 1, 1, 2, 8, 1.0, False, True),
    'stride2': (3, 3, 2, 2, 1, 1, 1, 1, 2, 8, 1.0, False, True),
    'dilation2': (3, 3, 1, 1, 2, 2, 2, 2, 2, 8, 1.0, False, False),
    'non_square': (3, 5, 1, 1, 1, 2, 1, 1, 2, 8, 1.0, False, True),
    'remove_center': (3, 3, 1, 1, 1, 1, 1, 1, 2, 8, 1.0, True, True),
    'pad0': (3, 3, 1, 1, 0, 0, 1, 1, 2, 8, 1.0, False, False),
    'offset_scale2': (3, 3, 1, 1, 1, 1, 1, 1, 3, 4, 2.0, False, True),
    'even_kernel_scale_half': (2, 4, 1, 1, 0, 1, 1, 1, 2, 8, 0.5, False, False),
    'mixed': (5, 3, 1, 2, 2, 1, 2, 1, 2, 8, 1.5, True, True),
}


def _keywords(case):
    """The case as the references' keyword arguments (softmax_mask aside: DCNv4 has none)."""
    kh, kw, sh, sw, ph, pw, dh, dw, group, _, scale, remove_center, _ = case
    return dict(
        kernel_size=(kh, kw),
        stride=(sh, sw),
        padding=(ph, pw),
        dilation=(dh, dw),
        group=group,
        offset_scale=scale,
        remove_center=remove_center,
    )


def _reference(input, offset, mask, case):
    return dcnv3_reference(input, offset, mask, softmax_mask=case[-1], **_keywords(case))


class _Op(torch.nn.Module):
    def __init__(self, case):
        super().__init__()
        self.args = list(case)

    def forward(self, input, offset, mask):
        return torch.ops.ops_dcnv3.dcnv3_forward(input, offset, mask, *self.args)


class _DCNv4Op(torch.nn.Module):
    """``dcnv4_forward`` on the case's hyper-parameters (DCNv4 has no softmax_mask)."""

    def __init__(self, case):
        super().__init__()
        self.args = list(case[:-1])

    def forward(self, input, offset_mask):
        return torch.ops.ops_dcnv3.dcnv4_forward(input, offset_mask, *self.args)


def _inputs(case, batch=2, height=7, width=9, seed=0):
    kh, kw, sh, sw, ph, pw, dh, dw, group, channels, _, remove_center, softmax = case
    points = kh * kw - int(remove_center)
    out_h = (height + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    out_w = (width + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    generator = torch.Generator().manual_seed(seed)
    input = torch.randn(batch, height, width, group * channels, generator=generator)
    offset = (torch.rand(batch, out_h, out_w, group * points * 2, generator=generator) * 2 - 1) * 3
    mask = torch.randn(batch, out_h, out_w, group, points, generator=generator)
    if not softmax:
        mask = mask.softmax(-1)
    return input, offset, mask.flatten(3)


def _dcnv4_inputs(case, seed=0):
    """(input, offset_mask): DCNv3 inputs packed, the padding filled with values the op must
    ignore; weights not normalised (DCNv4 applies no softmax)."""
    input, offset, mask = _inputs(case, seed=seed)
    packed = pack_offset_mask(offset, mask * 3, case[8])
    packed[..., offset.shape[-1] + mask.shape[-1] :] = 7.0
    return input, packed


def _dcnv4_reference(input, offset_mask, case):
    return dcnv4_reference(input, offset_mask, **_keywords(case))


def _export(case, mode, opset=None, dynamic=False, dcnv4=False):
    opset = check_export_opset(mode, opset)
    module = _DCNv4Op(case) if dcnv4 else _Op(case)
    example = _dcnv4_inputs(case) if dcnv4 else _inputs(case)
    shapes = None
    if dynamic:
        dims = {0: 'batch', 1: 'height', 2: 'width'}
        names = ('input', 'offset_mask') if dcnv4 else ('input', 'offset', 'mask')
        shapes = {name: dims for name in names}
    program = torch.onnx.export(
        module.eval(),
        example,
        dynamo=True,
        opset_version=opset,
        dynamic_shapes=shapes,
        custom_translation_table=dcnv3_translation_table(mode, opset),
        verbose=False,
    )
    model = program.model_proto
    onnx.checker.check_model(model, full_check=True)
    return model


def _feed(model_or_session, tensors):
    names = [i.name for i in model_or_session.get_inputs()]
    return dict(zip(names, (t.numpy() for t in tensors)))


def _run_ort(model, tensors):
    session = ort_session(model.SerializeToString())
    return session.run(None, _feed(session, tensors))[0]


def _assert_standard(model):
    domains = {node.domain for node in model.graph.node}
    assert domains <= {''}, domains
    assert not model.functions


def _check_both_runtimes(model, tensors, expected, tmp_path):
    """The file's output within TOLERANCE of ``expected`` in ONNX Runtime and OpenVINO."""
    assert max_relative_error(_run_ort(model, tensors), expected) <= TOLERANCE
    path = str(tmp_path / 'op.onnx')
    onnx.save(model, path)
    compiled = openvino_model(path)
    result = compiled([t.numpy() for t in tensors])[compiled.outputs[0]]
    assert max_relative_error(result, expected) <= TOLERANCE


@pytest.mark.parametrize('name', list(CASES))
def test_gridsample_matches_reference(name, tmp_path):
    case = CASES[name]
    model = _export(case, 'gridsample')
    _assert_standard(model)
    assert 'GridSample' in {n.op_type for n in model.graph.node}
    tensors = _inputs(case, seed=1)
    _check_both_runtimes(model, tensors, _reference(*tensors, case).numpy(), tmp_path)


@pytest.mark.parametrize('name', list(CASES))
def test_deformconv_matches_reference(name):
    case = CASES[name]
    model = _export(case, 'deformconv')
    _assert_standard(model)
    assert [n.op_type for n in model.graph.node].count('DeformConv') == 1
    tensors = _inputs(case, seed=2)
    expected = _reference(*tensors, case).numpy()
    assert max_relative_error(_run_ort(model, tensors), expected) <= TOLERANCE


# DCNv4: no softmax (the cases' softmax_mask is dropped); the other hyper-parameters vary.
DCNV4_CASES = ['default', 'stride2', 'remove_center', 'offset_scale2', 'mixed']


@pytest.mark.parametrize('name', DCNV4_CASES)
def test_dcnv4_gridsample_matches_reference(name, tmp_path):
    case = CASES[name]
    model = _export(case, 'gridsample', dcnv4=True)
    _assert_standard(model)
    assert 'Softmax' not in {n.op_type for n in model.graph.node}
    tensors = _dcnv4_inputs(case, seed=5)
    _check_both_runtimes(model, tensors, _dcnv4_reference(*tensors, case).numpy(), tmp_path)


@pytest.mark.parametrize('name', ['remove_center', 'mixed'])
def test_dcnv4_deformconv_matches_reference(name):
    case = CASES[name]
    model = _export(case, 'deformconv', dcnv4=True)
    _assert_standard(model)
    tensors = _dcnv4_inputs(case, seed=6)
    expected = _dcnv4_reference(*tensors, case).numpy()
    assert max_relative_error(_run_ort(model, tensors), expected) <= TOLERANCE


def test_dcnv4_dynamic_shapes():
    case = CASES['stride2']
    model = _export(case, 'gridsample', dynamic=True, dcnv4=True)
    session = ort_session(model.SerializeToString())
    for batch, height, width in ((1, 7, 9), (3, 12, 5)):
        input, offset, mask = _inputs(case, batch, height, width, seed=7)
        tensors = (input, pack_offset_mask(offset, mask, case[8]))
        result = session.run(None, _feed(session, tensors))[0]
        assert max_relative_error(result, _dcnv4_reference(*tensors, case).numpy()) <= TOLERANCE


def test_dcnv4_custom_node_takes_unpacked_weights():
    case = CASES['mixed']
    model = _export(case, 'custom', dcnv4=True)
    nodes = [n.op_type for n in model.graph.node]
    assert nodes.count(CUSTOM_OP_TYPE) == 1
    assert 'Softmax' not in nodes  # DCNv4 weights are used as they are


@pytest.mark.parametrize('name', ['default', 'remove_center', 'mixed'])
def test_custom_node_has_official_attributes(name):
    case = CASES[name]
    kh, kw, sh, sw, ph, pw, dh, dw, group, channels, scale, remove_center, softmax = case
    model = _export(case, 'custom')
    custom = [n for n in model.graph.node if n.domain == CUSTOM_DOMAIN]
    assert len(custom) == 1
    node = custom[0]
    assert node.op_type == CUSTOM_OP_TYPE
    assert len(node.input) == 3
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attributes == pytest.approx(
        dict(
            kernel_h=kh,
            kernel_w=kw,
            stride_h=sh,
            stride_w=sw,
            pad_h=ph,
            pad_w=pw,
            dilation_h=dh,
            dilation_w=dw,
            group=group,
            group_channels=channels,
            offset_scale=scale,
            im2col_step=256,
            remove_center=int(remove_center),
        )
    )
    assert {a.name: a.type for a in node.attribute}['offset_scale'] == onnx.AttributeProto.FLOAT
    # The plugin takes softmaxed weights: the fused softmax becomes an explicit node.
    softmax_nodes = [n for n in model.graph.node if n.op_type == 'Softmax']
    assert len(softmax_nodes) == int(softmax)
    assert {n.domain for n in model.graph.node} <= {'', CUSTOM_DOMAIN}
    assert any(o.domain == CUSTOM_DOMAIN for o in model.opset_import)


@pytest.mark.parametrize('mode', ['gridsample', 'deformconv'])
def test_dynamic_shapes(mode):
    case = CASES['stride2']
    model = _export(case, mode, dynamic=True)
    session = ort_session(model.SerializeToString())
    for batch, height, width in ((1, 7, 9), (3, 12, 5)):
        tensors = _inputs(case, batch, height, width, seed=3)
        result = session.run(None, _feed(session, tensors))[0]
        assert max_relative_error(result, _reference(*tensors, case).numpy()) <= TOLERANCE


@pytest.mark.parametrize('opset', [16, 20])
def test_gridsample_other_opsets(opset):
    case = CASES['mixed']
    model = _export(case, 'gridsample', opset=opset)
    assert next(o.version for o in model.opset_import if o.domain == '') == opset
    tensors = _inputs(case, seed=4)
    assert max_relative_error(_run_ort(model, tensors), _reference(*tensors, case).numpy()) <= 1e-4


def test_opset_checks():
    assert check_export_opset('gridsample') == 18
    assert check_export_opset('deformconv') == 19
    assert check_export_opset('custom', 17) == 17
    with pytest.raises(ValueError, match="opset 18 is too old for DCNv3 mode 'deformconv'"):
        check_export_opset('deformconv', 18)
    with pytest.raises(ValueError, match='GridSample exists from opset 16'):
        check_export_opset('gridsample', 15)
    with pytest.raises(ValueError, match='unknown DCNv3 export mode'):
        check_export_opset('bilinear')
