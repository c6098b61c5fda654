# SegFormer head + InternImage-L (ImageNet-22K weights) on Mapillary Vistas v1.2 (training
# + validation splits, labels merged into the 19 Cityscapes classes), 512x1024 crops,
# 80k iterations, validated on Cityscapes val: the pre-training of the Cityscapes
# SegFormer-L. Official recipe (segformer_internimage_l_512x1024_80k_mapillary): 8 GPUs x
# 2 images, AdamW lr 2e-5, layer decay 0.94 over 37 layers, gradient clipping at max norm
# 0.1, drop path 0.4, offset scale 2.0, post-norm; whole-image inference at 2048x1024.
# Target: the official model zoo publishes no mIoU for this pre-training stage.
_base_ = [
    '../_base_/models/segformer_internimage-l.py',
    '../_base_/datasets/mapillary2cityscapes_512x1024.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/internimage-seg_80k.py',
]

custom_imports = dict(
    imports=['internimage', 'internimage.datasets.transforms'], allow_failed_imports=False
)

model = dict(data_preprocessor=dict(size=(512, 1024)))
optim_wrapper = dict(
    optimizer=dict(lr=2e-5),
    paramwise_cfg=dict(layer_decay_rate=0.94),
    clip_grad=dict(max_norm=0.1, norm_type=2),
)
