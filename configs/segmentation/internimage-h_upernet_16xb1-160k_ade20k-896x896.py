# UperNet + InternImage-H (joint 427M -> ImageNet-22K pre-trained) on ADE20K, 896x896 crops,
# 160k iterations. Official recipe (upernet_internimage_h_896_160k_ade20k): 16 GPUs x 1
# image, AdamW lr 2e-5, layer decay 0.95 over 50 layers, drop path 0.4, no layer scale,
# gradient checkpointing, gradient clipping at max norm 0.1; whole-image inference with
# the short side at 896.
# Target (official, single scale): mIoU 59.9.
_base_ = './internimage-l_upernet_8xb2-160k_ade20k-640x640.py'

pretrained = (
    'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_h_jointto22k_384.pth'
)
crop_size = (896, 896)
test_scale = (3584, 896)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='h',  # layer scale None, offset scale 1.0: the arch's
        drop_path_rate=0.4,
        out_indices=(0, 1, 2, 3),
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    decode_head=dict(in_channels=[320, 640, 1280, 2560]),
    auxiliary_head=dict(in_channels=1280),
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
# 16 GPUs x 1 image, as the official run; the lr is for that total of 16.
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
