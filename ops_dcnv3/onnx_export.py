"""ONNX translations of the DCNv3 and DCNv4 ops for ``torch.onnx.export(..., dynamo=True)``.

The compiled ops ``ops_dcnv3::dcnv3_forward`` and ``ops_dcnv3::dcnv4_forward`` have no ONNX
counterpart, so the exporter needs a translation for them (``custom_translation_table``,
:func:`dcnv3_translation_table`). Each translation takes its signature from the op's own
schema and hands the hyper-parameters on as one :class:`ops_dcnv3.DCNv3Params`; DCNv4's
packed ``offset_mask`` is first split into DCNv3's offset and mask (two ``Slice`` nodes; no
softmax), so both ops share one body per ``mode``. Three modes are provided:

- ``'gridsample'`` (default, runs in ONNX Runtime and OpenVINO): the op's own definition
  (:func:`ops_dcnv3.dcnv3_reference`) in standard operators: the sampling locations are built
  from the offsets, one ``GridSample`` (opset >= 16; bilinear, zeros outside,
  ``align_corners=0``) per call samples every group's points, and a weighted sum over the points
  with the (softmaxed) mask gives the output.
- ``'deformconv'`` (opset >= 19; ONNX Runtime only: OpenVINO's ONNX reader has no rule for
  ``DeformConv``): one standard ``DeformConv`` node with a depthwise all-ones weight
  (``group = channels``, ``offset_group = DCNv3 group``). Its points are row-major (y slowest)
  with (dy, dx) pairs while DCNv3's are x-slowest with (dx, dy) pairs, so the offsets and mask
  are permuted (and, with ``remove_center``, a zero centre point is inserted) by one ``Gather``;
  ``offset_scale`` s becomes ``offset * s + (s - 1) * grid_k``.
- ``'custom'``: one ``mmdeploy::TRTDCNv3`` node per call with the attributes of the official
  InternImage export, for runtimes that have that TensorRT plugin. The plugin takes a softmaxed
  mask, so a ``Softmax`` precedes the node when the op fuses it (``softmax_mask``).

Locations follow the reference: for output pixel p and point k, in pixel indices of the
zero-padded input, ``base(p) + (grid_k + offset) * offset_scale`` with
``base = (dilation*(kernel-1))//2 + p*stride``. Sampling the unpadded input at that location
minus ``pad`` with zeros outside is the same thing, so no ``Pad`` node is needed.
"""

import inspect
from typing import Callable, Dict, Tuple

import numpy as np
import torch

from .functional import DCNv3Params
from .reference import point_indices, sampling_points

__all__ = [
    'DCNV3_EXPORT_MODES',
    'DEFAULT_OPSET',
    'MIN_OPSET',
    'CUSTOM_DOMAIN',
    'CUSTOM_OP_TYPE',
    'check_export_opset',
    'TRANSLATED_OPS',
    'onnx_translation',
    'dcnv3_translation_table',
]

DCNV3_EXPORT_MODES = ('gridsample', 'deformconv', 'custom')
#: Lowest ONNX opset each mode can be written in (GridSample-16, DeformConv-19).
MIN_OPSET = {'gridsample': 16, 'deformconv': 19, 'custom': 16}
#: Opset used when none is given (torch's exporter implements aten ops in opset 18).
DEFAULT_OPSET = {'gridsample': 18, 'deformconv': 19, 'custom': 18}
#: Highest opset the installed onnx package and torch's exporter are known to write.
MAX_OPSET = 23

#: The compiled ops (``torch.ops.ops_dcnv3.<name>``) that have translations.
TRANSLATED_OPS = ('dcnv3_forward', 'dcnv4_forward')

CUSTOM_DOMAIN = 'mmdeploy'
CUSTOM_OP_TYPE = 'TRTDCNv3'
# What the official DCNv3 module passes (the plugin's batch chunking; no effect on results).
_CUSTOM_IM2COL_STEP = 256


def check_export_opset(mode: str, opset: int = None) -> int:
    """Validates ``mode`` and ``opset``; returns the opset to use (the mode's default for None).

    Raises:
        ValueError: unknown mode, or an opset outside ``[MIN_OPSET[mode], MAX_OPSET]``.
    """
    if mode not in DCNV3_EXPORT_MODES:
        raise ValueError(f'unknown DCNv3 export mode {mode!r}; choose one of {DCNV3_EXPORT_MODES}')
    if opset is None:
        return DEFAULT_OPSET[mode]
    if isinstance(opset, bool) or not isinstance(opset, int):
        raise TypeError(f'opset must be an int, got {opset!r}')
    if opset < MIN_OPSET[mode]:
        needs = {
            'gridsample': 'ONNX GridSample exists from opset 16',
            'deformconv': 'ONNX DeformConv exists from opset 19',
            'custom': 'the exported graph needs opset 16',
        }[mode]
        raise ValueError(
            f'opset {opset} is too old for DCNv3 mode {mode!r}: {needs}; '
            f'use opset {MIN_OPSET[mode]} or later'
        )
    if opset > MAX_OPSET:
        raise ValueError(f'opset {opset} is newer than supported ({MAX_OPSET})')
    return opset


