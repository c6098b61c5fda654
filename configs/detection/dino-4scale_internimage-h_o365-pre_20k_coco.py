# DINO (4 scales) + InternImage-H, fine-tuned on COCO from Objects365 pre-training.
# Official recipe (dino_4scale_internimage_h_objects365_coco_ss): 1 image per GPU,
# 20k iterations at a constant AdamW lr 1e-4 (wd 1e-4) after a 500-iteration warm-up,
# layer decay 0.94 over 50 layers with offset lr x0.001, gradient clipping 0.1; drop path
# 0.5, no layer scale, gradient checkpointing (backbone blocks; the official also
# checkpoints the transformer FFNs, here whole encoder layers through mmdet's num_cp,
# which needs fairscale); 1000 denoising queries; large-scale
# jitter (long side 2000, short side 600-1800), test at 2000x1000; at most 300
# detections per image. The official file names no starting weights (init_cfg=None):
# give the Objects365-pre-trained DINO-H as load_from (mmdet 2.x files convert with
# tools/convert_checkpoint.py).
# Target (official): none published for this config in the model zoo.
_base_ = './dino-4scale_internimage-t_8xb2-12e_coco.py'

model = dict(
    backbone=dict(arch='h', drop_path_rate=0.5, layer_scale=None, init_cfg=None),
    neck=dict(in_channels=[640, 1280, 2560]),
    encoder=dict(num_cp=6),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=1000)),
    test_cfg=dict(max_per_img=300),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=[(2000, 600), (2000, 1800)], keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2000, 1000), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'),
    ),
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.94, offset_lr_scale=1e-3))
max_iters = 20000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=200)
param_scheduler = [dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500)]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=200))
log_processor = dict(by_epoch=False)
