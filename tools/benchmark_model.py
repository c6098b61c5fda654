"""Whole-model throughput: InternImage-T and FlashInternImage-T next to a dense baseline
(torchvision ConvNeXt-T).

The models are measured in one run, on the same device, input size, batch and precision.
The table gives inference images/s and training-step time (forward, cross-entropy, backward,
AdamW step) for each model, then the ratios of each InternImage to ConvNeXt and of
FlashInternImage to InternImage (throughput ratio > 1 and step-time ratio < 1: faster).
Training uses ``--train-batch`` (on CUDA 128 by default, the per-GPU batch of the shipped config); a
measurement that runs out of GPU memory is reported as such and the run goes on.

    python tools/benchmark_model.py --device cuda --batch 256 --dtype float16
    python tools/benchmark_model.py --device cpu --batch 8        # CPU, float32
"""

import argparse
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, ROOT)

DTYPES = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16}
# The model users train: the shipped classification config, built by mmpretrain.
INTERNIMAGE_T_CONFIG = osp.join(ROOT, 'configs', 'classification', 'internimage-t_8xb128_in1k.py')
FLASH_INTERNIMAGE_T_CONFIG = osp.join(
    ROOT, 'configs', 'classification', 'flash-internimage-t_8xb128_in1k.py'
)


class TensorForward(nn.Module):
    """Calls an mmpretrain classifier in ``mode='tensor'`` (images in, logits out)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images, mode='tensor')


def build_models(num_classes: int) -> Dict[str, nn.Module]:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    from torchvision.models import convnext_tiny

    import internimage  # noqa: F401  registers the backbone and its head

    init_default_scope('mmpretrain')
    models = {}
    for label, path in (
        ('InternImage-T', INTERNIMAGE_T_CONFIG),
        ('FlashInternImage-T', FLASH_INTERNIMAGE_T_CONFIG),
    ):
        cfg = Config.fromfile(path)
        cfg.model.head.num_classes = num_classes
        models[label] = TensorForward(MODELS.build(cfg.model))
    models['ConvNeXt-T (torchvision)'] = convnext_tiny(num_classes=num_classes)
    return models


def measure(step: Callable[[], None], device: torch.device, warmup: int, iters: int) -> float:
    """Median seconds of one call of ``step`` (CUDA: events around each call)."""
    for _ in range(warmup):
        step()
    times: List[float] = []
    for _ in range(iters):
        if device.type == 'cuda':
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1e3)
        else:
            begin = time.perf_counter()
            step()
            times.append(time.perf_counter() - begin)
    return statistics.median(times)


def measure_or_oom(
    step: Callable[[], None], device: torch.device, warmup: int, iters: int
) -> Optional[float]:
    """``measure``, or None when the step runs out of GPU memory."""
    try:
        return measure(step, device, warmup, iters)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return None


def benchmark(
    model: nn.Module, args: argparse.Namespace, device: torch.device
) -> Dict[str, Optional[float]]:
    dtype = DTYPES[args.dtype]
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    images = torch.randn(args.batch, 3, args.size, args.size, device=device)
    train_images = (
        images[: args.train_batch]
        if args.train_batch <= args.batch
        else torch.randn(args.train_batch, 3, args.size, args.size, device=device)
    )
    labels = torch.randint(0, args.num_classes, (args.train_batch,), device=device)
    model = model.to(device)

    model.eval()

    def infer() -> None:
        with torch.inference_mode(), autocast:
            model(images)

    infer_s = measure_or_oom(infer, device, args.warmup, args.iters)

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(model(train_images), labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    train_s = measure_or_oom(train_step, device, args.warmup, args.iters)
    result = {
        'images_per_s': None if infer_s is None else args.batch / infer_s,
        'train_step_ms': None if train_s is None else train_s * 1e3,
    }
    if device.type == 'cuda':
        result['peak_mem_gib'] = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
    model.cpu()
    return result


def cell(value: Optional[float], width: int, digits: int = 1) -> str:
    return f'{"out of memory":>{width}}' if value is None else f'{value:>{width}.{digits}f}'


def ratio(ours: Optional[float], dense: Optional[float]) -> str:
    return 'n/a' if ours is None or dense is None else f'{ours / dense:.2f}x'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--batch', type=int, help='default: 256 on CUDA, 8 on CPU')
    parser.add_argument(
        '--train-batch', type=int, help='training-step batch (default: 128 on CUDA, else --batch)'
    )
    parser.add_argument('--size', type=int, default=224, help='input height and width')
    parser.add_argument(
        '--dtype',
        choices=list(DTYPES),
        default='float32',
        help='autocast precision (float32: no autocast)',
    )
    parser.add_argument('--num-classes', type=int, default=1000)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--threads', type=int, help='CPU threads (default: torch default)')
    args = parser.parse_args(argv)
    if args.batch is None:
        args.batch = 256 if args.device == 'cuda' else 8
    if args.train_batch is None:
        args.train_batch = 128 if args.device == 'cuda' else args.batch
    for name in ('batch', 'train_batch', 'size', 'num_classes', 'iters'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == 'cuda'
        else f'cpu, {torch.get_num_threads()} threads'
    )
    print(
        f'# {name}; inference batch {args.batch}, training batch {args.train_batch}, '
        f'{args.size}x{args.size}, {args.dtype}, median of {args.iters} after {args.warmup} '
        'warm-up'
    )
    results = {
        label: benchmark(model, args, device)
        for label, model in build_models(args.num_classes).items()
    }
    header = f'{"model":<26} | {"infer img/s":>12} | {"train step ms":>13}'
    if device.type == 'cuda':
        header += f' | {"peak GiB":>8}'
    print(header)
    print('-' * len(header))
    for label, r in results.items():
        row = f'{label:<26} | {cell(r["images_per_s"], 12)} | {cell(r["train_step_ms"], 13)}'
        if device.type == 'cuda':
            row += f' | {r["peak_mem_gib"]:>8.2f}'
        print(row)
    dense = results['ConvNeXt-T (torchvision)']
    for first, second in (
        ('InternImage-T', 'ConvNeXt-T'),
        ('FlashInternImage-T', 'ConvNeXt-T'),
        ('FlashInternImage-T', 'InternImage-T'),
    ):
        a = results[first]
        b = dense if second == 'ConvNeXt-T' else results[second]
        print(
            f'{first} / {second}: inference throughput '
            f'{ratio(a["images_per_s"], b["images_per_s"])}, training step time '
            f'{ratio(a["train_step_ms"], b["train_step_ms"])}'
        )


if __name__ == '__main__':
    main()