def _opset_module(opset: int):
    """The onnxscript opset module for ``opset`` (the newest one it has, if not that one)."""
    import onnxscript

    for version in range(opset, 0, -1):
        module = getattr(onnxscript, f'opset{version}', None)
        if module is not None:
            return module
    raise RuntimeError(f'onnxscript has no opset module up to {opset}')


# ------------------------------------------------------------------ translations


def int_constant(op, values):
    """An int64 1-D ``Constant`` (a ``value`` tensor: onnx's version converter, used for
    opsets below 18, only understands that form)."""
    from onnxscript import ir

    return op.Constant(value=ir.tensor(np.asarray([int(v) for v in values], dtype=np.int64)))


def float_constant(op, values, like):
    """A 1-D float ``Constant`` cast like ``like``."""
    from onnxscript import ir

    array = np.asarray([float(v) for v in np.ravel(values)], dtype=np.float32)
    return op.CastLike(op.Constant(value=ir.tensor(array)), like)


def _gridsample_body(op, opset: int):
    mode = 'linear' if opset >= 20 else 'bilinear'  # GridSample-20 renamed the mode

    def dcnv3_gridsample(input, offset, mask, params: DCNv3Params):
        kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w = params[:8]
        group, group_channels, offset_scale = (
            params.group,
            params.group_channels,
            params.offset_scale,
        )
        grid_xy = sampling_points(
            kernel_h, kernel_w, dilation_h, dilation_w, params.remove_center
        ).numpy()
        num_points = len(grid_xy)

        def const_ints(values):
            return int_constant(op, values)

        def const_float(array):
            return float_constant(op, array, input)

        # Value: (N, H, W, G*Cg) -> (N*G, Cg, H, W).
        in_h = op.Shape(input, start=1, end=2)
        in_w = op.Shape(input, start=2, end=3)
        value = op.Reshape(input, const_ints([0, 0, 0, group, group_channels]))
        value = op.Transpose(value, perm=[0, 3, 4, 1, 2])
        value = op.Reshape(value, op.Concat(const_ints([-1, group_channels]), in_h, in_w, axis=0))

        # Sampling locations in pixels of the unpadded input, (x, y) last:
        # base(p) - pad + grid_k * s + offset * s, base = half + p * stride.
        out_h = op.Shape(offset, start=1, end=2)
        out_w = op.Shape(offset, start=2, end=3)
        half_w = (dilation_w * (kernel_w - 1)) // 2
        half_h = (dilation_h * (kernel_h - 1)) // 2
        zero, one = op.Squeeze(const_ints([0])), op.Squeeze(const_ints([1]))
        cols = op.CastLike(op.Range(zero, op.Squeeze(out_w), one), input)
        rows = op.CastLike(op.Range(zero, op.Squeeze(out_h), one), input)
        base_x = op.Add(op.Mul(cols, const_float([stride_w])), const_float([half_w - pad_w]))
        base_y = op.Add(op.Mul(rows, const_float([stride_h])), const_float([half_h - pad_h]))
        # (1, W_out, 1, 1, 2) * [1, 0] + (H_out, 1, 1, 1, 2) * [0, 1] -> (H_out, W_out, 1, 1, 2)
        base = op.Add(
            op.Mul(op.Reshape(base_x, const_ints([1, -1, 1, 1, 1])), const_float([1, 0])),
            op.Mul(op.Reshape(base_y, const_ints([-1, 1, 1, 1, 1])), const_float([0, 1])),
        )
        grid_k = op.Reshape(const_float(grid_xy * offset_scale), const_ints([num_points, 2]))
        locations = op.Add(base, grid_k)  # (H_out, W_out, 1, K, 2)
        # grid_sample(align_corners=0): normalised = (2*loc + 1) / size - 1, size = (W, H);
        # folded: grid = offset * (2s/size) + (loc_without_offset * 2/size + 1/size - 1).
        size = op.CastLike(op.Concat(in_w, in_h, axis=0), input)
        two_over_size = op.Div(const_float([2.0]), size)
        shift = op.Sub(op.Div(const_float([1.0]), size), const_float([1.0]))
        const_part = op.Add(op.Mul(locations, two_over_size), shift)
        offset = op.Reshape(offset, const_ints([0, 0, 0, group, num_points, 2]))
        offset_coef = op.Mul(two_over_size, const_float([offset_scale]))
        grid = op.Add(op.Mul(offset, offset_coef), const_part)  # (N, H_out, W_out, G, K, 2)
        # Points before rows, (N*G, K*H_out, W_out, 2): the sum over points then adds whole
        # (H_out, W_out) planes, which vectorises, instead of reducing an innermost axis of K.
        grid = op.Transpose(grid, perm=[0, 3, 4, 1, 2, 5])  # (N, G, K, H_out, W_out, 2)
        rows = op.Mul(out_h, const_ints([num_points]))
        grid = op.Reshape(grid, op.Concat(const_ints([-1]), rows, out_w, const_ints([2]), axis=0))
        sampled = op.GridSample(value, grid, mode=mode, padding_mode='zeros', align_corners=0)
        sampled = op.Reshape(
            sampled,
            op.Concat(const_ints([-1, group, group_channels, num_points]), out_h, out_w, axis=0),
        )  # (N, G, Cg, K, H_out, W_out)

        weights = op.Reshape(mask, const_ints([0, 0, 0, group, num_points]))
        weights = op.Transpose(weights, perm=[0, 3, 4, 1, 2])  # (N, G, K, H_out, W_out)
        if params.softmax_mask:
            weights = op.Softmax(weights, axis=2)
        weights = op.Unsqueeze(weights, const_ints([2]))  # (N, G, 1, K, H_out, W_out)
        output = op.ReduceSum(op.Mul(sampled, weights), const_ints([3]), keepdims=0)
        output = op.Transpose(output, perm=[0, 3, 4, 1, 2])  # (N, H_out, W_out, G, Cg)
        return op.Reshape(output, const_ints([0, 0, 0, -1]))

    return dcnv3_gridsample


