# InternImage-L, ImageNet-22K pre-trained, fine-tuned on ImageNet-1K at 384
# (official internimage_l_22kto1k_384: 87.7 top-1, 223M params).
# Official fine-tune recipe: 20 epochs (2 warmup), AdamW lr 2e-5 per 512 images, wd 0.05,
# label smoothing 0.3, no Mixup/CutMix/random erasing, EMA, gradient checkpointing.
# Set model.backbone.init_cfg / load_from to the 22K checkpoint to fine-tune.
_base_ = './internimage-t_8xb128_in1k.py'

img_size = 384
model = dict(
    backbone=dict(arch='l', with_cp=True),  # drop path 0.1, as T
    head=dict(in_channels=1280, loss=dict(label_smooth_val=0.3)),
    train_cfg=dict(_delete_=True),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        # pad with the (rounded) BGR mean, as mmpretrain's ImageNet pipelines
        hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic'),
    ),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge', scale=img_size, edge='short', backend='pillow', interpolation='bicubic'
    ),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=2e-5 * 1024 / 512))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=2),
]
train_cfg = dict(max_epochs=20)
