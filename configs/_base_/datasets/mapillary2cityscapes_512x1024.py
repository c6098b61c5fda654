# Mapillary Vistas v1.2 (mmseg's MapillaryDataset_v1: training + validation splits) with
# its 66 labels merged into the 19 Cityscapes classes (the official MapillaryHack;
# internimage.datasets.transforms.MergeSegLabels), validated on Cityscapes val: the
# official pre-training stage of the Mapillary -> Cityscapes recipes. Short side 1024 x
# 0.5-1.0, 512x1024 crops; test at 2048x1024.
_base_ = 'mmseg::_base_/datasets/cityscapes.py'

crop_size = (512, 1024)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='MergeSegLabels', groups='mapillary_v1_to_cityscapes'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 1.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(
                type='MapillaryDataset_v1',
                data_root='data/mapillary/',
                data_prefix=dict(img_path=f'{split}/images', seg_map_path=f'{split}/v1.2/labels'),
                pipeline=train_pipeline,
            )
            for split in ('training', 'validation')
        ],
    )
)