def _deformconv_body(op, opset: int):
    def dcnv3_deformconv(input, offset, mask, params: DCNv3Params):
        kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w = params[:8]
        group, offset_scale = params.group, params.offset_scale
        points = point_indices(kernel_h, kernel_w, params.remove_center)
        num_points = len(points)
        channels = group * params.group_channels

        def const_ints(values):
            return int_constant(op, values)

        def const_float(array):
            return float_constant(op, array, input)

        out_hw = op.Shape(offset, start=1, end=3)
        x = op.Transpose(input, perm=[0, 3, 1, 2])  # (N, C, H, W)
        # DeformConv's kernel positions, row-major (y slowest).
        positions = [(i_x, i_y) for i_y in range(kernel_h) for i_x in range(kernel_w)]

        def to_deformconv_order(tensor, pair):
            # (N, H_out, W_out, G*K*pair) -> channels first, then one gather of whole
            # (H_out, W_out) planes puts DeformConv's positions in place of DCNv3's point
            # order, swaps (dx, dy) to (dy, dx) and, without the centre point, reads a zero
            # plane appended for it.
            tensor = op.Transpose(tensor, perm=[0, 3, 1, 2])
            shape = op.Concat(const_ints([0, group, num_points * pair]), out_hw, axis=0)
            tensor = op.Reshape(tensor, shape)  # (N, G, K*pair, H_out, W_out)
            if params.remove_center:
                tensor = op.Pad(tensor, const_ints([0, 0, 0, 0, 0, 0, 0, pair, 0, 0]))
            by_position = {position: k for k, position in enumerate(points)}
            index = [
                by_position.get(position, num_points) * pair + (pair - 1 - c)
                for position in positions
                for c in range(pair)
            ]
            return op.Gather(tensor, const_ints(index), axis=2)

        offset = to_deformconv_order(offset, 2)  # (N, G, kh*kw*2, H_out, W_out)
        if offset_scale != 1.0:
            # DeformConv samples at p*stride - pad + i*dilation + offset'; DCNv3 at
            # p*stride - pad + half + (grid_k + offset)*s, so offset' = offset*s + (s-1)*grid_k
            # (also shifting remove_center's zero-weight centre point: no effect).
            grid = sampling_points(kernel_h, kernel_w, dilation_h, dilation_w, False).tolist()
            grid_at = dict(zip(point_indices(kernel_h, kernel_w, False), grid))
            shift = [
                (offset_scale - 1) * value
                for position in positions
                for value in reversed(grid_at[position])  # (dy, dx)
            ]
            shift = op.Reshape(const_float(shift), const_ints([kernel_h * kernel_w * 2, 1, 1]))
            offset = op.Add(op.Mul(offset, const_float([offset_scale])), shift)
        offset = op.Reshape(offset, op.Concat(const_ints([0, -1]), out_hw, axis=0))

        weights = mask
        if params.softmax_mask:
            weights = op.Reshape(weights, const_ints([0, 0, 0, group, num_points]))
            weights = op.Softmax(weights, axis=-1)
            weights = op.Reshape(weights, const_ints([0, 0, 0, -1]))
        weights = to_deformconv_order(weights, 1)  # (N, G, kh*kw, H_out, W_out)
        weights = op.Reshape(weights, op.Concat(const_ints([0, -1]), out_hw, axis=0))

        kernel = op.Reshape(const_float([1.0]), const_ints([1, 1, 1, 1]))
        kernel = op.Expand(kernel, const_ints([channels, 1, kernel_h, kernel_w]))
        bias = op.Expand(const_float([0.0]), const_ints([channels]))
        output = op.DeformConv(
            x,
            kernel,
            offset,
            bias,
            weights,
            dilations=[dilation_h, dilation_w],
            group=channels,
            kernel_shape=[kernel_h, kernel_w],
            offset_group=group,
            pads=[pad_h, pad_w, pad_h, pad_w],
            strides=[stride_h, stride_w],
        )  # (N, C, H_out, W_out)
        return op.Transpose(output, perm=[0, 2, 3, 1])

    return dcnv3_deformconv


