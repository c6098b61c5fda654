"""Run an exported InternImage ONNX file on one image (ONNX Runtime or OpenVINO, CPU).

    python tools/deploy/onnx_infer.py MODEL.onnx IMAGE [--out-file out.png] [--topk 5]
        [--score-thr 0.3] [--runtime {onnxruntime,openvino}] [--threads N]

Needs no PyTorch (only requirements/deploy.txt, numpy and opencv-python): preprocessing
(resize, channel order, mean/std) comes from the metadata export_onnx.py stores in the file.
A classifier prints its top-k classes; a segmentor writes the label map as a colour image
(``--out``, default ``<IMAGE>_seg.png``) and prints the classes it found; a detector draws
its boxes and masks (``--out-file``, default ``<IMAGE>_det.png``, in the look of mmdet's
visualiser) and prints the detections.
"""

import argparse
import os.path as osp
import sys

import numpy as np

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from internimage.deploy.runtime import (  # noqa: E402
    openvino_model,
    ort_session,
    read_metadata,
    run_openvino,
    run_ort,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('model', help='.onnx file written by tools/deploy/export_onnx.py')
    parser.add_argument('image', help='image file')
    parser.add_argument(
        '--out-file',
        '--out',
        dest='out',
        help='segmentation: colour map (default <IMAGE>_seg.png); detection: drawing '
        '(default <IMAGE>_det.png)',
    )
    parser.add_argument(
        '--score-thr', type=float, default=0.3, help='detection: draw scores above (default 0.3)'
    )
    parser.add_argument('--topk', type=int, default=5, help='classification: classes to print')
    parser.add_argument(
        '--runtime', choices=('onnxruntime', 'openvino'), default='onnxruntime', help='runtime'
    )
    parser.add_argument('--threads', type=int, help='CPU threads (default: the runtime default)')
    return parser.parse_args(argv)


def _input_size(meta: dict, image: np.ndarray) -> tuple:
    """(H, W) to feed: the exported size, or for dynamic files the image rounded to 32."""
    if not meta.get('dynamic'):
        return tuple(meta['input_size'])
    return tuple(max(32, int(round(s / 32)) * 32) for s in image.shape[:2])


def preprocess(image: np.ndarray, meta: dict, size: tuple) -> np.ndarray:
    """BGR uint8 image -> normalised (1, 3, H, W) float32 as the model expects."""
    import cv2

    height, width = size
    if meta['task'] == 'classification':
        # Resize the short side, centre-crop (the classification test pipeline).
        scale = max(height / image.shape[0], width / image.shape[1])
        resized = cv2.resize(
            image,
            (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale))),
            interpolation=cv2.INTER_CUBIC,
        )
        top = (resized.shape[0] - height) // 2
        left = (resized.shape[1] - width) // 2
        image = resized[top : top + height, left : left + width]
    else:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return _normalise(image, meta)


def _palette(meta: dict, count: int) -> np.ndarray:
    if meta.get('palette') and len(meta['palette']) >= count:
        return np.array(meta['palette'][:count], dtype=np.uint8)
    generator = np.random.default_rng(42)
    return generator.integers(0, 255, size=(count, 3), dtype=np.uint8)


