"""InternImage models of the three tasks as plain ONNX files.

:func:`load_task_model` builds a config's model (random init or a checkpoint), and
:func:`export_task_model` wraps it for its task and writes the ``.onnx`` file with torch's
``torch.export``-based exporter, the DCNv3 op translated by :mod:`ops_dcnv3.onnx_export`:

- classification (mmpretrain ``ImageClassifier``): normalised image in, logits out;
- segmentation (mmseg ``EncoderDecoder``, e.g. UperNet): normalised image in, per-pixel class
  logits at the input size (or, with ``seg_output='argmax'``, the label map) out;
- detection (mmdet Mask R-CNN, Cascade Mask R-CNN): normalised image in, the whole detector
  out: ``dets``, ``labels``, ``masks`` (:mod:`.detector`).

Preprocessing stays outside the graph, as in OpenMMLab's own deploy tools: the file's
``metadata_props`` record what a caller needs (task, classes, palette, mean, std, channel
order, input size, outputs), read back by :func:`read_metadata`. Files are written to a
temporary name in the target folder and renamed when complete, so a failed export leaves no
partial ``.onnx`` behind.
"""

import json
import math
import os
import os.path as osp
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ops_dcnv3.onnx_export import (
    check_export_opset,
    dcnv3_translation_table,
    float_constant,
    int_constant,
)

from ..apis.runner import TASK_SCOPES
from ..checkpoint import load_model_checkpoint
from .detector import DETECTOR_TYPES, MaskDetectorForExport, check_mask_detector_config
from .detector import OUTPUT_NAMES as DETECTOR_OUTPUTS
from .detector import translation_table as detector_translation_table
from .errors import DeployError
from .runtime import read_metadata  # noqa: F401 (one definition, re-exported here)

__all__ = [
    'DeployError',
    'TASKS',
    'SUPPORTED_MODELS',
    'ClassifierForExport',
    'SegmentorForExport',
    'MaskDetectorForExport',
    'load_task_model',
    'wrap_for_export',
    'export_module',
    'export_task_model',
    'export_onnx',
    'read_metadata',
    'default_input_shape',
    'check_export_options',
]

#: default_scope -> task: the tools' table (one table for training, testing and export).
TASKS = TASK_SCOPES
#: Model types each task can export (config ``model.type``).
SUPPORTED_MODELS = {
    'classification': ('ImageClassifier',),
    'segmentation': ('EncoderDecoder',),
    'detection': tuple(DETECTOR_TYPES),
}
_STRIDE = 32  # the backbone's total stride: inputs must be multiples of it


# ------------------------------------------------------------------ task wrappers


