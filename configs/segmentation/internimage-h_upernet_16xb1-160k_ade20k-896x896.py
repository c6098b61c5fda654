# UperNet + InternImage-H (joint 427M -> ImageNet-22K pre-trained) on ADE20K, 896x896 crops,
# 160k iterations. Official recipe (upernet_internimage_h_896_160k_ade20k): 16 GPUs x 1
# image, AdamW lr 2e-5, layer decay 0.95 over 50 layers, drop path 0.5, no layer scale,
# no gradient checkpointing, gradient clipping at max norm 0.1; whole-image inference
# with the short side at 896.
# Target (official, single scale): mIoU 59.9.
_base_ = [
    '../_base_/models/upernet_internimage.py',
    '../_base_/datasets/ade20k_896x896.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/internimage-seg_160k.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

pretrained = (
    'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_h_jointto22k_384.pth'
)
num_classes = 150
model = dict(
    data_preprocessor=dict(size=(896, 896)),
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='h',  # layer scale None, offset scale 1.0: the arch's
        drop_path_rate=0.5,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    decode_head=dict(in_channels=[320, 640, 1280, 2560], num_classes=num_classes),
    auxiliary_head=dict(in_channels=1280, num_classes=num_classes),
)
# 16 GPUs x 1 image, as the official run; the lr is for that total of 16.
train_dataloader = dict(batch_size=1)
optim_wrapper = dict(
    optimizer=dict(lr=2e-5),
    paramwise_cfg=dict(layer_decay_rate=0.95),
    clip_grad=dict(max_norm=0.1, norm_type=2),
)
