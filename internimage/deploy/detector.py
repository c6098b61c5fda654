"""The whole two-stage detector (Mask R-CNN, Cascade Mask R-CNN) as one exportable module.

:class:`MaskDetectorForExport` runs an mmdet model's own backbone, neck, RPN head, RoI
extractors, bbox heads and mask heads on a batch of normalised images and writes mmdet's
test-time post-processing with fixed-shape tensor operations, so ``torch.onnx.export`` gives
a graph of standard operators:

- RPN (``RPNHead.predict_by_feat``): per level the ``nms_pre`` best sigmoid scores
  (``TopK``), delta decoding (mmdet's ``delta2bbox``, clipped to the input), boxes of side
  <= ``min_bbox_size`` dropped, NMS per level (mmcv's ``batched_nms`` coordinate offsets),
  the ``max_per_img`` best kept;
- RoI features (``SingleRoIExtractor``): each RoI mapped to its FPN level by the extractor's
  own ``map_roi_levels`` and pooled there with RoIAlign (``aligned``: ONNX ``RoiAlign``
  ``half_pixel``); a RoI is pooled only on its level (on the others it is collapsed to a
  point, which RoIAlign's adaptive sampling skips);
- bbox head(s): softmax, class-wise decoding, ``multiclass_nms`` (score > ``score_thr``,
  NMS per class, ``max_per_img`` best); cascades refine the RoIs stage by stage with the
  argmax class and average the stages' class scores, as ``CascadeRoIHead``;
- mask head(s): mask logits of each detection's class (cascades average the stages'
  sigmoids), pasted at the input size as mmdet's ``_do_paste_mask`` and thresholded at
  ``mask_thr_binary``.

Every number comes from the model's ``test_cfg`` and its heads' coders. NMS is the op
``internimage_deploy::nms_keep`` (fixed-shape keep mask; eager: torchvision's NMS), written
to ONNX as ``NonMaxSuppression`` + ``ScatterND`` by :func:`nms_keep_onnx`. RoIAlign is
torchvision's op (torch's ONNX exporter writes it as ``RoiAlign``).

Outputs as mmdeploy's: ``dets`` (B, N, 5) ``x1, y1, x2, y2, score``, ``labels`` (B, N) int64,
``masks`` (B, N, H, W) bool with N = ``test_cfg.rcnn.max_per_img``; rows past an image's
detections are zeros (score 0; real detections score above ``score_thr`` >= 0).
"""

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import DeployError

__all__ = [
    'DETECTOR_TYPES',
    'MaskDetectorForExport',
    'check_mask_detector_config',
    'nms_keep',
    'nms_keep_onnx',
    'translation_table',
    'OUTPUT_NAMES',
]

#: Graph outputs, as mmdeploy's.
OUTPUT_NAMES = ('dets', 'labels', 'masks')

#: model.type -> roi_head.type the whole-detector export handles.
DETECTOR_TYPES = {'MaskRCNN': 'StandardRoIHead', 'CascadeRCNN': 'CascadeRoIHead'}
#: Scores below this are "not a candidate" for :func:`nms_keep` (valid scores are >= 0).
_INVALID = -1.0
_NMS_SCORE_THRESHOLD = -0.5


# ------------------------------------------------------------------ NMS op


@torch.library.custom_op('internimage_deploy::nms_keep', mutates_args=())
def nms_keep(boxes: Tensor, scores: Tensor, iou_threshold: float, max_output: int) -> Tensor:
    """Greedy NMS per image as a fixed-shape mask.

    Args:
        boxes (Tensor): (B, N, 4) ``x1, y1, x2, y2``.
        scores (Tensor): (B, N); boxes with a negative score are no candidates.
        iou_threshold (float): A box is suppressed by a kept one of IoU > this.
        max_output (int): At most this many boxes kept per image (the best scoring).

    Returns:
        Tensor: (B, N) float, 1 where the box is kept.
    """
    from torchvision.ops import nms

    keep = torch.zeros_like(scores)
    for image, (image_boxes, image_scores) in enumerate(zip(boxes, scores)):
        candidates = torch.nonzero(image_scores > _NMS_SCORE_THRESHOLD).squeeze(1)
        kept = nms(image_boxes[candidates], image_scores[candidates], iou_threshold)
        keep[image, candidates[kept[:max_output]]] = 1.0
    return keep


