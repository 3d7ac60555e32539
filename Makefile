# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   the main job: emulated backends -> headless Blender -> demo.blend with the generated strips
#   make test   every test (plain Python and real Blender), with coverage of clients/ and runtime/
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench extension clean

$(STAMP): requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed (bpy 5.0.1 is built for it)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# `import movie_director` from this checkout (the repository root is the extension package)
	ln -sfn "$(CURDIR)" "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/movie_director"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py --out demo.blend

test: $(STAMP)
	$(PY) scripts/run_tests.py

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy runtime clients

bench: $(STAMP)
	$(PY) scripts/bench.py --json

clean:
	rm -rf $(VENV) build dist demo.blend demo_output .coverage

# The zips users install: one per platform in dist/, every dependency bundled as wheels from extension-lock.txt,
# built and validated with Blender's own blender_ext.py. After editing requirements-extension.txt: make extension-lock
.PHONY: extension-lock
extension: $(STAMP)
	$(PY) scripts/build_extension.py

extension-lock: $(STAMP)
	$(PY) scripts/build_extension.py lock
