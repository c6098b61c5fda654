# Cascade Mask R-CNN + InternImage-L, 3x schedule (36 epochs) with DETR-style
# multi-scale training: either resize the short side to 480-800, or resize to
# 400-600, crop 384-600 and resize to 480-800. Official recipe: 4 nodes x
# 8 GPUs x 2 images (batch 64), AdamW lr 2e-4, layer decay 0.90 (offset_lr_scale 0.01,
# which touches no Cascade parameter), EMA of the weights (momentum 1e-4).
# The lr follows the total batch (auto_scale_lr on, base 64): 32 GPUs x 2 give the
# official 2e-4, 8 GPUs x 2 give 5e-5.
# Target (official): box AP 56.1, mask AP 48.5.
_base_ = [
    './cascade-mask-rcnn_internimage-l_fpn_1x_coco.py',
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

optim_wrapper = dict(
    optimizer=dict(lr=2e-4), paramwise_cfg=dict(layer_decay_rate=0.90, offset_lr_scale=0.01)
)
auto_scale_lr = dict(enable=True, base_batch_size=64)
custom_hooks = [
    dict(
        type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0001, update_buffers=True, priority=49
    )
]
