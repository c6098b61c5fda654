# InternImage-H fine-tuning with sharded parameters, gradients and optimizer state
# (mmengine FlexibleRunner + FSDPStrategy) and activation checkpointing (with_cp, from the
# base recipe):
#   tools/dist_train.sh configs/classification/internimage-h_fsdp-cp_in1k-640px.py 8
# Same recipe as internimage-h_8xb16-accum4_in1k-640px.py except what FSDP requires:
# - one lr for all parameters: the layer-wise lr decay and the 0.1x DCN lr are rules on
#   whole parameters, and the optimizer only sees 1-D shards;
# - the optimizer is built on 1-D shards, so "no weight decay" is chosen by module type
#   (norms), name (biases, layer-scale gammas) instead of by ndim (flat_decay_mult);
# - no EMAHook (mmengine's EMA copies the whole unsharded model on every rank).
_base_ = './internimage-h_8xb16-accum4_in1k-640px.py'

runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    # Names and module types of the original parameters stay visible to the optimizer
    # constructor and to checkpoints.
    model_wrapper=dict(use_orig_params=True),
)
optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'gamma': dict(decay_mult=0.0)},
    ),
)
custom_hooks = []
