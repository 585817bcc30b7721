# mmxmodal: one-command environment, tests and demo.
#   make env        build the pinned environment into .venv (idempotent, seconds when up to date)
#   make test       environment + the whole test suite (fast + slow acceptance tests)
#   make test-fast  environment + the fast suite (< 10 min on 2 cores)
#   make demo       environment + the main job on embedded synthetic data -> work_dirs/demo/report.md
#   make data       generate the embedded synthetic data sets under data/
#   make benchmark  speed / memory benchmarks -> benchmarks/results/
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
export HF_HUB_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1
# One BLAS thread per process: on 2 cores, tests and dist runs start several processes (oversubscribed BLAS
# threads made sparse convolutions 30-50x slower here). Override with `make test OMP_NUM_THREADS=2`.
OMP_NUM_THREADS ?= 1
export OMP_NUM_THREADS

.PHONY: env test test-fast demo data benchmark clean-env

env:
	@VENV=$(VENV) bash tools/setup_env.sh

test: env
	$(PY) -m pytest -ra --durations=15 $(PYTEST_ARGS)

test-fast: env
	$(PY) -m pytest -ra -m "not slow" --durations=15 $(PYTEST_ARGS)

demo: env
	$(PY) tools/demo.py --work-dir work_dirs/demo

data: env
	$(PY) tools/create_synthetic_data.py objects --out-dir data/synthetic_objects --num-objects 320 --seed 0
	$(PY) tools/create_synthetic_data.py objects --out-dir data/synthetic_objects_hard --class-set hard --num-objects 480 --seed 0 --num-points 1024 --image-size 64 --num-views 4 --cls-views 1 --cls-train-per-class 24 --cls-test-per-class 20 --no-scanobjectnn
	$(PY) tools/create_synthetic_data.py nuscenes --out-dir data/synthetic_nuscenes --num-scenes 4 --samples-per-scene 10 --sweeps 3 --seed 0
	$(PY) tools/create_synthetic_data.py kitti --out-dir data/synthetic-kitti --num-scenes 10 --samples-per-scene 4 --seed 0
	$(PY) tools/create_synthetic_data.py semantickitti --out-dir data/synthetic-semantickitti --seed 0

# the speed / memory benchmarks; benchmarks/*_val_diagnosis.py and *_val_selection.py are protocol records run by hand
BENCHMARKS := benchmarks/crosspoint_throughput.py benchmarks/seg_pretrain_benchmark.py benchmarks/simipu_correspondence.py

benchmark: env
	@for b in $(BENCHMARKS); do echo "== $$b"; $(PY) $$b || exit 1; done

clean-env:
	rm -rf $(VENV)