@nms_keep.register_fake
def _nms_keep_fake(boxes, scores, iou_threshold, max_output):
    return torch.empty_like(scores)


def nms_keep_onnx(boxes, scores, iou_threshold: float, max_output: int):
    """ONNX translation of :func:`nms_keep`: ``NonMaxSuppression`` (one class per image),
    its (batch, box) indices scattered as ones into zeros."""
    from onnxscript import opset18 as op

    from ops_dcnv3.onnx_export import float_constant, int_constant

    selected = op.NonMaxSuppression(
        boxes,
        op.Unsqueeze(scores, int_constant(op, [1])),
        int_constant(op, [max_output]),
        float_constant(op, [iou_threshold], scores),
        float_constant(op, [_NMS_SCORE_THRESHOLD], scores),
    )
    image_and_box = op.Gather(selected, int_constant(op, [0, 2]), axis=1)
    ones = op.Expand(float_constant(op, [1.0], scores), op.Shape(selected, start=0, end=1))
    zeros = op.Mul(scores, float_constant(op, [0.0], scores))
    return op.ScatterND(zeros, image_and_box, ones)


# ------------------------------------------------------------------ config checks


def _nms_iou(nms_cfg, where: str) -> float:
    nms_cfg = dict(nms_cfg or {})
    if nms_cfg.get('type', 'nms') != 'nms':
        raise DeployError(
            f'{where}.nms type {nms_cfg["type"]!r} cannot be exported; only plain nms'
        )
    return float(nms_cfg['iou_threshold'])


def check_mask_detector_config(model_cfg) -> None:
    """Raises :class:`DeployError` unless ``model_cfg`` is a (Cascade) Mask R-CNN the
    whole-detector export handles; runs on the config alone, before anything is built.

    Args:
        model_cfg (dict): The config's ``model``.
    """
    model_type = model_cfg.get('type')
    if model_type not in DETECTOR_TYPES:
        raise DeployError(
            f'unsupported detector {model_type!r}: the whole-detector export supports '
            f'{", ".join(DETECTOR_TYPES)} (Mask R-CNN and Cascade Mask R-CNN)'
        )
    roi_head = model_cfg.get('roi_head') or {}
    if roi_head.get('type') != DETECTOR_TYPES[model_type]:
        raise DeployError(
            f'unsupported roi_head {roi_head.get("type")!r} for {model_type}: expected '
            f'{DETECTOR_TYPES[model_type]}'
        )
    if not roi_head.get('mask_head'):
        raise DeployError(
            f'the {model_type} config has no mask head (model.roi_head.mask_head): the '
            'whole-detector export writes masks; export a Mask R-CNN / Cascade Mask R-CNN'
        )
    if (model_cfg.get('rpn_head') or {}).get('type') != 'RPNHead':
        raise DeployError('unsupported rpn_head: the export handles mmdet RPNHead')
    test_cfg = model_cfg.get('test_cfg') or {}
    for key in ('rpn', 'rcnn'):
        if not test_cfg.get(key):
            raise DeployError(f'the config has no model.test_cfg.{key}')
    _nms_iou(test_cfg['rpn'].get('nms'), 'model.test_cfg.rpn')
    _nms_iou(test_cfg['rcnn'].get('nms'), 'model.test_cfg.rcnn')


