#!/usr/bin/env bash
# Multi-GPU training on one node:  tools/dist_train.sh CONFIG GPUS [train.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [tools/train.py arguments]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
exec "$(dirname "$0")/dist_launch.sh" "$GPUS" train.py "$CONFIG" "$@"
