# Two commands for a newcomer: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-dev

.PHONY: demo test install clean samples bench-cpu

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $@

install: $(STAMP)

samples: $(STAMP)
	$(PY) samples/make_samples.py

demo: $(STAMP)
	$(PY) samples/make_samples.py
	$(PY) samples/demo.py

test: $(STAMP)
	sh scripts/ensure_chromium.sh
	$(PY) -m pytest -q

# The quick CPU forms of the benchmarks (docs/benchmarks.md): ratios measured side by side in one run,
# indicative only (short clips; the naive comparison is the median of 3 alternated pairs). Minutes
# on 2 cores (session 26, load 5-7: the naive step alone took 6 min); bench/runtime.py leaves its bf16
# variants out on CPUs without bf16 instructions (--bf16 runs them). e2e.py and naive.py need the test
# clips of ../shared (or $STREAM_GPEN_SHARED; without them: one line, exit 2) and the MobileNet
# detector, from there or the weights cache (`stream-gpen weights download retinaface-mobilenet0.25`).
bench-cpu: $(STAMP)
	$(PY) bench/runtime.py --quick --device cpu
	$(PY) bench/e2e.py --max-frames 8
	$(PY) bench/naive.py --max-frames 8 --repeats 3

clean:
	rm -rf $(VENV) samples/out build *.egg-info