def _check_built(model: nn.Module) -> None:
    """What the config check cannot see: coder, extractor and head classes."""
    from mmcv.ops import RoIAlign
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder

    roi_head = model.roi_head
    stages = _as_list(roi_head.bbox_head)
    coders = [model.rpn_head.bbox_coder] + [head.bbox_coder for head in stages]
    for coder in coders:
        if type(coder) is not DeltaXYWHBBoxCoder:
            raise DeployError(
                f'unsupported box coder {type(coder).__name__}: the export decodes '
                'DeltaXYWHBBoxCoder'
            )
    if not model.rpn_head.use_sigmoid_cls:
        raise DeployError('unsupported RPN: the export needs sigmoid RPN scores')
    for head in stages:
        if head.custom_cls_channels or not head.with_reg:
            raise DeployError(
                f'unsupported bbox head {type(head).__name__}: custom class activation or no '
                'box regression'
            )
    extractors = _as_list(roi_head.bbox_roi_extractor) + _as_list(roi_head.mask_roi_extractor)
    for extractor in extractors:
        layers = extractor.roi_layers
        if type(extractor) is not SingleRoIExtractor or not all(
            isinstance(layer, RoIAlign) and layer.pool_mode == 'avg' for layer in layers
        ):
            raise DeployError(
                'unsupported RoI extractor: the export handles SingleRoIExtractor with '
                'RoIAlign (avg pooling)'
            )


def _as_list(modules) -> List[nn.Module]:
    if modules is None:
        return []
    return list(modules) if isinstance(modules, (list, tuple, nn.ModuleList)) else [modules]


# ------------------------------------------------------------------ the module


