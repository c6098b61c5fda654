"""bfloat16 on the CPU: inference under autocast, the op's autocast rule, and mixed-precision
training with ``tools/train.py --amp`` on a machine without a GPU (docs/inference.md)."""

import pytest
import torch
from mmengine.runner import Runner

import ops_dcnv3
from internimage import InternImage, apis
from internimage.engine import CPUBFloat16AmpOptimWrapper
from tests.tasks.test_e2e import (
    LEARN_BAR_TOP1,
    LEARN_EPOCHS,
    LEARN_SPEC,
    _classifier_cfg,
)

pytestmark = pytest.mark.needs_extension

# The quick-start backbone (stage channels 32-256, 16 channels per DCNv3 group).
QUICKSTART_ARCH = dict(channels=32, depths=[1, 1, 2, 1], groups=[2, 4, 8, 16])
# Largest error of the bfloat16 features, relative to the largest float64 feature of the
# stage. bfloat16 rounds to 2^-9 relative; through the ~20 rounded layers of this backbone
# that measured 0.9-1.1 % on random weights (float32: 1e-6), so 3 % leaves room for other
# seeds and still fails if a stage computed garbage or skipped a layer's rounding badly.
BF16_FEATURE_TOLERANCE = 3e-2


def test_bfloat16_autocast_features_match_float64():
    torch.manual_seed(0)
    model = InternImage(arch=dict(QUICKSTART_ARCH), out_indices=(0, 1, 2, 3)).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model.double()(images.double())
        model.float()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            got = model(images)
    for stage, (feature, want) in enumerate(zip(got, expected)):
        assert feature.dtype == torch.bfloat16, f'stage {stage} ran in {feature.dtype}'
        error = (feature.double() - want).abs().max() / want.abs().max()
        assert error < BF16_FEATURE_TOLERANCE, f'stage {stage}: relative error {error:.3g}'


@pytest.mark.parametrize('op_name', ['dcnv3', 'dcnv4'])
def test_op_under_autocast_takes_mixed_dtypes(op_name):
    """Autocast leaves a linear's output in bfloat16 and other tensors in float32: the op
    computes in bfloat16, equal to calling it on the inputs cast by hand, and the float32
    inputs get float32 gradients."""
    gen = torch.Generator().manual_seed(0)
    value = torch.randn(1, 6, 7, 32, generator=gen).to(torch.bfloat16).requires_grad_()
    offset = torch.randn(1, 6, 7, 2 * 9 * 2, generator=gen).requires_grad_()
    mask = torch.rand(1, 6, 7, 2 * 9, generator=gen).requires_grad_()
    if op_name == 'dcnv3':
        op, extra = ops_dcnv3.dcnv3, (offset, mask)
    else:
        packed = ops_dcnv3.pack_offset_mask(offset, mask, 2)
        op, extra = ops_dcnv3.dcnv4, (packed,)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = op(value, *extra, group=2)
    assert out.dtype == torch.bfloat16
    by_hand = op(value, *[t.detach().to(torch.bfloat16) for t in extra], group=2)
    torch.testing.assert_close(out, by_hand, rtol=0, atol=0)
    out.float().sum().backward()
    assert offset.grad is not None and offset.grad.dtype == torch.float32
    assert value.grad.dtype == torch.bfloat16


def test_enable_amp_on_cpu_picks_the_bfloat16_wrapper(read_config):
    if torch.cuda.is_available():
        pytest.skip('with CUDA --amp uses mmengine AmpOptimWrapper')
    cfg = read_config('configs/quickstart/internimage-tiny_quickstart_cls.py')
    apis.enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'CPUBFloat16AmpOptimWrapper'
    apis.enable_amp_test(cfg)
    apis.enable_amp_test(cfg)  # once only
    hooks = [h for h in cfg.custom_hooks if h['type'] == 'FeatureExtractorAutocastHook']
    assert hooks == [dict(type='FeatureExtractorAutocastHook', dtype='bfloat16')]


