"""Run the README's LangChain and LlamaIndex snippets verbatim (slow: real bundled model, offline)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from o1_rag.cli import app
from o1_rag.models import expand_bundled

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPET = re.compile(r"<!-- snippet: (?P<name>[\w-]+) -->\n```python\n(?P<code>.*?)```", re.S)
SNIPPETS = {m["name"]: m["code"] for m in SNIPPET.finditer(README.read_text())}

pytestmark = pytest.mark.slow


def test_readme_has_the_snippets() -> None:
    assert set(SNIPPETS) == {"langchain-rag", "llama-index-query-engine"}


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An O1RAG_HOME whose default Chroma holds 'scifact-demo', built by `o1rag index`."""
    real_home = Path(os.environ.get("O1RAG_TEST_MODEL_HOME") or Path.home() / ".cache" / "o1rag")
    models = expand_bundled("smollm2-135m-instruct", home=real_home).parent
    home = tmp_path_factory.mktemp("home")
    (home / "models").symlink_to(models)  # reuse the expanded model, write everything else here
    data = tmp_path_factory.mktemp("data")
    texts = [
        (
            "Brown adipose tissue",
            "Cold exposure recruits brown adipose tissue (BAT) and raises thermogenesis.",
        ),
        ("Autophagy and age", "Autophagy declines in aged organisms and its loss shortens lifespan."),
        ("Aspirin", "Low-dose aspirin lowers the risk of a first heart attack in some adults."),
        ("Sleep", "Sleep deprivation impairs memory consolidation in young adults."),
        ("Insulin", "Insulin resistance precedes type 2 diabetes by several years."),
        ("Coffee", "Coffee intake is associated with lower liver enzyme levels."),
    ]
    with open(data / "corpus.jsonl", "w") as handle:
        for i, (title, text) in enumerate(texts):
            handle.write(json.dumps({"_id": f"doc{i}", "title": title, "text": text}) + "\n")
    env = {"O1RAG_HOME": str(home), "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["index", str(data), "--collection", "scifact-demo"], env=env)
    assert result.exit_code == 0, result.output
    return home


@pytest.mark.parametrize("name", ["langchain-rag", "llama-index-query-engine"])
def test_snippet_runs(name: str, demo_home: Path) -> None:
    code = "from o1_rag.testing import block_network\nblock_network()\n" + SNIPPETS[name]
    env = {**os.environ, "O1RAG_HOME": str(demo_home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("O1RAG_DB", None)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "the snippet printed nothing"
    if name == "langchain-rag":
        assert re.search(r"^doc\d ", result.stdout, re.M), result.stdout
    else:
        assert "Cold exposure increases BAT recruitment." in result.stdout  # last_thoughts keyed by query
