# Every target installs what it needs: on a fresh clone `make test` or `make train-policy` just works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RECIPES := recipes/arith-tiny
OUT := outputs/arith-tiny
POLICY := $(OUT)/policy
PRM_DATA := $(OUT)/prm_data
PRM := $(OUT)/prm
QUESTIONS := $(OUT)/test_questions.jsonl
REV_DATA := $(OUT)/revision_data

.PHONY: install test lint train-policy policy-report bench-generate build-prm-data bench-prm-data train-prm prm-eval bench-prm-score search verifier-gap build-revision-data train-revision clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU wheel first, so that no dependency pulls a multi-GB CUDA build of torch
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Train the tiny policy (about 5 minutes on 2 CPU cores), then report sampled pass@1 per level.
train-policy: install
	$(BIN)/python -m training.policy --config $(RECIPES)/policy.yaml $(ARGS)
	$(BIN)/python -m eval.policy_report --policy $(POLICY)

$(POLICY)/model.safetensors: | install
	$(MAKE) train-policy

policy-report: $(POLICY)/model.safetensors
	$(BIN)/python -m eval.policy_report --policy $(POLICY)

bench-generate: $(POLICY)/model.safetensors
	$(BIN)/python -m bench.generate --policy $(POLICY)

# MC step labels from the policy (trained first if missing); resumable: rerun after a kill.
build-prm-data: $(POLICY)/model.safetensors
	$(BIN)/python -m data.build_prm_data --config $(RECIPES)/prm_data.yaml $(ARGS)

bench-prm-data: $(POLICY)/model.safetensors
	$(BIN)/python -m bench.prm_data --policy $(POLICY)

$(PRM_DATA)/dataset/dataset_dict.json: | $(POLICY)/model.safetensors
	$(MAKE) build-prm-data

# The whole chain on a fresh clone: policy and PRM data if missing, then the PRM and its evaluation.
train-prm: $(PRM_DATA)/dataset/dataset_dict.json
	$(BIN)/python -m training.prm --config $(RECIPES)/prm.yaml $(ARGS)
	$(BIN)/python -m eval.prm_eval --policy $(POLICY) --verifier $(PRM)

$(PRM)/model.safetensors: | install
	$(MAKE) train-prm

prm-eval: $(PRM)/model.safetensors
	$(BIN)/python -m eval.prm_eval --policy $(POLICY) --verifier $(PRM)

bench-prm-score: $(PRM)/model.safetensors
	$(BIN)/python -m bench.prm_score --policy $(POLICY) --verifier $(PRM)

$(QUESTIONS): $(POLICY)/model.safetensors
	$(BIN)/python -m data.export_questions --policy $(POLICY) --split test --per_level 10 --out $@

# Every strategy over budgets on held-out questions with the policy and the PRM (trained first if missing);
# per-question results in outputs/arith-tiny/search/results.jsonl, resumable; ends with the summary table.
search: $(PRM)/model.safetensors $(QUESTIONS)
	$(BIN)/python -m search run --config $(RECIPES)/search.yaml $(ARGS)

# Revision trajectories (Snell et al.) from the policy (trained first if missing); resumable.
build-revision-data: $(POLICY)/model.safetensors
	$(BIN)/python -m data.build_revision_data --config $(RECIPES)/revision_data.yaml $(ARGS)

$(REV_DATA)/dataset/dataset_dict.json: | $(POLICY)/model.safetensors
	$(MAKE) build-revision-data

# The revision model: SFT of the policy on revision trajectories (both built first if missing).
train-revision: $(REV_DATA)/dataset/dataset_dict.json
	$(BIN)/python -m training.revision --config $(RECIPES)/revision.yaml $(ARGS)

# The same strategies with the trained PRM and with the arith ground-truth verifier (a perfect PRM).
verifier-gap: $(PRM)/model.safetensors
	$(BIN)/python -m eval.verifier_gap --policy $(POLICY) --verifier $(PRM)

clean:
	rm -rf outputs