@pytest.mark.slow
def test_mask_rcnn_tests_with_bfloat16_features(quickstart_data, tmp_path, read_config):
    """tools/test.py --amp on Mask R-CNN: the backbone and neck run in bfloat16, the RoI
    heads (mmcv RoIAlign and nms have no CPU bfloat16 kernels) in float32, and the COCO
    evaluation comes out."""
    from tests.tasks.test_e2e import QUICKSTART, SPEC, _single_process_loaders

    cfg = read_config(f'{QUICKSTART}/mask-rcnn_internimage-tiny_quickstart.py')
    cfg.work_dir = str(tmp_path)
    _single_process_loaders(cfg, batch_size=SPEC.num_train)
    coco_root = str(quickstart_data(SPEC) / 'coco') + '/'
    cfg.test_dataloader.dataset.data_root = coco_root
    cfg.test_evaluator.ann_file = coco_root + 'annotations/instances_val.json'
    cfg.model.test_cfg.rcnn.score_thr = 0.0  # untrained: keep every box
    apis.enable_amp_test(cfg)
    runner = Runner.from_cfg(cfg)
    seen = {}
    dcn = next(m for m in runner.model.backbone.modules() if isinstance(m, ops_dcnv3.DCNv3))
    dcn.register_forward_hook(lambda m, a, out: seen.update(dcnv3=out.dtype))
    runner.model.backbone.register_forward_hook(
        lambda m, a, out: seen.update(backbone=out[0].dtype)
    )
    runner.model.roi_head.bbox_head.register_forward_hook(
        lambda m, a, out: seen.update(bbox_head=out[0].dtype)
    )
    metrics = runner.test()
    assert 'coco/bbox_mAP' in metrics and 'coco/segm_mAP' in metrics
    # Inside the backbone bfloat16; its features leave it (and enter the heads) as float32.
    assert seen == {'dcnv3': torch.bfloat16, 'backbone': torch.float32, 'bbox_head': torch.float32}


def _train_classifier_amp(read_config, data_root, work_dir, lr: float):
    """The quick-start classifier trained as ``tools/train.py --amp`` does on a CPU-only
    machine; returns (top-1, dtypes the DCNv3 ops saw during training)."""
    cfg = _classifier_cfg(read_config, data_root, work_dir, batch_size=16)
    cfg.train_cfg.update(max_epochs=LEARN_EPOCHS, val_interval=LEARN_EPOCHS + 1)  # no val
    cfg.optim_wrapper.optimizer.lr = lr
    cosine = cfg.param_scheduler[-1]
    cosine.end = LEARN_EPOCHS
    cosine.eta_min = min(cosine.eta_min, lr)
    cfg.default_hooks.checkpoint.interval = LEARN_EPOCHS
    apis.enable_amp(cfg)
    runner = Runner.from_cfg(cfg)
    seen = set()
    for module in runner.model.modules():
        if isinstance(module, ops_dcnv3.DCNv3):
            module.input_proj.register_forward_hook(
                lambda m, args, out: seen.add(out.dtype) if m.training else None
            )
    runner.train()
    assert isinstance(runner.optim_wrapper, CPUBFloat16AmpOptimWrapper)
    return float(runner.test()['accuracy/top1']), seen


@pytest.mark.slow
def test_classifier_learns_with_cpu_bfloat16_amp(quickstart_data, tmp_path, read_config):
    """The learning test of test_e2e (top-1 >= 1.5x chance, lr = 0 stays below) with the
    forward and backward in bfloat16 autocast."""
    if torch.cuda.is_available():
        pytest.skip('CPU autocast is what --amp picks without CUDA')
    data_root = quickstart_data(LEARN_SPEC)
    top1, dtypes = _train_classifier_amp(read_config, data_root, tmp_path / 'learn', lr=1e-3)
    assert dtypes == {torch.bfloat16}, dtypes
    assert top1 >= LEARN_BAR_TOP1, f'top-1 {top1:.1f} % below {LEARN_BAR_TOP1:.1f} %'
    untrained, _ = _train_classifier_amp(read_config, data_root, tmp_path / 'lr0', lr=0.0)
    assert untrained < LEARN_BAR_TOP1, f'lr=0 reaches top-1 {untrained:.1f} %'
