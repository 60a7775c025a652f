# make install: a virtual environment with everything (mmcv built from source once, then cached)
# make lint:    install, then flake8 and isort --check-only (settings in setup.cfg)
# make test:    install, lint, then the test suite (CPU only): the library's, then the toy project's
# make test-fast: the same without the end-to-end subprocess runs marked slow (pytest.ini)
# make demo:    install, then the end-to-end demo on the toy shapes set
# make study:   install, then the low-data study: learning curves of synthetic-data arms, best against best (at most 60 min on 2 cores)
# make bench:   install, then the benchmarks
# make toy-base: install, then train the toy base model from scratch (three stages, resumable) into
#                projects/toy_shapes/assets/toy_shapes_base
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
CONSTRAINTS := requirements/constraints.txt
# Built mmcv wheels survive fresh clones of the repo (CI, new checkouts) on the same machine.
WHEEL_CACHE ?= $(HOME)/.cache/mmdet-detdiffusion/wheels
DEMO_DIR ?= work_dirs/demo
STUDY_DIR ?= work_dirs/study
TOY := projects/toy_shapes
PYTEST := $(PY) -m pytest -q --durations=15
LINT_PATHS := mmdet_detdiffusion tools tests benchmarks configs projects setup.py

.PHONY: install lint test test-fast demo study bench toy-base clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py $(CONSTRAINTS) Makefile
	@start=$$(date +%s); \
	test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	$(PIP) install -q "pip<25" wheel && \
	$(PIP) install -q -c $(CONSTRAINTS) torch numpy mmengine && \
	if ! ls $(WHEEL_CACHE)/mmcv-2.1.0-*.whl >/dev/null 2>&1; then \
	  echo "building mmcv 2.1.0 with ops from source (about 11 minutes on 2 cores; cached in $(WHEEL_CACHE))"; \
	  $(PIP) install -q "setuptools<70" && \
	  MMCV_WITH_OPS=1 FORCE_CUDA=0 $(PIP) wheel -q --no-build-isolation --no-deps mmcv==2.1.0 -w $(WHEEL_CACHE) || exit 1; \
	fi && \
	$(PIP) install -q -c $(CONSTRAINTS) --find-links $(WHEEL_CACHE) "setuptools" mmcv==2.1.0 && \
	$(PIP) install -q -c $(CONSTRAINTS) --find-links $(WHEEL_CACHE) --no-build-isolation --use-pep517 \
	  --config-settings editable_mode=compat -e ".[tests]" && \
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps open-clip-torch && \
	$(PY) -c "import mmcv.ops, mmdet, diffusers, transformers, mmdet_detdiffusion; print('installed: mmcv', mmcv.__version__, 'with ops; mmdet', mmdet.__version__)" && \
	touch $@ && echo "install took $$(( $$(date +%s) - start )) s"

lint: install
	$(PY) -m flake8 $(LINT_PATHS)
	$(PY) -m isort --check-only --diff $(LINT_PATHS)

# The core suite and the toy project's run apart (importing the toy registers its attribute values, and the core
# suite checks that the library works without it); both run, and either failing fails the target.
test: install lint
	status=0; $(PYTEST) tests || status=1; $(PYTEST) $(TOY)/tests || status=1; exit $$status

test-fast: install lint
	status=0; $(PYTEST) -m "not slow" tests || status=1; $(PYTEST) -m "not slow" $(TOY)/tests || status=1; \
	exit $$status

demo: install
	$(PY) projects/toy_shapes/tools/demo.py --work-dir $(DEMO_DIR)

study: install
	$(PY) projects/toy_shapes/tools/study.py --work-dir $(STUDY_DIR)

bench: install
	$(PY) benchmarks/run_all.py

toy-base: install
	$(PY) projects/toy_shapes/tools/make_toy_base.py

clean:
	rm -rf $(VENV) work_dirs build *.egg-info
