# InternImage-G (3.0B params) fine-tuning with FSDP and activation checkpointing: the
# G recipe with the FSDP settings of internimage-h_fsdp-cp_in1k-640px.py (repeated here:
# mmengine configs cannot inherit two bases that define the same keys).
#   tools/dist_train.sh configs/classification/internimage-g_fsdp-cp_in1k-512px.py 8
_base_ = './internimage-g_8xb16-accum4_in1k-512px.py'

runner_type = 'FlexibleRunner'
strategy = dict(type='InternImageFSDPStrategy', model_wrapper=dict(use_orig_params=True))
optim_wrapper = dict(
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'gamma': dict(decay_mult=0.0), '_bias': dict(decay_mult=0.0)},
    ),
)
custom_hooks = []
