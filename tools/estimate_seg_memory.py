"""Estimate the training memory per GPU of a segmentation config (fp32, AdamW).

    python tools/estimate_seg_memory.py CONFIG [--scale 0.25]

Static memory comes from the full model built on the meta device: parameters, gradients
and AdamW's two moments, 16 bytes per parameter. Activation memory is measured: the
tensors autograd saves for backward (``torch.autograd.graph.saved_tensors_hooks``, each
storage counted once) in one training forward of the config's model with one block per
backbone stage, on ``batch_size`` random crops of the config's size times ``--scale`` per
side (at least two, then scaled to the batch); each stage's per-block amount is
multiplied by the stage's depth, and everything by ``1 / scale**2`` (activations grow
with the number of pixels; the heads' point-sampled losses do not, so their share is
overstated). Both settings of gradient checkpointing are reported: with ``with_cp`` a
block keeps only its input, and one block's activations are live again during its
recompute.
Not counted: the CUDA caching allocator's fragmentation, cuDNN / deformable-attention
workspaces, the data loader: keep the estimate well below the GPU's memory.
Runs on the CPU.
"""

import argparse
import copy
import os.path as osp
import sys
from typing import Dict

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import internimage  # noqa: E402,F401
from internimage.models import InternImage  # noqa: E402

GB = 1024**3


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='segmentation config (configs/segmentation/...)')
    parser.add_argument(
        '--scale', type=float, default=0.25, help='crop side factor of the measured run'
    )
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error(f'--scale must be in (0, 1], got {args.scale}')
    return args


def _saved_bytes(run, parameters=frozenset()) -> int:
    """Bytes of the distinct storages autograd saves while ``run()`` executes, other than
    those of ``parameters`` (storage addresses), which the static part counts."""
    seen: Dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        run()
    return sum(seen.values())


def estimate(config: str, scale: float) -> Dict[str, float]:
    """The estimate in GiB: static, backbone activations without / with gradient
    checkpointing, head activations, and the totals.

    Args:
        config (str): path of the config.
        scale (float): crop side factor of the measured run.
    """
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    cfg = Config.fromfile(config)
    init_default_scope('mmseg')
    cfg.model.backbone.init_cfg = None
    with torch.device('meta'):
        params = sum(p.numel() for p in MODELS.build(cfg.model).parameters())
    backbone_cfg = cfg.model.backbone
    arch = copy.deepcopy(InternImage.arch_settings[backbone_cfg.arch])
    depths = arch['depths']
    arch.update(depths=[1, 1, 1, 1], level2_post_norm_block_ids=None)
    shallow = copy.deepcopy(cfg.model)
    shallow.backbone.update(arch=arch, with_cp=False)
    model = MODELS.build(shallow)
    model.train()
    weights = frozenset(p.untyped_storage().data_ptr() for p in model.parameters())
    height, width = (round(side * scale / 32) * 32 for side in cfg.model.data_preprocessor.size)
    batch = cfg.train_dataloader.batch_size
    measured = max(batch, 2)  # batch norm in training needs two values per channel
    classes = cfg.model.decode_head.num_classes
    images = torch.rand(measured, 3, height, width)
    samples = []
    for _ in range(measured):
        sample = SegDataSample(metainfo=dict(img_shape=(height, width), pad_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, classes, (1, height, width)))
        samples.append(sample)

    features = {}

    def run_backbone():
        features['out'] = model.backbone(images)

    backbone_total = _saved_bytes(run_backbone, weights)
    # per-stage share of the one-block run, by hooking each stage
    per_stage = []
    x = model.backbone.patch_embed(images)
    stem = _saved_bytes(lambda: model.backbone.patch_embed(images), weights)
    for level in model.backbone.levels:
        blocks = _saved_bytes(lambda: [block(x) for block in level.blocks], weights)
        per_stage.append((blocks, x.numel() * x.element_size()))
        _, x = level(x)
    block_sum = sum(blocks for blocks, _ in per_stage)
    rest = backbone_total - stem - block_sum  # norms, downsampling
    stage_bytes = sum(blocks * depth for (blocks, _), depth in zip(per_stage, depths))
    checkpointed = sum(inputs * depth for (_, inputs), depth in zip(per_stage, depths))
    checkpointed += max(blocks for blocks, _ in per_stage)  # one block recomputed
    feats = [f.detach().requires_grad_() for f in features['out']]
    head = _saved_bytes(
        lambda: model.decode_head.loss(feats, samples, cfg.model.train_cfg), weights
    )
    if cfg.model.get('auxiliary_head'):
        head += _saved_bytes(
            lambda: model.auxiliary_head.loss(feats, samples, cfg.model.train_cfg), weights
        )
    factor = batch / measured / scale**2
    result = dict(
        parameters=params / 1e9,
        static=params * 16 / GB,
        backbone_activations=(stem + rest + stage_bytes) * factor / GB,
        backbone_activations_cp=(stem + rest + checkpointed) * factor / GB,
        head_activations=head * factor / GB,
    )
    fixed = result['static'] + result['head_activations']
    result['total'] = fixed + result['backbone_activations']
    result['total_cp'] = fixed + result['backbone_activations_cp']
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    result = estimate(args.config, args.scale)
    print(
        f'{osp.basename(args.config)}: {result["parameters"]:.3f}B parameters; '
        f'params + grads + AdamW {result["static"]:.1f} GiB; activations: heads '
        f'{result["head_activations"]:.1f} GiB, backbone {result["backbone_activations"]:.1f} '
        f'GiB ({result["backbone_activations_cp"]:.1f} GiB with with_cp); total per GPU '
        f'{result["total"]:.1f} GiB ({result["total_cp"]:.1f} GiB with with_cp)'
    )


if __name__ == '__main__':
    main()
