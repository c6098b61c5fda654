# FlashInternImage-B (DCNv4), ImageNet-1K from scratch at 224
# (official flash_intern_image_b_1k_224: 84.9 top-1, 97M params). Recipe of InternImage-B.
_base_ = './internimage-b_8xb128_in1k.py'

model = dict(backbone=dict(type='FlashInternImage'))
