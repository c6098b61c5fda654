# FlashInternImage-T (DCNv4), ImageNet-1K from scratch at 224
# (official flash_intern_image_t_1k_224: 83.6 top-1, 30M params).
# The official recipe is InternImage-T's (AdamW lr 5e-4 per 512 images, 300 epochs, drop
# path 0.1, EMA 0.9999), so only the backbone type changes.
_base_ = './internimage-t_8xb128_in1k.py'

model = dict(backbone=dict(type='FlashInternImage'))
