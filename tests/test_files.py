"""Atomic files and folders (``o1_rag.files``), and the layout rule that the core imports no integration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from o1_rag.errors import O1RagError
from o1_rag.files import atomic_dir, read_structured

CORE = Path(__file__).resolve().parents[1] / "o1_rag"


def test_atomic_dir_replaces_the_folder_whole(tmp_path: Path) -> None:
    target = tmp_path / "report"
    target.mkdir()
    (target / "old.md").write_text("old")
    with atomic_dir(target) as tmp:
        assert tmp.parent == target.parent and tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "new.md").write_text("new")
        assert (target / "old.md").is_file()  # readers still see the old folder while the new one is written
    assert sorted(p.name for p in target.iterdir()) == ["new.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary folder left


@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_atomic_dir_keeps_the_old_folder_when_interrupted(tmp_path: Path, interruption: type) -> None:
    target = tmp_path / "adapter"
    target.mkdir()
    (target / "weights").write_text("old")
    with pytest.raises(interruption), atomic_dir(target) as tmp:
        (tmp / "weights").write_text("half")
        raise interruption()
    assert (target / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]


def test_atomic_dir_creates_a_new_folder(tmp_path: Path) -> None:
    with atomic_dir(tmp_path / "a" / "b") as tmp:
        (tmp / "x").write_text("1")
    assert (tmp_path / "a" / "b" / "x").read_text() == "1"


def test_the_core_imports_no_integration() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(langchain_o1rag|llama_index)\b", re.M)
    offenders = [str(p.relative_to(CORE)) for p in CORE.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_read_structured_reads_json_and_toml(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"x": [1, 2]}')
    (tmp_path / "a.toml").write_text("[data]\nx = 1\n")
    (tmp_path / "recipe").write_text("[data]\nx = 2\n")  # the format is the caller's, not the name's
    assert read_structured(tmp_path / "a.json", O1RagError) == {"x": [1, 2]}
    assert read_structured(tmp_path / "a.toml", O1RagError, toml=True) == {"data": {"x": 1}}
    assert read_structured(tmp_path / "recipe", O1RagError, toml=True) == {"data": {"x": 2}}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", '{"x": ', r"bad.json: not valid JSON \(Expecting value, line 1\)"),
        ("bad.toml", "[data\n", r"bad.toml: not valid TOML"),
        ("missing.json", None, r"missing.json: not found"),
        ("latin.json", b"\xff\xfe", r"latin.json: cannot read"),
    ],
)
def test_read_structured_raises_the_callers_error_in_one_line(
    tmp_path: Path, name: str, text: str | bytes | None, message: str
) -> None:
    class Mine(O1RagError):
        pass

    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(Mine, match=message) as info:
        read_structured(path, Mine, toml=name.endswith(".toml"))
    assert "\n" not in str(info.value)