class ClassifierForExport(nn.Module):
    """mmpretrain ``ImageClassifier``: (N, 3, H, W) normalised image -> (N, classes) logits,
    its own ``forward(mode='tensor')`` (the exporter takes a one-argument forward)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image, mode='tensor')


class SegmentorForExport(nn.Module):
    """mmseg ``EncoderDecoder``: image -> (N, classes, H, W) logits or (N, H, W) labels.

    The decode head's logits are resized to the input size as mmseg's inference does
    (bilinear, the head's ``align_corners``); ``output='argmax'`` returns the label map
    (int64; one-channel heads threshold the sigmoid like mmseg).
    """

    def __init__(self, model: nn.Module, output: str = 'logits') -> None:
        super().__init__()
        if output not in ('logits', 'argmax'):
            raise DeployError(f"seg output must be 'logits' or 'argmax', got {output!r}")
        self.model = model
        self.output = output

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        head = self.model.decode_head
        logits = head.forward(self.model.extract_feat(image))
        logits = F.interpolate(
            logits, size=image.shape[2:], mode='bilinear', align_corners=head.align_corners
        )
        if self.output == 'logits':
            return logits
        if logits.shape[1] == 1:
            return (logits.sigmoid() > head.threshold).squeeze(1).long()
        return logits.argmax(dim=1)


# ------------------------------------------------------------------ config and model


def _task_of(cfg) -> str:
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise DeployError(
            f'unknown task: the config default_scope is {scope!r}; export supports '
            + ', '.join(f'{s} ({t})' for s, t in TASKS.items())
        )
    return TASKS[scope]


def _check_supported(cfg, task: str) -> None:
    if task == 'detection':
        check_mask_detector_config(cfg.model)
        return
    model_type = cfg.model.get('type')
    if model_type not in SUPPORTED_MODELS[task]:
        raise DeployError(
            f'unsupported {task} model {model_type!r}: export supports '
            f'{", ".join(SUPPORTED_MODELS[task])}'
        )
    if task == 'classification' and not cfg.model.get('head'):
        raise DeployError('unsupported classifier: the config has no head (model.head) to export')
    if task == 'segmentation' and isinstance(cfg.model.get('decode_head'), (list, tuple)):
        raise DeployError(
            'unsupported segmentation head: a list of decode heads (cascade) cannot be exported'
        )


def _data_preprocessor(cfg) -> dict:
    return dict(cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {})


def _dataset_meta(cfg, checkpoint_meta: dict) -> dict:
    """classes / palette: the checkpoint's dataset_meta, else the config's test dataset."""
    from mmengine.registry import DATASETS

    meta = dict(checkpoint_meta.get('dataset_meta') or {})
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader') or {}
    dataset = dict(loader.get('dataset') or {})
    for key, value in dict(dataset.get('metainfo') or {}).items():
        meta.setdefault(key, value)
    if 'classes' not in meta and dataset.get('type'):
        try:
            dataset_cls = DATASETS.get(f'{cfg.default_scope}.{dataset["type"]}')
        except Exception:  # unknown type: no names
            dataset_cls = None
        for key, value in dict(getattr(dataset_cls, 'METAINFO', None) or {}).items():
            meta.setdefault(key, value)
    return meta


def load_task_model(
    config: str, checkpoint: Optional[str] = 'none', cfg_options=None, allow_partial: bool = False
):
    """Builds the model of ``config`` in eval mode on the CPU.

    Not mmdet's ``init_detector`` / mmseg's ``init_model`` / mmpretrain's ``get_model``: they
    load checkpoints with ``strict=False`` and only log missing or mismatched weights, where
    an export must refuse them (:func:`_load_weights`); the model is built as they build it.

    Args:
        config (str): Config file (task from its ``default_scope``).
        checkpoint (str, optional): Checkpoint file, or ``'none'`` / None for random init
            (no pre-trained weights are downloaded either way).
        cfg_options (dict, optional): Config overrides (``Config.merge_from_dict``).
        allow_partial (bool): Load a checkpoint that does not fit the model exactly (the
            matching keys; the rest is logged). Defaults to False: refused.

    Returns:
        tuple: ``(model, cfg, task, info)`` with ``info`` holding the metadata export
        records (classes, palette, mean, std, channel order, config name).

    Raises:
        DeployError: missing config or checkpoint file, unknown task, unsupported model,
            checkpoint that does not fit the config.
    """
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope

    if not osp.isfile(config):
        raise DeployError(f'config file not found: {config}')
    use_checkpoint = checkpoint is not None and str(checkpoint).lower() != 'none'
    if use_checkpoint and not osp.exists(checkpoint):
        raise DeployError(f"checkpoint file not found: {checkpoint} (pass 'none' for random init)")
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    task = _task_of(cfg)
    _check_supported(cfg, task)
    init_default_scope(cfg.default_scope)

    model_cfg = cfg.model.copy()
    # Weights come from CHECKPOINT (or stay random): never download pre-trained ones.
    if model_cfg.get('backbone') is not None:
        model_cfg.backbone['init_cfg'] = None
    if 'pretrained' in model_cfg:
        model_cfg['pretrained'] = None
    if 'train_cfg' in model_cfg:  # inference only, as init_detector / init_model build it
        model_cfg['train_cfg'] = None
    if task == 'classification' and 'data_preprocessor' not in model_cfg:
        model_cfg['data_preprocessor'] = cfg.get('data_preprocessor')
    model = MODELS.build(model_cfg)  # mmengine's root registry, in the task's default scope
    model = revert_sync_batchnorm(model)  # SyncBN needs a process group; eval BN is the same

    checkpoint_meta: Dict[str, Any] = {}
    if use_checkpoint:
        checkpoint_meta = _load_weights(model, checkpoint, allow_partial)
    model.eval()

    info = _model_info(cfg, task, model, checkpoint_meta)
    info['config'] = osp.basename(config)
    info['checkpoint'] = osp.basename(checkpoint) if use_checkpoint else 'none'
    return model, cfg, task, info


def _load_weights(model: nn.Module, checkpoint: str, allow_partial: bool) -> dict:
    """Load ``checkpoint`` into the whole model (refused unless it fits; see
    :func:`~internimage.checkpoint.load_model_checkpoint`); returns its ``meta``."""
    try:
        contents = load_model_checkpoint(model, checkpoint, allow_partial=allow_partial)
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise DeployError(str(error)) from error
    meta = contents.get('meta')
    return dict(meta) if isinstance(meta, dict) else {}


def _model_info(cfg, task: str, model: nn.Module, checkpoint_meta: dict) -> dict:
    preprocessor = _data_preprocessor(cfg)
    meta = _dataset_meta(cfg, checkpoint_meta)
    info: Dict[str, Any] = {'task': task}
    if preprocessor.get('mean') is not None:
        info['mean'] = [float(v) for v in preprocessor['mean']]
    if preprocessor.get('std') is not None:
        info['std'] = [float(v) for v in preprocessor['std']]
    to_rgb = preprocessor.get('to_rgb', preprocessor.get('bgr_to_rgb', False))
    info['channel_order'] = 'rgb' if to_rgb else 'bgr'
    num_classes = None
    if task == 'classification':
        num_classes = getattr(model.head, 'num_classes', None)
    elif task == 'segmentation':
        num_classes = getattr(model.decode_head, 'num_classes', None)
    elif getattr(model, 'with_roi_head', False) or getattr(model, 'bbox_head', None) is not None:
        head = getattr(model, 'bbox_head', None) or model.roi_head.bbox_head
        heads = head if isinstance(head, (list, nn.ModuleList)) else [head]
        num_classes = getattr(heads[-1], 'num_classes', None)
    classes = list(meta.get('classes') or [])
    if num_classes is not None and len(classes) != num_classes:
        classes = [f'class_{i}' for i in range(num_classes)]
    if classes:
        info['classes'] = [str(c) for c in classes]
    if task == 'segmentation' and meta.get('palette') and len(meta['palette']) >= len(classes):
        info['palette'] = [[int(v) for v in color] for color in meta['palette'][: len(classes)]]
    return info


def default_input_shape(cfg, task: str) -> Tuple[int, int]:
    """(H, W) to export at when none is given: the config's test size, rounded up to 32."""
    if task == 'classification':
        size = cfg.get('img_size', 224)
        shape = (size, size) if isinstance(size, int) else tuple(size)
    elif task == 'segmentation':
        shape = tuple(cfg.get('crop_size', (512, 512)))
    else:  # the Resize of the test pipeline: scale is (w, h) in mmdet 3
        pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
        scales = [t['scale'] for t in pipeline if t.get('type') == 'Resize' and 'scale' in t]
        shape = (scales[0][1], scales[0][0]) if scales else (800, 1344)
    return tuple(-(-int(s) // _STRIDE) * _STRIDE for s in shape)


# ------------------------------------------------------------------ export


def wrap_for_export(model: nn.Module, task: str, seg_output: str = 'logits') -> nn.Module:
    """The task wrapper whose ``forward(image)`` is exported."""
    if task == 'classification':
        if getattr(model, 'head', None) is None:
            raise DeployError('unsupported classifier: it has no head to export')
        return ClassifierForExport(model).eval()
    if task == 'segmentation':
        if not hasattr(model, 'decode_head') or isinstance(model.decode_head, nn.ModuleList):
            raise DeployError(
                f'unsupported segmentation model {type(model).__name__}: needs one decode head'
            )
        return SegmentorForExport(model, seg_output).eval()
    if task == 'detection':
        return MaskDetectorForExport(model).eval()
    raise DeployError(f'unknown task {task!r}; expected one of {sorted(set(TASKS.values()))}')


def _output_names(task: str, module: nn.Module) -> List[str]:
    if task == 'classification':
        return ['logits']
    if task == 'segmentation':
        return ['seg_logits' if module.output == 'logits' else 'seg_map']
    return list(DETECTOR_OUTPUTS)


def _check_shape(shape: Sequence[int], batch: int) -> Tuple[int, int]:
    if len(shape) != 2 or any(isinstance(s, bool) or not isinstance(s, int) for s in shape):
        raise DeployError(f'shape must be two ints (H W), got {shape!r}')
    bad = [s for s in shape if s <= 0 or s % _STRIDE]
    if bad:
        raise DeployError(
            f'input shape {tuple(shape)} is not divisible by {_STRIDE} (the backbone stride); '
            f'use e.g. {tuple(max(_STRIDE, round(s / _STRIDE) * _STRIDE) for s in shape)}'
        )
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise DeployError(f'batch must be a positive int, got {batch!r}')
    return tuple(shape)


def _adaptive_avg_pool2d(self, output_size):
    """``aten.adaptive_avg_pool2d`` for any input size (UperNet's pyramid pooling).

    torch's decomposition picks its index arithmetic from the example's divisibility, so a
    dynamic-size graph would be wrong at other sizes. Adaptive average pooling is separable:
    per axis, bin j averages ``[floor(j*n/o), ceil((j+1)*n/o))``, sliced from the runtime size.
    """
    from onnxscript import opset18 as op

    def ints(*values):
        return int_constant(op, values)

    out = self
    for axis, size in ((2, int(output_size[0])), (3, int(output_size[1]))):
        length = op.Shape(self, start=axis, end=axis + 1)
        bins = []
        for j in range(size):
            start = op.Div(op.Mul(length, ints(j)), ints(size))
            end = op.Div(op.Add(op.Mul(length, ints(j + 1)), ints(size - 1)), ints(size))
            piece = op.Slice(out, start, end, ints(axis))
            bins.append(op.ReduceMean(piece, ints(axis), keepdims=1))
        out = bins[0] if size == 1 else op.Concat(*bins, axis=axis)
    return out


def _gelu(self, approximate: str = 'none'):
    """``aten.gelu`` in the node pattern ONNX Runtime fuses into one Gelu kernel.

    torchlib writes ``x * (0.5 * (1 + erf(x / sqrt 2)))``, which ONNX Runtime 1.32 leaves as
    five nodes (Erf alone costs ~4% of InternImage-T); ``(x * (1 + erf(x / sqrt 2))) * 0.5`` is
    the same function in the order its GeluFusion matches. That order is ONNX Runtime's
    behaviour, not a standard: tests/deploy/test_gelu_fusion.py fails when it changes.
    """
    from onnxscript import opset18 as op

    def scalar(value):
        return float_constant(op, [value], self)

    if approximate == 'tanh':
        cube = op.Mul(op.Mul(self, self), self)
        inner = op.Mul(scalar(math.sqrt(2 / math.pi)), op.Add(self, op.Mul(scalar(0.044715), cube)))
        return op.Mul(op.Mul(self, op.Add(op.Tanh(inner), scalar(1.0))), scalar(0.5))
    erf = op.Erf(op.Div(self, scalar(math.sqrt(2.0))))
    return op.Mul(op.Mul(self, op.Add(erf, scalar(1.0))), scalar(0.5))


def _translation_table(mode: str, opset: int) -> dict:
    """DCNv3 (``mode``) plus the aten ops whose default translations do not suit InternImage."""
    table = dcnv3_translation_table(mode, opset)
    for target in (
        torch.ops.aten.adaptive_avg_pool2d.default,
        torch.ops.aten._adaptive_avg_pool2d.default,
    ):
        table[target] = _adaptive_avg_pool2d
    table[torch.ops.aten.gelu.default] = _gelu
    table.update(detector_translation_table())
    return table


def _too_new_for(model, opset: int) -> str:
    """': X, Y do not exist in opset K' for the graph's ops newer than ``opset``."""
    import onnx

    missing = set()
    for node in model.graph.node:
        if node.domain in ('', 'ai.onnx'):
            try:
                onnx.defs.get_schema(node.op_type, opset, '')
            except onnx.defs.SchemaError:
                missing.add(node.op_type)
    return f': {", ".join(sorted(missing))} do(es) not exist in opset {opset}' if missing else ''


def _non_standard_nodes(model) -> List[str]:
    found = []

    def visit(graph):
        for node in graph.node:
            if node.domain not in ('', 'ai.onnx'):
                found.append(f'{node.domain}::{node.op_type}')
            for attr in node.attribute:
                if attr.g is not None and attr.g.node:
                    visit(attr.g)

    visit(model.graph)
    found += [f'function {f.domain}::{f.name}' for f in model.functions]
    return sorted(set(found))


def export_module(
    module: nn.Module,
    out: str,
    example: torch.Tensor,
    output_names: Sequence[str],
    *,
    dynamic: bool = False,
    opset: Optional[int] = None,
    mode: str = 'gridsample',
    metadata: Optional[Dict[str, Any]] = None,
) -> str:
    """Exports ``module(image)`` to ``out`` atomically; returns the path written.

    Args:
        module (nn.Module): Takes one NCHW image tensor.
        out (str): ``.onnx`` path (its folder is created).
        example (Tensor): Example input; its shape is the exported one unless ``dynamic``.
        output_names (Sequence[str]): Names of the graph outputs.
        dynamic (bool): Batch, height and width dynamic. Defaults to False.
        opset (int, optional): ONNX opset; None picks the mode's default.
        mode (str): DCNv3 translation (``gridsample``, ``deformconv`` or ``custom``).
        metadata (dict, optional): Written to ``metadata_props``, values JSON-encoded.

    Raises:
        DeployError: opset too old for ``mode``, or the model cannot be exported.
    """
    opset = _checked_opset(mode, opset)
    return _export_module(module, out, example, output_names, dynamic, opset, mode, metadata)


def _checked_opset(mode: str, opset: Optional[int]) -> int:
    try:
        return check_export_opset(mode, opset)
    except (TypeError, ValueError) as error:
        raise DeployError(str(error)) from error


def _export_module(module, out, example, output_names, dynamic, opset, mode, metadata) -> str:
    """:func:`export_module` with ``mode`` and ``opset`` already checked."""
    dynamic_shapes = None
    if dynamic:
        if example.shape[0] < 2:  # torch.export specialises size-1 dims
            example = example.expand(2, *example.shape[1:]).contiguous()
        dynamic_shapes = {'image': {0: 'batch', 2: 'height', 3: 'width'}}
    program = _run_exporter(module.eval(), example, output_names, dynamic_shapes, opset, mode)
    _check_graph(program.model_proto, opset, mode)
    props = {'producer': 'internimage.deploy', 'dcnv3_mode': mode, 'opset': opset}
    props['input_shape'] = list(example.shape) if not dynamic else ['batch', 3, 'H', 'W']
    props['dynamic'] = bool(dynamic)
    props['outputs'] = list(output_names)
    props.update(metadata or {})
    return _save_atomically(program, out, props, opset)


def _run_exporter(module, example, output_names, dynamic_shapes, opset: int, mode: str):
    """``torch.onnx.export`` (dynamo) with our translations; errors become DeployError."""
    with torch.no_grad():
        try:
            return torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=['image'],
                output_names=list(output_names),
                opset_version=opset,
                dynamic_shapes=dynamic_shapes,
                custom_translation_table=_translation_table(mode, opset),
                optimize=True,
                verbose=False,
            )
        except Exception as error:
            inner = getattr(module, 'model', module)
            head = getattr(inner, 'head', None) or getattr(inner, 'decode_head', None)
            what = type(inner).__name__ + (f' with {type(head).__name__}' if head else '')
            first = str(error).strip().splitlines()[0] if str(error).strip() else ''
            raise DeployError(
                f'cannot export {what} to ONNX: {type(error).__name__}: {first}'
            ) from error


def _check_graph(model, opset: int, mode: str) -> None:
    """The opset torch wrote is ``opset``; no custom-domain node unless ``mode='custom'``."""
    written = next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), None)
    if written != opset:
        raise DeployError(
            f'torch could not write opset {opset} (the graph came out in opset {written})'
            + _too_new_for(model, opset)
            + '; choose a later --opset'
        )
    if mode != 'custom':
        foreign = _non_standard_nodes(model)
        if foreign:
            raise DeployError(
                f'the {mode} graph has nodes outside the default ONNX domain: {foreign}'
            )


