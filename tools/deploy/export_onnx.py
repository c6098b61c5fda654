"""Export an InternImage model (classifier, segmentor, whole Mask R-CNN detector) to ONNX.

    python tools/deploy/export_onnx.py CONFIG CHECKPOINT --out model.onnx
        [--shape H W] [--batch N] [--dynamic] [--opset K]
        [--dcnv3 {gridsample,deformconv,custom}] [--seg-output {logits,argmax}] [--verify]
        [--allow-partial]

CHECKPOINT is a checkpoint file or ``none`` (random weights); one that does not fit the
model, or cannot be read, is refused unless ``--allow-partial`` (docs/checkpoints.md).
``--dcnv3 gridsample`` (default) writes standard operators only and runs in ONNX Runtime
and OpenVINO; ``deformconv`` uses
ONNX DeformConv (opset >= 19, ONNX Runtime only); ``custom`` writes the official
``mmdeploy::TRTDCNv3`` node for TensorRT with that plugin. See docs/deploy.md.
"""

import argparse
import os.path as osp
import sys

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from internimage.checkpoint import add_allow_partial_argument  # noqa: E402
from ops_dcnv3.onnx_export import DCNV3_EXPORT_MODES  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for random weights")
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument(
        '--shape',
        nargs=2,
        type=int,
        metavar=('H', 'W'),
        help='input height and width, multiples of 32 (default: the config test size)',
    )
    parser.add_argument('--batch', type=int, default=1, help='batch size (default: 1)')
    parser.add_argument('--dynamic', action='store_true', help='dynamic batch, height and width')
    parser.add_argument(
        '--opset', type=int, help='ONNX opset (default: 18; 19 for --dcnv3 deformconv)'
    )
    parser.add_argument(
        '--dcnv3',
        choices=DCNV3_EXPORT_MODES,
        default='gridsample',
        help='how DCNv3 is written (default: gridsample, runs everywhere)',
    )
    parser.add_argument(
        '--seg-output',
        choices=('logits', 'argmax'),
        default='logits',
        help='segmentation output: class logits or the label map (default: logits)',
    )
    parser.add_argument(
        '--verify',
        action='store_true',
        help='run the file in ONNX Runtime (and OpenVINO for gridsample) on a random input '
        'and print the max relative difference to PyTorch',
    )
    add_allow_partial_argument(parser)
    return parser.parse_args(argv)


def _verify(model, task: str, path: str, args, shape) -> None:
    import numpy as np
    import torch

    from internimage.deploy import wrap_for_export
    from internimage.deploy.compare import match_detections
    from internimage.deploy.runtime import (
        compare_outputs,
        openvino_model,
        ort_session,
        run_openvino,
        run_ort,
    )

    image = torch.randn(args.batch, 3, *shape, generator=torch.Generator().manual_seed(1))
    module = wrap_for_export(model, task, args.seg_output)
    with torch.no_grad():
        expected = module(image)
    expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
    runtimes = [('onnxruntime', lambda: run_ort(ort_session(path), image.numpy()))]
    if args.dcnv3 == 'gridsample':
        runtimes.append(('openvino', lambda: run_openvino(openvino_model(path), image.numpy())))
    for name, run in runtimes:
        outputs = run()
        if task == 'detection':  # detections: matched by label and overlap, not by order
            matches = [
                m
                for i in range(args.batch)
                for m in match_detections(
                    [e[i] for e in expected], [o[i] for o in outputs], module.score_thr
                )
            ]
            worst = (
                min((m[2] for m in matches), default=1.0),
                min((m[3] for m in matches), default=1.0),
            )
            print(
                f'verify {name}: {len(matches)} PyTorch detections, worst matching box IoU '
                f'{worst[0]:.4f}, mask IoU {worst[1]:.4f}'
            )
        elif expected[0].dtype.kind in 'iu':  # label maps: fraction of differing pixels
            diff = float(np.mean(outputs[0] != expected[0]))
            print(f'verify {name}: {diff:.2%} of pixels differ from PyTorch')
        else:
            error = max(compare_outputs(outputs, expected))
            print(f'verify {name}: max relative difference to PyTorch {error:.2e}')


def main(argv=None) -> int:
    args = parse_args(argv)
    from internimage.deploy import DeployError, export_onnx

    try:
        path, model, task, shape = export_onnx(
            args.config,
            args.checkpoint,
            args.out,
            shape=args.shape,
            batch=args.batch,
            dynamic=args.dynamic,
            opset=args.opset,
            mode=args.dcnv3,
            seg_output=args.seg_output,
            allow_partial=args.allow_partial,
        )
    except DeployError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    size = osp.getsize(path) / 1024**2
    print(
        f'saved {path} ({size:.1f} MiB): {task}, input {"dynamic" if args.dynamic else args.batch}'
        f'x3x{shape[0]}x{shape[1]}, --dcnv3 {args.dcnv3}'
    )
    if args.verify:
        _verify(model, task, path, args, shape)
    return 0


if __name__ == '__main__':
    sys.exit(main())