class MaskDetectorForExport(nn.Module):
    """mmdet (Cascade) Mask R-CNN: (B, 3, H, W) normalised images -> dets, labels, masks.

    Args:
        model (nn.Module): The built mmdet ``MaskRCNN`` / ``CascadeRCNN`` (eval mode), whose
            ``test_cfg`` gives every post-processing number.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        check_mask_detector_config(
            dict(
                type=type(model).__name__,
                roi_head=dict(
                    type=type(model.roi_head).__name__,
                    mask_head=getattr(model.roi_head, 'mask_head', None),
                ),
                rpn_head=dict(type=type(model.rpn_head).__name__),
                test_cfg=dict(rpn=model.rpn_head.test_cfg, rcnn=model.roi_head.test_cfg),
            )
        )
        _check_built(model)
        self.model = model
        rpn_cfg, rcnn_cfg = model.rpn_head.test_cfg, model.roi_head.test_cfg
        self.rpn_nms_pre = int(rpn_cfg.get('nms_pre', -1))
        self.rpn_min_size = float(rpn_cfg.get('min_bbox_size', -1))
        self.rpn_iou = _nms_iou(rpn_cfg.nms, 'test_cfg.rpn')
        self.rpn_max_per_img = int(rpn_cfg.max_per_img)
        self.score_thr = float(rcnn_cfg.score_thr)
        self.rcnn_iou = _nms_iou(rcnn_cfg.nms, 'test_cfg.rcnn')
        self.max_per_img = int(rcnn_cfg.max_per_img)
        self.mask_thr = float(rcnn_cfg.mask_thr_binary)
        roi_head = model.roi_head
        self.bbox_heads = _as_list(roi_head.bbox_head)
        self.bbox_extractors = _as_list(roi_head.bbox_roi_extractor)
        self.mask_heads = _as_list(roi_head.mask_head)
        self.mask_extractors = (
            self.bbox_extractors
            if getattr(roi_head, 'share_roi_extractor', False)
            else _as_list(roi_head.mask_roi_extractor)
        )
        if len(self.bbox_extractors) == 1 and len(self.bbox_heads) > 1:
            self.bbox_extractors *= len(self.bbox_heads)
        if len(self.mask_extractors) == 1 and len(self.mask_heads) > 1:
            self.mask_extractors *= len(self.mask_heads)

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        size = (image.shape[2], image.shape[3])
        feats = self.model.extract_feat(image)
        proposals, valid = self._proposals(feats, size)
        dets, labels, valid = self._detections(feats, proposals, valid, size)
        masks = self._masks(feats, dets[..., :4], labels, size) & valid[..., None, None]
        zero = dets.new_zeros(())
        dets = torch.where(valid[..., None], dets, zero)
        labels = torch.where(valid, labels, torch.zeros_like(labels))
        return dets, labels, masks

    # -------------------------------------------------------------- RPN

    def _proposals(self, feats: Sequence[Tensor], size) -> Tuple[Tensor, Tensor]:
        """(B, P, 4) proposals and their (B, P) validity, P = rpn ``max_per_img``."""
        rpn_head = self.model.rpn_head
        cls_scores, bbox_preds = rpn_head(feats)
        priors = rpn_head.prior_generator.grid_priors(
            [score.shape[-2:] for score in cls_scores], device=cls_scores[0].device
        )
        batch = cls_scores[0].shape[0]
        level_scores, level_deltas, level_priors, level_ids = [], [], [], []
        for level, (score, delta, prior) in enumerate(zip(cls_scores, bbox_preds, priors)):
            score = score.permute(0, 2, 3, 1).reshape(batch, -1).sigmoid()
            delta = delta.permute(0, 2, 3, 1).reshape(batch, -1, 4)
            prior = prior[None].expand(batch, -1, -1)
            if self.rpn_nms_pre > 0:
                score, (delta, prior) = _top_k(score, self.rpn_nms_pre, delta, prior)
            level_scores.append(score)
            level_deltas.append(delta)
            level_priors.append(prior)
            level_ids.append(torch.full_like(score, level))
        scores = torch.cat(level_scores, 1)
        boxes = _decode(
            rpn_head.bbox_coder, torch.cat(level_priors, 1), torch.cat(level_deltas, 1), size
        )
        valid = scores > _INVALID  # the top-k padding of small levels is not
        if self.rpn_min_size >= 0:
            wh = boxes[..., 2:] - boxes[..., :2]
            valid = valid & (wh > self.rpn_min_size).all(-1)
        keep = _batched_nms(
            boxes, scores, valid, torch.cat(level_ids, 1), self.rpn_iou, self.rpn_max_per_img
        )
        kept_scores = torch.where(keep, scores, scores.new_full((), _INVALID))
        kept_scores, (boxes,) = _top_k(kept_scores, self.rpn_max_per_img, boxes)
        return boxes, kept_scores > _INVALID

    # -------------------------------------------------------------- bbox heads

    def _detections(self, feats, proposals: Tensor, valid: Tensor, size):
        """Cascade (or single) bbox stages, then ``multiclass_nms``: (B, N, 5) dets,
        (B, N) labels, (B, N) validity."""
        batch, count = proposals.shape[:2]
        boxes = proposals
        stage_scores = []
        for stage, (head, extractor) in enumerate(zip(self.bbox_heads, self.bbox_extractors)):
            roi_feats = _roi_features(extractor, feats, boxes)
            cls_score, bbox_pred = head(roi_feats)
            stage_scores.append(cls_score)
            if stage < len(self.bbox_heads) - 1:  # CascadeRoIHead._refine_roi
                label = cls_score[:, :-1].argmax(dim=1)
                boxes = _decode(head.bbox_coder, boxes, _class_deltas(head, bbox_pred, label), size)
        head = self.bbox_heads[-1]
        cls_score = (
            stage_scores[0] if len(stage_scores) == 1 else sum(stage_scores) / len(stage_scores)
        )
        scores = F.softmax(cls_score, dim=-1)[:, :-1].reshape(batch, count, -1)
        num_classes = scores.shape[-1]
        decoded = _decode(head.bbox_coder, boxes, bbox_pred.reshape(batch, count, -1), size)
        decoded = decoded.reshape(batch, count, -1, 4).expand(-1, -1, num_classes, -1)
        labels = torch.arange(num_classes, device=scores.device).expand_as(scores)
        # multiclass_nms: (RoI, class) pairs above score_thr, NMS per class
        scores, decoded, labels = (
            scores.reshape(batch, -1),
            decoded.reshape(batch, -1, 4),
            labels.reshape(batch, -1),
        )
        candidates = valid[:, :, None].expand(-1, -1, num_classes).reshape(batch, -1)
        candidates = candidates & (scores > self.score_thr)
        keep = _batched_nms(decoded, scores, candidates, labels, self.rcnn_iou, self.max_per_img)
        kept_scores = torch.where(keep, scores, scores.new_full((), _INVALID))
        kept_scores, (decoded, labels) = _top_k(kept_scores, self.max_per_img, decoded, labels)
        valid = kept_scores > _INVALID
        dets = torch.cat([decoded, kept_scores.clamp(min=0)[..., None]], -1)
        return dets, labels, valid

    # -------------------------------------------------------------- mask heads

    def _masks(self, feats, boxes: Tensor, labels: Tensor, size) -> Tensor:
        """(B, N, H, W) bool masks of the detections (``FCNMaskHead.predict_by_feat``)."""
        batch, count = boxes.shape[:2]
        probs = []
        for head, extractor in zip(self.mask_heads, self.mask_extractors):
            logits = head(_roi_features(extractor, feats, boxes))
            if not head.class_agnostic:
                index = labels.reshape(-1, 1, 1, 1).expand(-1, 1, *logits.shape[2:])
                logits = logits.gather(1, index)
            probs.append(logits[:, :1].sigmoid())
        prob = probs[0] if len(probs) == 1 else sum(probs) / len(probs)  # merge_aug_masks
        pasted = _paste_masks(prob, boxes.reshape(-1, 4), size)
        return (pasted >= self.mask_thr).reshape(batch, count, *pasted.shape[-2:])


# ------------------------------------------------------------------ tensor helpers


def _top_k(scores: Tensor, k: int, *others: Tensor) -> Tuple[Tensor, Tuple[Tensor, ...]]:
    """The ``k`` best of (B, M) ``scores`` and the matching rows of ``others`` (B, M, ...).

    Pads with ``k`` invalid entries first, so ``k`` may exceed M (small images, dynamic
    shapes) without a shape-dependent branch.
    """
    batch = scores.shape[0]
    scores = torch.cat([scores, scores.new_full((batch, k), _INVALID)], 1)
    top, index = scores.topk(k, dim=1)
    gathered = []
    for other in others:
        pad = other.new_zeros((batch, k) + tuple(other.shape[2:]))
        other = torch.cat([other, pad], 1)
        expanded = index.reshape(batch, k, *([1] * (other.dim() - 2))).expand(
            -1, -1, *other.shape[2:]
        )
        gathered.append(other.gather(1, expanded))
    return top, tuple(gathered)


def _decode(coder, priors: Tensor, deltas: Tensor, size) -> Tensor:
    """``coder.decode`` for (B, M, 4) priors and (B, M, 4k) deltas, clipped to ``size``.

    Calls mmdet's ``delta2bbox`` (what ``DeltaXYWHBBoxCoder.decode`` runs in eager mode)
    with the coder's own settings; ``decode`` itself switches to a broken legacy branch
    while an ONNX export runs.
    """
    from mmdet.models.task_modules.coders.delta_xywh_bbox_coder import delta2bbox

    batch, count = priors.shape[:2]
    boxes = delta2bbox(
        priors.reshape(-1, 4),
        deltas.reshape(batch * count, -1),
        coder.means,
        coder.stds,
        max_shape=size,
        clip_border=coder.clip_border,
        add_ctr_clamp=coder.add_ctr_clamp,
        ctr_clamp=coder.ctr_clamp,
    )
    return boxes.reshape(batch, count, -1)


def _class_deltas(head, bbox_pred: Tensor, label: Tensor) -> Tensor:
    """(B, M, 4) deltas of each RoI's class (``BBoxHead.regress_by_class``)."""
    if not head.reg_class_agnostic:
        index = (label * 4)[:, None] + torch.arange(4, device=label.device)
        bbox_pred = bbox_pred.gather(1, index)
    return bbox_pred


