# CrowdHuman (full-body boxes, one class) in mmdet 3.x's own format: the original odgt
# annotation files, read by mmdet's CrowdHumanDataset, scored by CrowdHumanMetric (AP,
# log-average miss rate MR^-2, Jaccard index). Data layout (www.crowdhuman.org):
#   data/CrowdHuman/annotation_{train,val}.odgt, data/CrowdHuman/Images/*.jpg
dataset_type = 'CrowdHumanDataset'
data_root = 'data/CrowdHuman/'

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'),
    ),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotation_train.odgt',
        data_prefix=dict(img='Images/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotation_val.odgt',
        data_prefix=dict(img='Images/'),
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CrowdHumanMetric', ann_file=data_root + 'annotation_val.odgt', metric=['AP', 'MR', 'JI']
)
test_evaluator = val_evaluator
