"""Matching a detector file's detections to reference ones (numpy only).

Detections of two runs of the same detector come in different orders where scores tie and
differ slightly in floating point; they are compared by matching each reference detection
to the best overlapping one of the same label.
"""

from typing import List, Sequence, Tuple

import numpy as np

__all__ = ['box_iou', 'mask_iou', 'match_detections']


def box_iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(N, M) IoU of (N, 4) and (M, 4) ``x1, y1, x2, y2`` boxes (0 where both are empty)."""
    boxes = np.asarray(boxes, np.float64)
    others = np.asarray(others, np.float64)
    top_left = np.maximum(boxes[:, None, :2], others[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], others[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(-1)

    def area(b):
        return np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)

    union = area(boxes)[:, None] + area(others)[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def mask_iou(mask: np.ndarray, other: np.ndarray) -> float:
    """IoU of two boolean masks; 1 when both are empty."""
    union = np.logical_or(mask, other).sum()
    return float(np.logical_and(mask, other).sum() / union) if union else 1.0


def match_detections(
    reference: Sequence[np.ndarray], result: Sequence[np.ndarray], score_thr: float
) -> List[Tuple[int, float, float, float]]:
    """Matches every reference detection scoring above ``score_thr`` to a result one.

    Args:
        reference: ``(dets, labels, masks)`` of one image: (N, 5), (N,), (N, H, W).
        result: The same of the run to check (padding rows have score 0).
        score_thr (float): Reference detections scoring at most this are not checked.

    Returns:
        list: Per checked reference detection ``(label, score, box IoU, mask IoU)`` with the
        result detection of the same label and the highest box IoU (IoUs 0 if none).
    """
    ref_dets, ref_labels, ref_masks = (np.asarray(a) for a in reference)
    dets, labels, masks = (np.asarray(a) for a in result)
    present = dets[:, 4] > 0
    matches = []
    for index in np.nonzero(ref_dets[:, 4] > score_thr)[0]:
        same = np.nonzero(present & (labels == ref_labels[index]))[0]
        if not len(same):
            matches.append((int(ref_labels[index]), float(ref_dets[index, 4]), 0.0, 0.0))
            continue
        ious = box_iou(ref_dets[index : index + 1, :4], dets[same, :4])[0]
        best = same[int(ious.argmax())]
        matches.append(
            (
                int(ref_labels[index]),
                float(ref_dets[index, 4]),
                float(ious.max()),
                mask_iou(ref_masks[index], masks[best]),
            )
        )
    return matches
