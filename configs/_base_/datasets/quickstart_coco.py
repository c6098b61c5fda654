# The quick-start detection data (python tools/make_quickstart_data.py writes it to
# data/quickstart/coco/): 128x128 scenes of circles, squares and triangles with boxes and
# masks, COCO-format. The names carry a ``quickstart_`` prefix so that this file can sit
# beside a model's own base in a ``_base_`` list; a config takes them with
#   train_dataloader = {{_base_.quickstart_train_dataloader}}
quickstart_data_root = 'data/quickstart/coco/'
_image_scale = (128, 128)  # the generator's default image size
quickstart_classes = ('circle', 'square', 'triangle')

_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=_image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=_image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'),
    ),
]
_metainfo = dict(classes=quickstart_classes)
quickstart_train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(
        data_root=quickstart_data_root,
        metainfo=_metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=_train_pipeline,
    ),
)
quickstart_val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(
        data_root=quickstart_data_root,
        metainfo=_metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=_test_pipeline,
    ),
)
quickstart_evaluator = dict(ann_file=quickstart_data_root + 'annotations/instances_val.json')
