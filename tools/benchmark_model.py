"""Whole-model throughput: InternImage-T next to a dense baseline (torchvision ConvNeXt-T).

Both models are measured in one run, on the same device, input size, batch and precision.
The table gives inference images/s and training-step time (forward, cross-entropy, backward,
AdamW step) for each model, plus the InternImage / ConvNeXt ratio.

    python tools/benchmark_model.py --device cuda --batch 256 --dtype float16
    python tools/benchmark_model.py --device cpu --batch 8        # CPU, float32
"""
import argparse
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, ROOT)

DTYPES = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16}
# The model users train: the shipped classification config, built by mmpretrain.
INTERNIMAGE_T_CONFIG = osp.join(ROOT, 'configs', 'classification', 'internimage-t_8xb128_in1k.py')


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

    cfg = Config.fromfile(INTERNIMAGE_T_CONFIG)
    cfg.model.head.num_classes = num_classes
    init_default_scope('mmpretrain')
    return {
        'InternImage-T': TensorForward(MODELS.build(cfg.model)),
        'ConvNeXt-T (torchvision)': convnext_tiny(num_classes=num_classes),
    }


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


def benchmark(model: nn.Module, args: argparse.Namespace, device: torch.device) -> Dict[str, float]:
    dtype = DTYPES[args.dtype]
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    images = torch.randn(args.batch, 3, args.size, args.size, device=device)
    labels = torch.randint(0, args.num_classes, (args.batch, ), device=device)
    model = model.to(device)

    model.eval()

    def infer() -> None:
        with torch.inference_mode(), autocast:
            model(images)

    infer_s = measure(infer, device, args.warmup, args.iters)

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(model(images), labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    train_s = measure(train_step, device, args.warmup, args.iters)
    result = {'images_per_s': args.batch / infer_s, 'train_step_ms': train_s * 1e3}
    if device.type == 'cuda':
        result['peak_mem_gib'] = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
    model.cpu()
    return result


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--batch', type=int, help='default: 256 on CUDA, 8 on CPU')
    parser.add_argument('--size', type=int, default=224, help='input height and width')
    parser.add_argument('--dtype', choices=list(DTYPES), default='float32',
                        help='autocast precision (float32: no autocast)')
    parser.add_argument('--num-classes', type=int, default=1000)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--threads', type=int, help='CPU threads (default: torch default)')
    args = parser.parse_args(argv)
    if args.batch is None:
        args.batch = 256 if args.device == 'cuda' else 8
    for name in ('batch', 'size', 'num_classes', 'iters'):
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
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else \
        f'cpu, {torch.get_num_threads()} threads'
    print(f'# {name}; batch {args.batch}, {args.size}x{args.size}, {args.dtype}, '
          f'median of {args.iters} after {args.warmup} warm-up')
    results = {label: benchmark(model, args, device)
               for label, model in build_models(args.num_classes).items()}
    header = f'{"model":<26} | {"infer img/s":>12} | {"train step ms":>13}'
    if device.type == 'cuda':
        header += f' | {"peak GiB":>8}'
    print(header)
    print('-' * len(header))
    for label, r in results.items():
        row = f'{label:<26} | {r["images_per_s"]:>12.1f} | {r["train_step_ms"]:>13.1f}'
        if device.type == 'cuda':
            row += f' | {r["peak_mem_gib"]:>8.2f}'
        print(row)
    ours, dense = results.values()
    print(f'InternImage-T / ConvNeXt-T: inference throughput '
          f'{ours["images_per_s"] / dense["images_per_s"]:.2f}x, training step time '
          f'{ours["train_step_ms"] / dense["train_step_ms"]:.2f}x')


if __name__ == '__main__':
    main()
