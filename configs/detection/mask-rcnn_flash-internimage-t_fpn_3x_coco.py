# Mask R-CNN + FlashInternImage-T (DCNv4), 3x schedule (36 epochs, lr steps at 27 and 33)
# with DETR-style multi-scale training (short side 480-800, or resize 400-600, crop 384-600
# and resize 480-800), 8 GPUs x 2 images, AdamW lr 1e-4, layer decay 1.0: the InternImage-T
# 3x recipe, whose pipeline this config inherits.
# Target (official mask_rcnn_flash_intern_image_t_fpn_3x_coco): box AP 49.5, mask AP 44.0.
_base_ = './mask-rcnn_internimage-t_fpn_3x_coco.py'

pretrained = 'https://huggingface.co/OpenGVLab/DCNv4/resolve/main/flash_intern_image_t_1k_224.pth'

model = dict(
    backbone=dict(
        type='FlashInternImage',
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    )
)
