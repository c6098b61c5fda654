# InternImage-G, pre-trained on large joint data, fine-tuned on ImageNet-1K at 512
# (official internimage_g_22kto1k_512: 3.0B params). Recipe and head as for H.
_base_ = './internimage-h_8xb16-accum4_in1k-640px.py'

img_size = 512
model = dict(backbone=dict(arch='g', drop_path_rate=0.4), head=dict(in_channels=4096))

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
