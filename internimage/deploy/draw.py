"""Detections drawn in the look of mmdet's ``DetLocalVisualizer``, with numpy and cv2 only
(the visualiser itself imports torch; the deploy runtime must not).

Per instance, as the visualiser: the mask filled with the class colour at alpha 0.8 and its
outline in white, the box outlined in the class colour (3 px), and ``class: score`` (score in
percent) in light grey on a dark box at the box's top-left corner.
"""

from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ['class_palette', 'letterbox', 'draw_detections']

_ALPHA = 0.8  # DetLocalVisualizer(alpha=0.8)
_LINE_WIDTH = 3  # DetLocalVisualizer(line_width=3)
_TEXT_COLOUR = (200, 200, 200)  # its text_color
_OUTLINE_COLOUR = (255, 255, 255)  # the mask outline, 'w'


def class_palette(count: int, palette: Optional[Sequence[Sequence[int]]] = None) -> np.ndarray:
    """(count, 3) RGB colours: the dataset palette if it has enough, else fixed random ones
    (mmdet draws from a seeded random palette too when the dataset has none)."""
    if palette is not None and len(palette) >= count:
        return np.asarray(palette[:count], dtype=np.uint8)
    return np.random.default_rng(42).integers(0, 255, size=(count, 3), dtype=np.uint8)


def letterbox(
    image: np.ndarray, size: Tuple[int, int], pad_to: Optional[int] = None
) -> Tuple[np.ndarray, float]:
    """Resizes ``image`` keeping its aspect ratio to fit ``size`` (H, W), as mmdet's
    ``Resize(keep_ratio=True)``, and pads it at the bottom/right with zeros to ``size`` or,
    with ``pad_to``, to the next multiple of ``pad_to``.

    Returns:
        tuple: ``(padded image, scale)``; a point of the input times ``scale`` is a point of
        the resized image.
    """
    import cv2

    scale = min(size[0] / image.shape[0], size[1] / image.shape[1])
    height = max(1, int(round(image.shape[0] * scale)))
    width = max(1, int(round(image.shape[1] * scale)))
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    if pad_to:
        out_h, out_w = (-(-s // pad_to) * pad_to for s in (height, width))
    else:
        out_h, out_w = size
    padded = np.zeros((out_h, out_w) + image.shape[2:], dtype=image.dtype)
    padded[:height, :width] = resized
    return padded, scale


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    masks: Optional[np.ndarray],
    classes: Sequence[str],
    colours: np.ndarray,
) -> np.ndarray:
    """Draws instances on a copy of a BGR uint8 image.

    Args:
        image (np.ndarray): (H, W, 3) BGR uint8.
        boxes (np.ndarray): (N, 4) ``x1, y1, x2, y2`` in image pixels.
        scores (np.ndarray): (N,) in [0, 1].
        labels (np.ndarray): (N,) class indices.
        masks (np.ndarray, optional): (N, H, W) bool.
        classes (Sequence[str]): Class names.
        colours (np.ndarray): (num_classes, 3) RGB class colours.

    Returns:
        np.ndarray: The drawn BGR image.
    """
    import cv2

    canvas = image.copy()
    bgr = colours[:, ::-1].astype(np.float32)
    if masks is not None:
        for mask, label in zip(masks, labels):
            region = mask.astype(bool)
            canvas[region] = (canvas[region] * (1 - _ALPHA) + bgr[label] * _ALPHA).astype(np.uint8)
        for mask in masks:
            contours, _ = cv2.findContours(
                mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE
            )
            outline = canvas.copy()
            cv2.drawContours(outline, contours, -1, _OUTLINE_COLOUR, 1)
            canvas = cv2.addWeighted(outline, _ALPHA, canvas, 1 - _ALPHA, 0)
    area = image.shape[0] * image.shape[1]
    for box, score, label in zip(boxes, scores, labels):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        colour = tuple(int(c) for c in bgr[label])
        outline = canvas.copy()
        cv2.rectangle(outline, (x1, y1), (x2, y2), colour, _LINE_WIDTH)
        canvas = cv2.addWeighted(outline, _ALPHA, canvas, 1 - _ALPHA, 0)
        name = classes[label] if label < len(classes) else f'class {label}'
        text = f'{name}: {round(float(score) * 100, 1)}'
        # The visualiser scales the font with the box area: 13 px at its smallest.
        box_area = max(x2 - x1, 1) * max(y2 - y1, 1)
        font_scale = 0.35 + 0.25 * float(np.clip((box_area / area - 0.005) / 0.1, 0, 1))
        (text_w, text_h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        left, top = x1 + _LINE_WIDTH, y1 + _LINE_WIDTH
        patch = canvas.copy()
        cv2.rectangle(
            patch, (left, top), (left + text_w + 2, top + text_h + base + 2), (0, 0, 0), -1
        )
        canvas = cv2.addWeighted(patch, _ALPHA, canvas, 1 - _ALPHA, 0)
        cv2.putText(
            canvas,
            text,
            (left + 1, top + text_h + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            _TEXT_COLOUR,
            1,
            cv2.LINE_AA,
        )
    return canvas
