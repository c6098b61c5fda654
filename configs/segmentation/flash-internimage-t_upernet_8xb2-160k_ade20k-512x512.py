# UperNet + FlashInternImage-T (DCNv4) on ADE20K, 512x512 crops, 160k iterations.
# Official upernet_flash_internimage_t_512_160k_ade20k: the InternImage-T recipe with drop
# path 0.2, offset scale 1.0, gradient checkpointing and the FlashInternImage-T weights;
# its test pipeline is mmseg's ADE20K one (the official config defines one with the
# rounding to a multiple of 32 but leaves it unused, commented out in its data dict).
# Target (official, single scale): mIoU 49.3.
_base_ = './internimage-t_upernet_8xb2-160k_ade20k-512x512.py'

pretrained = 'https://huggingface.co/OpenGVLab/DCNv4/resolve/main/flash_intern_image_t_1k_224.pth'

model = dict(
    backbone=dict(
        type='FlashInternImage',
        offset_scale=1.0,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    )
)

# mmseg's ADE20K test pipeline (no rounding of the size to a multiple of 32).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