def _save_atomically(program, out: str, props: Dict[str, Any], opset: int) -> str:
    """Saves the exported ``program`` with ``props`` as metadata (``ONNXProgram.save``: the
    weights go to ``<out>.data`` beside it above protobuf's 2 GB) into a private temporary
    folder, checks the file and moves it (and its data) to ``out``; nothing is left behind
    on failure."""
    import shutil

    import onnx

    program.model.metadata_props.update({k: json.dumps(v) for k, v in props.items()})
    folder = osp.dirname(osp.abspath(out))
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}.', dir=folder)
    try:
        staged = osp.join(staging, osp.basename(out))
        program.save(staged)
        try:
            onnx.checker.check_model(staged, full_check=True)
        except onnx.checker.ValidationError as error:
            if opset >= 18:
                raise
            # torch writes opset 18 and onnx's version converter brings it down; it can
            # leave opset-18 attributes behind (e.g. ReduceMean's noop_with_empty_axes).
            first = str(error).strip().splitlines()[0]
            raise DeployError(
                f"the opset {opset} graph from onnx's version converter is invalid ({first}); "
                'use --opset 18 or later'
            ) from error
        umask = os.umask(0)
        os.umask(umask)
        for name in sorted(os.listdir(staging), key=lambda n: n == osp.basename(out)):
            os.chmod(osp.join(staging, name), 0o666 & ~umask)  # mkdtemp made it private
            os.replace(osp.join(staging, name), osp.join(folder, name))  # the .onnx last
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def export_task_model(
    model: nn.Module,
    task: str,
    out: str,
    *,
    shape: Sequence[int] = (224, 224),
    batch: int = 1,
    dynamic: bool = False,
    opset: Optional[int] = None,
    mode: str = 'gridsample',
    seg_output: str = 'logits',
    info: Optional[Dict[str, Any]] = None,
) -> str:
    """Wraps an already built task model and exports it (see :func:`export_module`).

    Args:
        model (nn.Module): From :func:`load_task_model`.
        task (str): ``classification``, ``segmentation`` or ``detection``.
        out (str): ``.onnx`` path.
        shape (Sequence[int]): Input (H, W), multiples of 32.
        batch (int): Batch size of the example (the exported one unless ``dynamic``).
        dynamic, opset, mode: As :func:`export_module`.
        seg_output (str): Segmentation output, ``logits`` or ``argmax``.
        info (dict, optional): Metadata from :func:`load_task_model`.
    """
    opset = check_export_options(mode, opset, shape, batch)
    return _export_task_model(
        model, task, out, tuple(shape), batch, dynamic, opset, mode, seg_output, info
    )


