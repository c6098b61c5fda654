# InternImage-G, pre-trained on large joint data, fine-tuned on ImageNet-1K at 512
# (official without_lr_decay/internimage_g_22kto1k_512: 90.1 top-1, 3.0B params).
# Recipe and head as for H.
_base_ = './internimage-h_8xb16-accum4_in1k-640px.py'

img_size = 512
model = dict(backbone=dict(arch='g', drop_path_rate=0.4), head=dict(in_channels=4096))

# H's fine-tune pipelines at 512 px.
train_pipeline = _base_.train_pipeline
test_pipeline = _base_.test_pipeline
train_pipeline[1].scale = test_pipeline[1].scale = test_pipeline[2].crop_size = img_size
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