def _batched_nms(
    boxes: Tensor, scores: Tensor, valid: Tensor, groups: Tensor, iou: float, max_output: int
) -> Tensor:
    """(B, M) bool: kept by NMS within each group, as mmcv's ``batched_nms`` (boxes shifted
    by group * (largest candidate coordinate + 1) so groups never overlap)."""
    largest = torch.where(valid[..., None], boxes, boxes.new_zeros(())).amax(dim=(1, 2))
    shifted = boxes + (groups.to(boxes.dtype) * (largest[:, None] + 1))[..., None]
    candidates = torch.where(valid, scores, scores.new_full((), _INVALID))
    return nms_keep(shifted, candidates, iou, max_output) > 0


def _roi_features(extractor, feats: Sequence[Tensor], boxes: Tensor) -> Tensor:
    """``SingleRoIExtractor(feats, rois)`` for (B, M, 4) boxes: (B*M, C, h, w).

    Every RoI is pooled on every level, but outside its own level it is collapsed to the
    point (0, 0), where RoIAlign's adaptive sampling takes no samples (cost ~0); the
    level's result is then selected.
    """
    from torchvision.ops import roi_align

    batch, count = boxes.shape[:2]
    image_index = torch.arange(batch, device=boxes.device, dtype=boxes.dtype)
    image_index = image_index[:, None].expand(-1, count).reshape(-1, 1)
    rois = torch.cat([image_index, boxes.reshape(-1, 4)], 1)
    levels = extractor.map_roi_levels(rois, len(extractor.roi_layers))
    pooled = None
    for level, layer in enumerate(extractor.roi_layers):
        on_level = (levels == level)[:, None]
        level_rois = torch.cat(
            [image_index, torch.where(on_level, rois[:, 1:], rois.new_zeros(()))], 1
        )
        out = roi_align(
            feats[level],
            level_rois,
            tuple(layer.output_size),
            spatial_scale=float(layer.spatial_scale),
            sampling_ratio=int(layer.sampling_ratio),
            aligned=bool(layer.aligned),
        )
        pooled = out if pooled is None else torch.where(on_level[..., None, None], out, pooled)
    return pooled


