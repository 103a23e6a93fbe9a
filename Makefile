# Two commands set up everything on a fresh machine (no GPU, only the package registries):
#   make demo   trains briefly on the embedded dataset and evaluates in Hopper-v5
#   make test   runs the test suite
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# d3rlpy's own virtualenv (baselines-env), which the tests of its training script use
BASELINES_STAMP := .venv-baselines/.installed

.PHONY: demo test lint bench docs baselines-env clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	# the CPU build; on a GPU machine install a CUDA build of torch first (see README)
	$(PYTHON) -m pip install --quiet "torch==2.13.0"
	$(PYTHON) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

DEMO := runs/demo
demo: $(STAMP)
	rm -rf $(DEMO)
	$(VENV)/bin/trajdiff data info default --expertise
	$(VENV)/bin/trajdiff train --dataset default --out $(DEMO) --updates 2000 --eval-every 500 \
		--eval-episodes 5 --checkpoint-every 500 --history-len 4 --n-step 3 --expertise-weighting --device auto
	$(VENV)/bin/trajdiff eval $(DEMO) --episodes 10
	@echo
	@echo "demo outputs:"
	@echo "  $(DEMO)/expertise.png       p(expert) per episode of the embedded dataset, by source (random, medium)"
	@echo "  $(DEMO)/expertise.json      the expertise model: components, BIC, p(expert) per episode"
	@echo "  $(DEMO)/learning-curve.png  normalised score and BC loss against updates"
	@echo "  $(DEMO)/progress.csv        one row per evaluation (scores, losses, weights, timings)"
	@echo "  $(DEMO)/config.json         the resolved config, device and library versions"
	@echo "  $(DEMO)/checkpoint.pt       the trained agent (trajdiff eval / trajdiff export)"
	@echo "  $(DEMO)/tensorboard/        tensorboard --logdir $(DEMO)/tensorboard"

test: $(STAMP) $(BASELINES_STAMP)
	$(PYTHON) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check trajdiff tests benchmarks

bench: $(STAMP)
	$(PYTHON) benchmarks/sampler.py

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

# d3rlpy 2.8.1 pins gymnasium 1.0.0: the baselines train in a virtualenv of their own
$(BASELINES_STAMP):
	python3 -m venv .venv-baselines
	.venv-baselines/bin/python -m pip install --quiet "torch==2.13.0" "d3rlpy==2.8.1" h5py
	touch $(BASELINES_STAMP)

baselines-env: $(BASELINES_STAMP)

clean:
	rm -rf $(VENV) .venv-baselines
