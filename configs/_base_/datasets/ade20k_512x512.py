# ADE20K (mmseg's dataset and 512x512 training pipeline) with the official InternImage
# test pipeline: the short side at 512 (long side at most 2048), then both sides rounded
# to a multiple of 32; labels load at the original size (predictions are resized back).
_base_ = 'mmseg::_base_/datasets/ade20k.py'

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