def _paste_masks(masks: Tensor, boxes: Tensor, size) -> Tensor:
    """(M, 1, h, w) mask probabilities pasted into (M, H, W) images at ``boxes``.

    mmdet's ``_do_paste_mask`` with ``skip_empty=False`` (its GPU path: the whole image),
    the infinities of empty boxes set to 0 without its data-dependent branch.
    """
    height, width = size
    x0, y0, x1, y1 = boxes.split(1, dim=1)
    img_y = torch.arange(height, device=boxes.device).to(torch.float32) + 0.5
    img_x = torch.arange(width, device=boxes.device).to(torch.float32) + 0.5
    img_y = (img_y - y0) / (y1 - y0) * 2 - 1
    img_x = (img_x - x0) / (x1 - x0) * 2 - 1
    zero = img_x.new_zeros(())
    img_y = torch.where(torch.isinf(img_y), zero, img_y)
    img_x = torch.where(torch.isinf(img_x), zero, img_x)
    count = masks.shape[0]
    grid_x = img_x[:, None, :].expand(count, img_y.shape[1], img_x.shape[1])
    grid_y = img_y[:, :, None].expand(count, img_y.shape[1], img_x.shape[1])
    grid = torch.stack([grid_x, grid_y], dim=3)
    return F.grid_sample(masks.to(torch.float32), grid, align_corners=False)[:, 0]


def translation_table() -> Dict:
    """The ops of this module the ONNX exporter needs translated."""
    return {torch.ops.internimage_deploy.nms_keep.default: nms_keep_onnx}
