#!/usr/bin/env bash
# torchrun launcher shared by dist_train.sh and dist_test.sh:
#   tools/dist_launch.sh GPUS SCRIPT [SCRIPT arguments]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
set -euo pipefail
GPUS=$1
SCRIPT=$2
shift 2
TOOLS=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$GPUS" \
    "$TOOLS/$SCRIPT" "$@" --launcher pytorch