_CUSTOM_INT_ATTRIBUTES = (
    'kernel_h',
    'kernel_w',
    'stride_h',
    'stride_w',
    'pad_h',
    'pad_w',
    'dilation_h',
    'dilation_w',
    'group',
    'group_channels',
    'im2col_step',
    'remove_center',
)


def _register_custom_schema() -> None:
    """Declares ``mmdeploy::TRTDCNv3`` (version 1) to onnx, once per process.

    onnxscript builds nodes from onnx op schemas; the official op has none outside the
    TensorRT plugin, so its signature (inputs, attributes, float types) is registered here.
    """
    import onnx
    from onnx.defs import OpSchema

    if onnx.defs.has(CUSTOM_OP_TYPE, CUSTOM_DOMAIN):
        return
    attribute = OpSchema.Attribute
    schema = OpSchema(
        CUSTOM_OP_TYPE,
        CUSTOM_DOMAIN,
        1,
        doc='DCNv3 of the official InternImage export (TensorRT plugin of mmdeploy 1.x).',
        inputs=[
            OpSchema.FormalParameter('input', 'T'),
            OpSchema.FormalParameter('offset', 'T'),
            OpSchema.FormalParameter('mask', 'T'),
        ],
        outputs=[OpSchema.FormalParameter('output', 'T')],
        type_constraints=[('T', ['tensor(float)', 'tensor(float16)'], 'float tensors')],
        attributes=[attribute(name, OpSchema.AttrType.INT, '') for name in _CUSTOM_INT_ATTRIBUTES]
        + [attribute('offset_scale', OpSchema.AttrType.FLOAT, '')],
    )
    onnx.defs.register_schema(schema)


def _custom_body(op, opset: int):
    import onnxscript

    _register_custom_schema()
    custom = onnxscript.values.Opset(CUSTOM_DOMAIN, 1)

    def dcnv3_custom(input, offset, mask, params: DCNv3Params):
        if params.softmax_mask:
            # TRTDCNv3 takes point weights that are already softmax-normalised.
            num_points = params.kernel_h * params.kernel_w - int(params.remove_center)
            mask = op.Reshape(mask, int_constant(op, [0, 0, 0, params.group, num_points]))
            mask = op.Softmax(mask, axis=-1)
            mask = op.Reshape(mask, int_constant(op, [0, 0, 0, -1]))
        attributes = {name: int(getattr(params, name)) for name in _CUSTOM_INT_ATTRIBUTES[:10]}
        return getattr(custom, CUSTOM_OP_TYPE)(
            input,
            offset,
            mask,
            **attributes,
            offset_scale=float(params.offset_scale),
            im2col_step=_CUSTOM_IM2COL_STEP,
            remove_center=int(params.remove_center),
        )

    return dcnv3_custom


_BODIES = {
    'gridsample': _gridsample_body,
    'deformconv': _deformconv_body,
    'custom': _custom_body,
}


# ------------------------------------------------------------------ the ops' signatures

_ATTRIBUTE_TYPES = {'int': int, 'float': float, 'bool': bool}