def _export_task_model(model, task, out, shape, batch, dynamic, opset, mode, seg_output, info):
    """:func:`export_task_model` with the options already checked."""
    module = wrap_for_export(model, task, seg_output)
    example_shape = shape
    if dynamic and task == 'detection':
        # torch.export specialises size-1 dims: the coarsest anchor level must be >= 2 wide.
        side = 2 * max(max(s) for s in model.rpn_head.prior_generator.strides)
        example_shape = tuple(max(s, side) for s in shape)
    example = torch.randn(batch, 3, *example_shape, generator=torch.Generator().manual_seed(0))
    metadata = {'task': task, **(info or {}), 'input_size': list(shape)}
    if task == 'segmentation':
        metadata['seg_output'] = seg_output
    if task == 'detection':
        metadata.update(max_detections=module.max_per_img, score_thr=module.score_thr)
    return _export_module(
        module, out, example, _output_names(task, module), dynamic, opset, mode, metadata
    )


def check_export_options(
    mode: str, opset: Optional[int], shape: Optional[Sequence[int]], batch: int
) -> int:
    """Validates the export options before any model is built; returns the opset to use.

    Raises:
        DeployError: unknown mode, opset too old for it, shape not a multiple of 32, bad batch.
    """
    opset = _checked_opset(mode, opset)
    _check_shape(tuple(shape) if shape is not None else (_STRIDE, _STRIDE), batch)
    return opset


