# COCO-Stuff 10k (mmseg's dataset and 512x512 training pipeline, labels shifted by one as
# the official reduce_zero_label=True) with the official test pipeline: short side 512,
# sides rounded to a multiple of 32.
_base_ = 'mmseg::_base_/datasets/coco-stuff10k.py'

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
