# Mask R-CNN + InternImage-T, 3x schedule (36 epochs, lr steps at epochs 27 and 33) with
# the official DETR-style multi-scale training: flip, then either resize the short side to
# one of 480, 512, ..., 800 (long side <= 1333), or resize to 400/500/600, crop 384-600
# and resize to 480-800 as before.
# Target (official): box AP 49.1, mask AP 43.7.
_base_ = [
    './mask-rcnn_internimage-t_fpn_1x_coco.py',
    '../_base_/datasets/detr_multiscale_pipelines.py',
]

train_dataloader = dict(dataset=dict(pipeline={{_base_.detr_multiscale_instance_pipeline}}))

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1
    ),
]