def export_onnx(
    config: str,
    checkpoint: Optional[str],
    out: str,
    *,
    shape: Optional[Sequence[int]] = None,
    batch: int = 1,
    dynamic: bool = False,
    opset: Optional[int] = None,
    mode: str = 'gridsample',
    seg_output: str = 'logits',
    cfg_options=None,
    allow_partial: bool = False,
) -> Tuple[str, nn.Module, str, Tuple[int, int]]:
    """Config + checkpoint (or ``'none'``) -> ``out`` (what ``tools/deploy/export_onnx.py``
    runs). Options and config are checked before the model is built.

    Args:
        config (str): Config file.
        checkpoint (str, optional): Checkpoint file or ``'none'``.
        out (str): ``.onnx`` path.
        shape (Sequence[int], optional): Input (H, W); None: :func:`default_input_shape`.
        batch, dynamic, opset, mode, seg_output: As :func:`export_task_model`.
        cfg_options (dict, optional): Config overrides.
        allow_partial (bool): Export with a checkpoint that does not fit the model exactly
            (:func:`load_task_model`). Defaults to False.

    Returns:
        tuple: ``(path, model, task, shape)``: the file, the built model, its task and the
        exported input size.
    """
    opset = check_export_options(mode, opset, shape, batch)
    model, cfg, task, info = load_task_model(config, checkpoint, cfg_options, allow_partial)
    if shape is None:
        shape = default_input_shape(cfg, task)
    if task != 'segmentation' and seg_output != 'logits':
        raise DeployError(f'--seg-output applies to segmentation models, not {task}')
    shape = tuple(shape)
    path = _export_task_model(
        model, task, out, shape, batch, dynamic, opset, mode, seg_output, info
    )
    return path, model, task, shape
