# FlashInternImage-L (DCNv4), ImageNet-22K pre-trained, fine-tuned on ImageNet-1K at 384
# (official flash_intern_image_l_22kto1k_384: 88.1 top-1, 223M params).
# Fine-tune recipe of InternImage-L (20 epochs, lr 2e-5 per 512 images, label smoothing 0.3,
# EMA, gradient checkpointing). Set model.backbone.init_cfg / load_from to the 22K checkpoint.
_base_ = './internimage-l_8xb64_in1k-384px.py'

model = dict(backbone=dict(type='FlashInternImage'))