def main(argv=None) -> int:
    import cv2

    args = parse_args(argv)
    for name, path in (('model', args.model), ('image', args.image)):
        if not osp.isfile(path):
            print(f'error: {name} file not found: {path}', file=sys.stderr)
            return 2
    meta = read_metadata(args.model)
    if 'task' not in meta:
        print(
            f'error: {args.model} has no task metadata (not written by export_onnx.py?)',
            file=sys.stderr,
        )
        return 2
    image = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if image is None:
        print(f'error: cannot read image {args.image}', file=sys.stderr)
        return 2
    if meta['task'] == 'detection':
        return _detect(args, meta, image)
    size = _input_size(meta, image)
    batch = preprocess(image, meta, size)
    if meta.get('input_shape') and not meta.get('dynamic') and meta['input_shape'][0] > 1:
        batch = np.repeat(batch, meta['input_shape'][0], axis=0)  # static batch > 1
    if args.runtime == 'openvino':
        outputs = run_openvino(openvino_model(args.model, args.threads), batch)
    else:
        outputs = run_ort(ort_session(args.model, args.threads), batch)

    task = meta['task']
    if task == 'classification':
        logits = outputs[0][0].astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        classes = meta.get('classes') or [f'class_{i}' for i in range(len(probs))]
        for rank, index in enumerate(np.argsort(-probs)[: args.topk], 1):
            print(f'{rank}. {classes[index]} ({index}): {probs[index]:.4f}')
    elif task == 'segmentation':
        result = outputs[0][0]
        labels = result.argmax(axis=0) if result.ndim == 3 else result
        labels = cv2.resize(
            labels.astype(np.int32).astype(np.float32),
            (image.shape[1], image.shape[0]),
            interpolation=cv2.INTER_NEAREST,
        ).astype(np.int64)
        classes = meta.get('classes') or []
        count = max(len(classes), int(labels.max()) + 1)
        colour = _palette(meta, count)[labels][..., ::-1]  # RGB palette -> BGR for cv2
        out = args.out or osp.splitext(args.image)[0] + '_seg.png'
        if not cv2.imwrite(out, colour):
            print(f'error: cannot write {out}', file=sys.stderr)
            return 2
        found, counts = np.unique(labels, return_counts=True)
        order = np.argsort(-counts)
        summary = ', '.join(
            f'{classes[found[i]] if found[i] < len(classes) else found[i]} '
            f'{counts[i] / labels.size:.1%}'
            for i in order[:8]
        )
        print(f'saved {out} ({labels.shape[1]}x{labels.shape[0]}): {summary}')
    return 0


def _normalise(image: np.ndarray, meta: dict) -> np.ndarray:
    """BGR uint8 (H, W, 3) -> normalised (1, 3, H, W) float32 as the model expects."""
    if meta.get('channel_order', 'rgb') == 'rgb':
        image = image[..., ::-1]
    array = image.astype(np.float32)
    if 'mean' in meta:
        array = (array - np.array(meta['mean'], np.float32)) / np.array(meta['std'], np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1)[None])


def _detect(args, meta: dict, image: np.ndarray) -> int:
    """Whole detector: keep-ratio resize + pad (as mmdet's test pipeline), run, draw."""
    import cv2

    from internimage.deploy.draw import class_palette, draw_detections, letterbox

    padded, scale = letterbox(image, tuple(meta['input_size']), 32 if meta.get('dynamic') else None)
    # mmdet pads after normalising (pad value 0): normalise the resized part only.
    batch = _normalise(padded, meta)
    height, width = (round(s * scale) for s in image.shape[:2])
    batch[..., height:, :] = 0
    batch[..., :, width:] = 0
    if args.runtime == 'openvino':
        dets, labels, masks = run_openvino(openvino_model(args.model, args.threads), batch)
    else:
        dets, labels, masks = run_ort(ort_session(args.model, args.threads), batch)
    keep = dets[0, :, 4] > args.score_thr
    # The file clips to its (padded) input; the image ends at the resized part.
    boxes = np.minimum(dets[0, keep, :4], [width, height, width, height]) / scale
    masks = masks[0, keep, :height, :width]
    masks = np.stack(
        [
            cv2.resize(m.astype(np.uint8), image.shape[1::-1], interpolation=cv2.INTER_NEAREST)
            for m in masks
        ]
    ) if len(masks) else None  # fmt: skip
    classes = meta.get('classes') or []
    labels = labels[0, keep]
    colours = class_palette(max(len(classes), int(labels.max(initial=0)) + 1), meta.get('palette'))
    drawn = draw_detections(image, boxes, dets[0, keep, 4], labels, masks, classes, colours)
    out = args.out or osp.splitext(args.image)[0] + '_det.png'
    if not cv2.imwrite(out, drawn):
        print(f'error: cannot write {out}', file=sys.stderr)
        return 2
    for box, score, label in zip(boxes, dets[0, keep, 4], labels):
        name = classes[label] if label < len(classes) else label
        print(f'{name} {score:.3f} [{", ".join(f"{v:.1f}" for v in box)}]')
    print(f'saved {out}: {int(keep.sum())} detections above {args.score_thr}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