def _schema_signature(op_name: str) -> inspect.Signature:
    """The Python signature of ``torch.ops.ops_dcnv3.<op_name>``'s schema.

    Tensors stay unannotated (the exporter makes them ONNX inputs); int, float and bool
    arguments are annotated with their type (the exporter passes them as Python values).
    The hyper-parameters must be :class:`ops_dcnv3.DCNv3Params`' fields in order (DCNv4
    without ``softmax_mask``): a mismatch means an extension built from other sources.
    """
    arguments = getattr(torch.ops.ops_dcnv3, op_name).default._schema.arguments
    parameters = [
        inspect.Parameter(
            arg.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=arg.default_value if arg.has_default_value() else inspect.Parameter.empty,
            annotation=_ATTRIBUTE_TYPES.get(str(arg.type), inspect.Parameter.empty),
        )
        for arg in arguments
    ]
    hyper = [p.name for p in parameters if p.annotation is not inspect.Parameter.empty]
    if hyper not in (list(DCNv3Params._fields), list(DCNv3Params._fields[:-1])):
        raise RuntimeError(
            f'ops_dcnv3::{op_name} has the hyper-parameters {hyper}, the ONNX translation '
            f'expects {list(DCNv3Params._fields)}: rebuild the extension '
            '(python setup.py build_ext --inplace)'
        )
    return inspect.Signature(parameters)


def _split_offset_mask(op, offset_mask, params: DCNv3Params) -> Tuple:
    """DCNv4's packed ``offset_mask`` (N, H_out, W_out, P) as DCNv3's ``(offset, mask)``:
    per group g at ``g*K*3`` the K (dx, dy) pairs, then the K weights; the rest is padding
    (see :func:`ops_dcnv3.unpack_offset_mask`)."""
    num_points = params.kernel_h * params.kernel_w - int(params.remove_center)

    def ints(*values):
        return int_constant(op, values)

    used = op.Slice(offset_mask, ints(0), ints(params.group * num_points * 3), ints(3))
    per_group = op.Reshape(used, ints(0, 0, 0, params.group, num_points * 3))
    offset = op.Slice(per_group, ints(0), ints(2 * num_points), ints(4))
    mask = op.Slice(per_group, ints(2 * num_points), ints(3 * num_points), ints(4))
    return op.Reshape(offset, ints(0, 0, 0, -1)), op.Reshape(mask, ints(0, 0, 0, -1))


def onnx_translation(
    op_name: str = 'dcnv3_forward', mode: str = 'gridsample', opset: int = None
) -> Callable:
    """The onnxscript (traced) translation of ``ops_dcnv3::<op_name>`` for ``mode``.

    Args:
        op_name (str): One of :data:`TRANSLATED_OPS`. Defaults to ``'dcnv3_forward'``.
        mode (str): ``'gridsample'``, ``'deformconv'`` or ``'custom'``. Defaults to
            ``'gridsample'``.
        opset (int, optional): ONNX opset; None: the mode's default.

    Returns:
        callable: A function with the op schema's signature (:func:`_schema_signature`).
    """
    if op_name not in TRANSLATED_OPS:
        raise ValueError(f'no ONNX translation for {op_name!r}; translated: {TRANSLATED_OPS}')
    opset = check_export_opset(mode, opset)
    op = _opset_module(opset)
    body = _BODIES[mode](op, opset)
    signature = _schema_signature(op_name)

    def translation(*args, **kwargs):
        values = signature.bind(*args, **kwargs)
        values.apply_defaults()
        values = values.arguments
        params = DCNv3Params(
            **{name: values[name] for name in DCNv3Params._fields[:-2]},
            remove_center=bool(values['remove_center']),
            softmax_mask=bool(values.get('softmax_mask', False)),
        )
        if 'offset_mask' in values:
            offset, mask = _split_offset_mask(op, values['offset_mask'], params)
        else:
            offset, mask = values['offset'], values['mask']
        return body(values['input'], offset, mask, params)

    translation.__signature__ = signature
    translation.__annotations__ = {
        p.name: p.annotation
        for p in signature.parameters.values()
        if p.annotation is not inspect.Parameter.empty
    }
    translation.__name__ = translation.__qualname__ = f'{op_name}_{mode}'
    return translation


def dcnv3_translation_table(mode: str = 'gridsample', opset: int = None) -> Dict:
    """``custom_translation_table`` for ``torch.onnx.export(dynamo=True)`` covering the
    compiled DCNv3 and DCNv4 ops (:data:`TRANSLATED_OPS`) in ``mode``."""
    return {
        getattr(torch.ops.ops_dcnv3, name).default: onnx_translation(name, mode, opset)
        for name in TRANSLATED_OPS
    }
