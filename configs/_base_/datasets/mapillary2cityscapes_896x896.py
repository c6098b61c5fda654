# Mapillary Vistas v1.2 merged into the 19 Cityscapes classes (as
# ./mapillary2cityscapes_512x1024.py) with the official Mask2Former-H pipeline: short side
# 1024 x 0.5-2.0, 896x896 crops; test at 2048x1024 (the official rounding of the test
# size to a multiple of 32 is a no-op for Cityscapes' 2048x1024 images).
_base_ = './mapillary2cityscapes_512x1024.py'

crop_size = (896, 896)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='MergeSegLabels', groups='mapillary_v1_to_cityscapes'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(
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
