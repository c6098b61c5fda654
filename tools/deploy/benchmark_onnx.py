"""Time InternImage in PyTorch eager vs ONNX Runtime vs OpenVINO on the CPU, in one run.

    python tools/deploy/benchmark_onnx.py [--config CONFIG] [--shape H [W]] [--batches 1 8]
        [--threads 1 2] [--runs 10] [--warmup 2] [--work-dir work_dirs/deploy_benchmark]

A classification config (default InternImage-T at 224): the classifier with random weights
and non-trivial DCNv3 offsets, exported once per batch size and DCNv3 mode (static shapes);
per thread count it times PyTorch eager (compiled DCNv3 CPU kernels), ONNX Runtime with the
``gridsample`` and ``deformconv`` files and OpenVINO with the ``gridsample`` file (float32
precision hint; plus a row with the bf16 hint). The last column is each runtime's max
relative difference to eager.

A Mask R-CNN / Cascade Mask R-CNN config (``--checkpoint`` for real weights, else random):
the whole detector (:mod:`internimage.deploy.detector`) exported at ``--shape`` (default the
config's test size), eager being mmdet's ``predict``; the last column is the worst box IoU
of a runtime's detection matched to each eager detection scoring > 0.3 (1 if there is none).

Prints the median latency of ``--runs`` calls after ``--warmup``, the speed-up over eager and
the agreement column as a markdown table.
"""

import argparse
import os
import os.path as osp
import statistics
import sys
import time

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

DEFAULT_CONFIG = 'configs/classification/internimage-t_8xb128_in1k.py'
DETECTION_SCORE_BAR = 0.3  # eager detections above this are matched for the agreement


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--config', default=DEFAULT_CONFIG, help='classification or (Cascade) Mask R-CNN config'
    )
    parser.add_argument(
        '--checkpoint', default='none', help="checkpoint file, or 'none' for random weights"
    )
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        help='input H [W], multiples of 32 (default: 224 for classifiers, the config test '
        'size for detectors)',
    )
    parser.add_argument('--batches', type=int, nargs='+', help='default: 1 8 (detectors: 1)')
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--runs', type=int, default=10, help='timed calls per cell')
    parser.add_argument('--warmup', type=int, default=2, help='untimed calls first')
    parser.add_argument(
        '--modes',
        nargs='+',
        default=['gridsample', 'deformconv'],
        choices=['gridsample', 'deformconv'],
        help='DCNv3 export modes to time in ONNX Runtime (OpenVINO: gridsample only)',
    )
    parser.add_argument(
        '--no-openvino-bf16',
        dest='openvino_bf16',
        action='store_false',
        help='skip the OpenVINO row with the bf16 precision hint (AMX/AVX512-BF16 CPUs: '
        'faster, not float32-accurate)',
    )
    parser.add_argument('--work-dir', default='work_dirs/deploy_benchmark', help='ONNX files')
    return parser.parse_args(argv)


