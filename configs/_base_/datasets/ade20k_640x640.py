# ADE20K at 640x640 crops (mmseg's ade20k_640x640 training pipeline: short side 640 x
# 0.5-2.0) with the official InternImage test pipeline (short side 640, sides rounded
# to a multiple of 32).
_base_ = 'mmseg::_base_/datasets/ade20k_640x640.py'

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
