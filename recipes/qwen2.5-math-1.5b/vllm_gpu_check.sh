#!/usr/bin/env bash
# make gpu-check-vllm: the vLLM backend on one GPU, as one command (needs the Hub; docs/vllm.md). It
# 1. makes the project's .venv (make install) and vLLM's own .venv-vllm with the GPU build (VLLM_PACKAGE,
#    vllm==0.33.0: a CPU build already there is removed first);
# 2. exports MATH-500's questions to outputs/math500/test.jsonl (HuggingFaceH4/MATH-500);
# 3. serves Qwen2.5-Math-1.5B-Instruct from .venv-vllm on 127.0.0.1 and runs best-of-N and beam search
#    (search_qwen_prm.yaml: Qwen2.5-Math-PRM-7B scores the steps, in this process) on the first LIMIT questions
#    at budget N through `python -m search run --backend vllm`, then stops the server;
# 4. prints, per strategy, accuracy, generated tokens/s and the cached-prefix share (bench.vllm_check), also
#    written to OUT/check.{json,md}.
# Settings (environment): LIMIT (8), N (16), STRATEGIES, RECIPE, VLLM_PACKAGE, VLLM_ARGS, OUT, RUN_ARGS.
set -euo pipefail
cd "$(dirname "$0")/../.."
LIMIT=${LIMIT:-8}
N=${N:-16}
STRATEGIES=${STRATEGIES:-best_of_n,beam:m=4}
RECIPE=${RECIPE:-recipes/qwen2.5-math-1.5b/search_qwen_prm.yaml}
VLLM_PACKAGE=${VLLM_PACKAGE:-vllm==0.33.0}
VLLM_ARGS=${VLLM_ARGS:---gpu-memory-utilization 0.4 --max-model-len 4096}
OUT=${OUT:-outputs/qwen2.5-math-1.5b/vllm_gpu_check}
RUN_ARGS=${RUN_ARGS:-}
PY=.venv/bin/python

make install
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: no CUDA in .venv (torch ' + torch.__version__ + '): install a CUDA build of torch there first')"
want=${VLLM_PACKAGE#*==}
if [ -x .venv-vllm/bin/python ] && ! .venv-vllm/bin/pip show "${VLLM_PACKAGE%%==*}" 2>/dev/null | grep -qx "Version: $want"; then
    echo "replacing .venv-vllm (not $VLLM_PACKAGE)"
    rm -rf .venv-vllm
fi
make vllm-venv VLLM_PACKAGE="$VLLM_PACKAGE"
test -s outputs/math500/test.jsonl ||
    $PY -m data.export_questions --task math --source HuggingFaceH4/MATH-500 --output_file outputs/math500/test.jsonl
$PY -m bench.vllm_check --run_recipe "$RECIPE" --run_args "--dataset outputs/math500/test.jsonl $RUN_ARGS" \
    --strategies "$STRATEGIES" --budget "$N" --limit "$LIMIT" --vllm_args "$VLLM_ARGS" --output_dir "$OUT"
