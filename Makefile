# avsepd: the two commands a newcomer needs are `make demo` and `make test`; both run `setup`
# first (idempotent: installs only what is missing).

SHELL := /bin/bash
CARGO ?= cargo
export ORT_DYLIB_PATH ?= $(CURDIR)/.cache/onnxruntime/lib/libonnxruntime.so.1.32.0
PY := $(CURDIR)/.cache/venv/bin/python
PREFIX ?= /usr/local
# Training (training/requirements-train.txt, its own venv: torch is large). CONFIG picks the run.
TRAIN_PY ?= $(CURDIR)/.cache/venv-train/bin/python
CONFIG ?= training/configs/tiny.toml

.PHONY: setup build demo test test-rust test-python lint bench demo-clip signal-fixture clean \
	synth train export eval test-training

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release --locked

# Serve the bundled clip over an in-process RTSP server, run the daemon on it, record to out/demo/.
demo: build
	./target/release/avsepd demo --out out/demo

test: setup lint test-rust test-python

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

test-rust:
	$(CARGO) test --locked

test-python:
	$(PY) -m pytest -q training/tests

# criterion DSP bench, then the end-to-end latency / real-time factor / memory bench.
bench: build
	$(CARGO) bench --locked --bench dsp
	./target/release/avsepd bench --duration 10

# Regenerate the bundled demo clip and its ground truth (deterministic).
demo-clip: setup
	$(PY) scripts/make_demo_clip.py --out demo/

# Regenerate the committed signal fixture from the numpy reference.
signal-fixture: setup
	$(PY) -m training.make_signal_fixture

# Separator training pipeline: synthesize scenes, train, export to ONNX (+ parity check), evaluate.
synth:
	$(TRAIN_PY) -m training synth --config $(CONFIG)

train:
	OMP_NUM_THREADS=1 $(TRAIN_PY) -m training train --config $(CONFIG)

export:
	OMP_NUM_THREADS=1 $(TRAIN_PY) -m training export --config $(CONFIG)

eval:
	OMP_NUM_THREADS=1 $(TRAIN_PY) -m training evaluate --config $(CONFIG) --split val

# All training tests, torch ones included (they are skipped under test-python's CI venv).
test-training:
	OMP_NUM_THREADS=1 $(TRAIN_PY) -m pytest -q training/tests

clean:
	$(CARGO) clean
	rm -rf out
