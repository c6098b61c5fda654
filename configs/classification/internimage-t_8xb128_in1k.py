# InternImage-T, ImageNet-1K from scratch at 224 (official: 83.5 top-1, 30M params, 5G FLOPs).
# Recipe of the official internimage_t_1k_224: AdamW lr 5e-4 per 512 images, wd 0.05,
# 300 epochs (20 warmup), RandAugment + Mixup/CutMix + label smoothing 0.1,
# random erasing 0.25, grad clip 5, EMA 0.9999. Test: resize short side to 224, crop 224.
# Official batch: 32 GPUs x 128 = 4096 at lr 4e-3, fp16. Here 128 per GPU with the lr
# scaled linearly from that point (auto_scale_lr on): 8 GPUs give 1024 at 1e-3. Pass
# --amp for fp16.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

img_size = 224
model = dict(
    type='ImageClassifier',
    backbone=dict(type='InternImage', arch='t', out_indices=(3,), drop_path_rate=0.1),
    head=dict(
        type='InternImageClsHead',
        num_classes=1000,
        in_channels=512,  # stage-4 channels: 8 * arch channels
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False,
    ),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)

# The official evaluation resizes the short side to the crop size (crop ratio 1.0).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge', scale=img_size, edge='short', backend='pillow', interpolation='bicubic'
    ),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# No weight decay on 1-D parameters (norms, biases, layer-scale gammas).
optim_wrapper = dict(
    optimizer=dict(lr=5e-4 * 4096 / 512),
    paramwise_cfg=dict(
        _delete_=True, norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0
    ),
    clip_grad=dict(max_norm=5.0),
)

auto_scale_lr = dict(enable=True, base_batch_size=4096)
# Official warm-up from 5e-7 and cosine down to 5e-6 per 512 images: 1e-3 and 1e-2 of the
# lr, whatever the total batch (eta_min_ratio follows auto_scale_lr).
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=1e-2, by_epoch=True, begin=20),
]

# EMA 0.9999 per optimizer step (mmengine's EMAHook would average on every accumulated
# micro-batch of the H/G fine-tunes; without accumulation both are the same).
custom_hooks = [dict(type='OptimizerStepEMAHook', momentum=1e-4, priority='ABOVE_NORMAL')]
