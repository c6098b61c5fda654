# UperNet + InternImage-T on ADE20K, 512x512 crops, 160k iterations.
# Official recipe: 8 GPUs x 2 images, AdamW lr 6e-5, betas (0.9, 0.999),
# wd 0.05, layer decay 1.0 over 30 layers, 1500-iteration linear warm-up then
# linear (power 1) decay to 0, drop path 0.2, layer scale 1.0.
# Target (official, single scale): mIoU 47.9.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_t_1k_224.pth'
crop_size = (512, 512)
test_scale = (2048, 512)
num_classes = 150

model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='t',
        drop_path_rate=0.2,
        layer_scale=1.0,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    decode_head=dict(in_channels=[64, 128, 256, 512], num_classes=num_classes),
    auxiliary_head=dict(in_channels=256, num_classes=num_classes),  # stage 3
    test_cfg=dict(mode='whole'),
)

# Whole-image inference on inputs resized to a multiple of the backbone
# stride; labels load at the original size (predictions are resized back).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2)
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='InternImageLayerDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=1.0),  # the backbone numbers the layers
)
max_iters = 160000
warmup_iters = 1500
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters, end=max_iters),
]
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=16000, max_keep_ckpts=1, save_best='mIoU')
)
