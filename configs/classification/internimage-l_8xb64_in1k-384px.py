# InternImage-L, ImageNet-22K pre-trained, fine-tuned on ImageNet-1K at 384
# (official internimage_l_22kto1k_384: 87.7 top-1, 223M params).
# Official fine-tune recipe (classification/configs/without_lr_decay/, the one the
# published results come from): 20 epochs (2 warmup), batch 512 at AdamW lr 2e-5, wd 0.05,
# one lr for every parameter, label smoothing 0.3, no Mixup/CutMix/random erasing, EMA,
# gradient checkpointing. Here 8 GPUs x 64; other totals rescale the lr. The layer-decay
# recipe of the official top-level yaml: internimage-l_layer-decay_8xb64_in1k-384px.py.
# A 22K checkpoint's 21,841-class head maps to the 1K classes with
# tools/map_head_22k_to_1k.py.
# Set model.backbone.init_cfg / load_from to the 22K checkpoint to fine-tune.
_base_ = './internimage-t_8xb128_in1k.py'

img_size = 384
model = dict(
    backbone=dict(arch='l', with_cp=True),  # drop path 0.1, as T
    head=dict(in_channels=1280, loss=dict(label_smooth_val=0.3)),
    train_cfg=dict(_delete_=True),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        # pad with the (rounded) BGR mean, as mmpretrain's ImageNet pipelines
        hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic'),
    ),
    dict(type='PackInputs'),
]
# T's test pipeline (short side to the crop size, centre crop) at 384 px.
test_pipeline = _base_.test_pipeline
test_pipeline[1].scale = test_pipeline[2].crop_size = img_size
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# T's parameter rule (no weight decay on 1-D parameters and biases), at the fine-tune lr.
optim_wrapper = dict(optimizer=dict(lr=2e-5))
auto_scale_lr = dict(base_batch_size=512)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=2),
]
train_cfg = dict(max_epochs=20)