def _median_ms(call, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _export_files(model, task, args, shape, name) -> dict:
    """(batch, mode) -> the exported static file."""
    from internimage.deploy import export_task_model

    files = {}
    for batch in args.batches:
        for mode in args.modes:
            path = osp.join(args.work_dir, f'{name}_{shape[0]}x{shape[1]}_b{batch}_{mode}.onnx')
            start = time.perf_counter()
            export_task_model(model, task, path, shape=shape, batch=batch, mode=mode)
            files[batch, mode] = path
            print(f'exported {path} in {time.perf_counter() - start:.0f} s', flush=True)
    return files


class _Eager:
    """The eager call to time and the agreement of a runtime's outputs with it."""

    def __init__(self, model, task: str, image) -> None:
        import torch

        from internimage.deploy import wrap_for_export

        self.task = task
        if task == 'detection':
            from mmdet.structures import DetDataSample

            size = tuple(image.shape[2:])
            samples = [DetDataSample(metainfo=dict(img_shape=size, ori_shape=size,
                                                   scale_factor=(1.0, 1.0)))
                       for _ in range(image.shape[0])]  # fmt: skip
            self.call = lambda: model.predict(image, samples, rescale=False)
        else:
            wrapper = wrap_for_export(model, task)
            self.call = lambda: wrapper(image)
        with torch.no_grad():
            self.reference = self.call()

    def agreement(self, outputs) -> float:
        """Classification: max relative difference; detection: worst matched box IoU."""
        if self.task != 'detection':
            from internimage.deploy.runtime import max_relative_error

            return max_relative_error(outputs[0], self.reference.numpy())
        from internimage.deploy.compare import match_detections

        ious = []
        for index, result in enumerate(self.reference):
            instances = result.pred_instances
            dets = instances.bboxes.new_zeros(len(instances), 5)
            dets[:, :4], dets[:, 4] = instances.bboxes, instances.scores
            reference = (dets.numpy(), instances.labels.numpy(), instances.masks.numpy())
            mine = [o[index] for o in outputs]
            ious += [m[2] for m in match_detections(reference, mine, DETECTION_SCORE_BAR)]
        return min(ious, default=1.0)


def _time_runtimes(eager: _Eager, files: dict, batch: int, threads: int, array, args) -> list:
    """(runtime, median ms, agreement) per runtime, eager first."""
    import torch

    from internimage.deploy.runtime import openvino_model, ort_session, run_openvino, run_ort

    with torch.no_grad():
        eager_ms = _median_ms(eager.call, args.runs, args.warmup)
    cells = [('PyTorch eager', eager_ms, None)]
    runners = [
        (f'ONNX Runtime ({mode})', ort_session(files[batch, mode], threads), run_ort)
        for mode in args.modes
    ]
    if 'gridsample' in args.modes:
        path = files[batch, 'gridsample']
        runners.append(('OpenVINO (gridsample, f32)', openvino_model(path, threads), run_openvino))
        if args.openvino_bf16:
            compiled = openvino_model(path, threads, 'bf16')
            runners.append(('OpenVINO (gridsample, bf16 hint)', compiled, run_openvino))
    for runtime, handle, run in runners:
        agreement = eager.agreement(run(handle, array))
        ms = _median_ms(lambda: run(handle, array), args.runs, args.warmup)
        cells.append((runtime, ms, agreement))
    return cells


def _print_table(rows, args, name: str, shape, task: str) -> None:
    import onnxruntime
    import openvino
    import torch

    column = 'worst box IoU' if task == 'detection' else 'max rel diff'
    print(
        f'\n{name} at {shape[0]}x{shape[1]}, median of {args.runs} runs '
        f'(torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, '
        f'openvino {openvino.__version__}):\n'
    )
    print(f'| batch | threads | runtime | median ms | images/s | speed-up vs eager | {column} |')
    print('| ---: | ---: | --- | ---: | ---: | ---: | ---: |')
    for batch, threads, runtime, ms, speedup, agreement in rows:
        shown = '-' if agreement is None else f'{agreement:.1e}'
        if task == 'detection' and agreement is not None:
            shown = f'{agreement:.4f}'
        print(
            f'| {batch} | {threads} | {runtime} | {ms:.1f} | {batch * 1000 / ms:.1f} | '
            f'{speedup:.2f}x | {shown} |'
        )


def main(argv=None) -> int:
    import torch

    from internimage.deploy import default_input_shape, load_task_model
    from ops_dcnv3.testing import randomise_parameters

    args = parse_args(argv)
    model, cfg, task, _ = load_task_model(args.config, args.checkpoint)
    if task == 'segmentation':
        raise SystemExit(f'error: {args.config} is a segmentation config; give a classifier '
                         'or a (Cascade) Mask R-CNN')  # fmt: skip
    if args.checkpoint == 'none':
        randomise_parameters(model)
    if args.shape:
        shape = (args.shape[0], args.shape[-1])
    else:
        shape = (224, 224) if task == 'classification' else default_input_shape(cfg, task)
    args.batches = args.batches or ([1, 8] if task == 'classification' else [1])
    os.makedirs(args.work_dir, exist_ok=True)
    name = osp.splitext(osp.basename(args.config))[0]
    files = _export_files(model, task, args, shape, name)

    rows = []
    generator = torch.Generator().manual_seed(0)
    for batch in args.batches:
        image = torch.randn(batch, 3, *shape, generator=generator)
        for threads in args.threads:
            torch.set_num_threads(threads)
            eager = _Eager(model, task, image)
            cells = _time_runtimes(eager, files, batch, threads, image.numpy(), args)
            eager_ms = cells[0][1]
            for runtime, ms, agreement in cells:
                rows.append((batch, threads, runtime, ms, eager_ms / ms, agreement))
                print(f'batch {batch} threads {threads} {runtime}: {ms:.1f} ms '
                      f'(x{eager_ms / ms:.2f}, agreement {agreement})', flush=True)  # fmt: skip
    _print_table(rows, args, name, shape, task)
    return 0


if __name__ == '__main__':
    sys.exit(main())
