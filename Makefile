# tflm-train: the two set-up commands are `make demo` and `make test`.
# Both create .venv and install what is missing (pip packages pinned in pyproject.toml,
# Debian packages with apt-get when run as root), so they work on a fresh Debian machine.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Debian packages the build, tests and demo need (gcc brings its sanitizer runtimes;
# Fashion-MNIST is the offline dataset of the demo and the training tests).
APT_PACKAGES ?= gcc make dataset-fashion-mnist gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm

.PHONY: all demo test lib clean deps apt venv

all: lib

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (run as root or install them)"; exit 1; fi; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency list changes; the stamp lives in the venv.
$(VENV)/.deps-stamp: pyproject.toml setup.py | $(VENV)/bin/python
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[dev]"
	touch $@

venv deps: apt $(VENV)/.deps-stamp

# Rebuild the C library in place (pip install -e . does this too).
lib: deps
	$(PY) setup.py -q build_ext --inplace

demo: lib
	$(PY) -m tflm_train.demo

test: lib
	$(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf build *.egg-info tflm_train/*.so .pytest_cache
