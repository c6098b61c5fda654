# The official InternImage segmentation schedule (T/S/B values; L/XL/H configs change the
# lr, layer decay and clipping): AdamW lr 6e-5, betas (0.9, 0.999), weight decay 0.05,
# layer-wise lr decay through the backbone's layers, 1500-iteration linear warm-up from
# 1e-6 of the lr, then linear (poly, power 1) decay to 0; 160k iterations.
_base_ = 'mmseg::_base_/schedules/schedule_160k.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='InternImageLayerDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=1.0),  # the backbone numbers the layers
)
max_iters = 160000
warmup_iters = 1500
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters, end=max_iters),
]
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1, save_best='mIoU'))
