"""Time InternImage in PyTorch eager vs ONNX Runtime vs OpenVINO on the CPU, in one run.

    python tools/deploy/benchmark_onnx.py [--config CONFIG] [--shape 224] [--batches 1 8]
        [--threads 1 2] [--runs 10] [--warmup 2] [--work-dir work_dirs/deploy_benchmark]

Exports the classifier (random weights with non-trivial DCNv3 offsets) once per batch size
and DCNv3 mode (static shapes), then, per thread count, times: PyTorch eager (compiled DCNv3
CPU kernels), ONNX Runtime with the ``gridsample`` and ``deformconv`` files and OpenVINO with
the ``gridsample`` file (float32 precision hint; plus a row with the bf16 hint). Prints the
median latency of ``--runs`` calls after ``--warmup``, the speed-up over eager and each
runtime's max relative difference to eager, as a markdown table.
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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='classification config')
    parser.add_argument('--shape', type=int, default=224, help='square input size')
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 8])
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


def main(argv=None) -> int:
    import torch

    from internimage.deploy import export_task_model, load_task_model, wrap_for_export
    from internimage.deploy.runtime import (
        max_relative_error,
        openvino_model,
        ort_session,
        run_openvino,
        run_ort,
    )
    from ops_dcnv3.testing import randomise_parameters

    args = parse_args(argv)
    model, cfg, task, info = load_task_model(args.config, 'none')
    if task != 'classification':
        raise SystemExit(
            f'error: {args.config} is a {task} config; the benchmark needs a classifier'
        )
    randomise_parameters(model)
    wrapper = wrap_for_export(model, task)
    os.makedirs(args.work_dir, exist_ok=True)
    name = osp.splitext(osp.basename(args.config))[0]

    files = {}
    for batch in args.batches:
        for mode in args.modes:
            path = osp.join(args.work_dir, f'{name}_{args.shape}_b{batch}_{mode}.onnx')
            start = time.perf_counter()
            export_task_model(
                model, task, path, shape=(args.shape, args.shape), batch=batch, mode=mode
            )
            files[batch, mode] = path
            print(f'exported {path} in {time.perf_counter() - start:.0f} s', flush=True)

    import onnxruntime
    import openvino

    rows = []
    generator = torch.Generator().manual_seed(0)
    for batch in args.batches:
        image = torch.randn(batch, 3, args.shape, args.shape, generator=generator)
        array = image.numpy()
        for threads in args.threads:
            torch.set_num_threads(threads)
            with torch.no_grad():
                reference = wrapper(image).numpy()
                eager_ms = _median_ms(lambda: wrapper(image), args.runs, args.warmup)
            cells = [('PyTorch eager', eager_ms, 0.0)]
            for mode in args.modes:
                session = ort_session(files[batch, mode], threads)
                error = max_relative_error(run_ort(session, array)[0], reference)
                ms = _median_ms(lambda: run_ort(session, array), args.runs, args.warmup)
                cells.append((f'ONNX Runtime ({mode})', ms, error))
            if 'gridsample' in args.modes:
                compiled = openvino_model(files[batch, 'gridsample'], threads)
                error = max_relative_error(run_openvino(compiled, array)[0], reference)
                ms = _median_ms(lambda: run_openvino(compiled, array), args.runs, args.warmup)
                cells.append(('OpenVINO (gridsample, f32)', ms, error))
                if args.openvino_bf16:
                    compiled = openvino_model(files[batch, 'gridsample'], threads, 'bf16')
                    error = max_relative_error(run_openvino(compiled, array)[0], reference)
                    ms = _median_ms(lambda: run_openvino(compiled, array), args.runs, args.warmup)
                    cells.append(('OpenVINO (gridsample, bf16 hint)', ms, error))
            for runtime, ms, error in cells:
                rows.append((batch, threads, runtime, ms, eager_ms / ms, error))
                print(
                    f'batch {batch} threads {threads} {runtime}: {ms:.1f} ms '
                    f'(x{eager_ms / ms:.2f}, max rel diff {error:.1e})',
                    flush=True,
                )

    print()
    print(
        f'{name} at {args.shape}x{args.shape}, median of {args.runs} runs '
        f'(torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, '
        f'openvino {openvino.__version__}):'
    )
    print()
    print('| batch | threads | runtime | median ms | images/s | speed-up vs eager | max rel diff |')
    print('| ---: | ---: | --- | ---: | ---: | ---: | ---: |')
    for batch, threads, runtime, ms, speedup, error in rows:
        print(
            f'| {batch} | {threads} | {runtime} | {ms:.1f} | {batch * 1000 / ms:.1f} | '
            f'{speedup:.2f}x | {error:.1e} |'
        )
    fastest = {}
    for batch, threads, runtime, ms, speedup, error in rows:
        accurate = error <= 1e-4
        if batch == min(args.batches) and accurate and speedup > fastest.get(threads, (0, ''))[0]:
            fastest[threads] = (speedup, runtime)
    for threads, (speedup, runtime) in sorted(fastest.items()):
        print(
            f'\nbatch {min(args.batches)}, {threads} thread(s): fastest float32-accurate '
            f'runtime {runtime}, {speedup:.2f}x eager'
        )
    return 0


if __name__ == '__main__':
    sys.exit(main())
