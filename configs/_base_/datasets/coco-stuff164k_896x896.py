# COCO-Stuff 164k (mmseg's COCOStuffDataset, 171 classes, labels *_labelTrainIds.png) at
# 896x896 crops, as the official Mask2Former-H recipe: short side 896 x 0.5-2.0 (long
# side at most 3584); test at short side 896, sides rounded to a multiple of 32.
_base_ = 'mmseg::_base_/datasets/coco-stuff164k.py'

crop_size = (896, 896)
scale = (3584, 896)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
