# UperNet + InternImage-T on Cityscapes (fine annotations), 512x1024 crops, 160k iterations.
# Official recipe (upernet_internimage_t_512x1024_160k_cityscapes): 8 GPUs x 2 images,
# AdamW lr 6e-5, betas (0.9, 0.999), wd 0.05, layer decay 1.0 over 30 layers, 1500-iteration
# linear warm-up then linear decay to 0, drop path 0.2, layer scale 1.0; mmseg's Cityscapes
# pipeline (short side 1024 x 0.5-2.0, crop 512x1024); whole-image inference at 2048x1024.
# The heads predict the 19 Cityscapes classes (the official config leaves ADE20K's 150).
# Target (official, single scale): mIoU 82.58.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

pretrained = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_t_1k_224.pth'
crop_size = (512, 1024)
num_classes = 19

model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='t',
        drop_path_rate=0.2,
        layer_scale=1.0,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    decode_head=dict(in_channels=[64, 128, 256, 512], num_classes=num_classes),
    auxiliary_head=dict(in_channels=256, num_classes=num_classes),  # stage 3
    test_cfg=dict(mode='whole'),
)

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
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=16000, max_keep_ckpts=1, save_best='mIoU')
)
