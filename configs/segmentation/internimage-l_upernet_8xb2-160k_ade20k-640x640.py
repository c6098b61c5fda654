# UperNet + InternImage-L (ImageNet-22K pre-trained) on ADE20K, 640x640 crops,
# 160k iterations. Official recipe: the T recipe with AdamW lr 2e-5, layer
# decay 0.94 over 37 layers, drop path 0.4, offset scale 2.0, gradient clipping at
# max norm 0.1.
# Target (official, single scale): mIoU 53.9.
_base_ = './internimage-t_upernet_8xb2-160k_ade20k-512x512.py'

pretrained = (
    'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_l_22k_192to384.pth'
)
crop_size = (640, 640)
test_scale = (2560, 640)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='l',
        drop_path_rate=0.4,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    decode_head=dict(in_channels=[160, 320, 640, 1280]),
    auxiliary_head=dict(in_channels=640),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=test_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(lr=2e-5),
    paramwise_cfg=dict(layer_decay_rate=0.94),
    clip_grad=dict(max_norm=0.1, norm_type=2),
)
