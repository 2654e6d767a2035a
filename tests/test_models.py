from pathlib import Path

import pytest
import torch

from o1_rag.causal_lm import load_model
from o1_rag.embedder import O1Embedder
from o1_rag.errors import ModelNotFoundError
from o1_rag.models import expand_bundled, resolve_base
from o1_rag.prompts import O1_TOKENS


def test_local_dir_resolves_with_stable_identity(tiny_model_dir: Path) -> None:
    path, identity = resolve_base(str(tiny_model_dir))
    assert path == str(tiny_model_dir) and identity.startswith("local:")
    assert resolve_base(str(tiny_model_dir))[1] == identity


@pytest.mark.parametrize("name", ["./no/such/dir", "/no/such/model"])
def test_missing_paths_fail_clearly(name: str) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_base(name)


def test_dir_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_base(str(tmp_path))


def test_unknown_hub_id_fails_fast_offline_with_the_closest_alias() -> None:
    with pytest.raises(ModelNotFoundError, match="the Hugging Face Hub cannot be reached"):
        load_model("nobody/no-such-model-xyz", device="cpu")
    with pytest.raises(ModelNotFoundError, match="unknown model 'o1-minlm': did you mean 'o1-minilm'"):
        resolve_base("o1-minlm")
    from o1_rag.encoders import resolve_encoder_path

    with pytest.raises(ModelNotFoundError, match="did you mean 'all-minilm-l6-v2'"):
        resolve_encoder_path("all-minilm-l6")


def test_marker_rows_are_deterministic(tiny_model_dir: Path) -> None:
    first = load_model(str(tiny_model_dir), device="cpu")
    second = load_model(str(tiny_model_dir), device="cpu")
    ids = first.tokenizer.convert_tokens_to_ids(list(O1_TOKENS))
    rows1 = first.model.get_input_embeddings().weight[ids]
    rows2 = second.model.get_input_embeddings().weight[ids]
    assert torch.equal(rows1, rows2)
    assert rows1.abs().sum() > 0


def test_adapter_loads_on_top(tiny_model_dir: Path, tiny_adapter_dir: Path) -> None:
    base = load_model(str(tiny_model_dir), device="cpu")
    tuned = load_model(str(tiny_model_dir), adapter=str(tiny_adapter_dir), device="cpu")
    assert tuned.adapter_identity and base.adapter_identity is None
    assert tuned.base_identity == base.base_identity
    with pytest.raises(ModelNotFoundError, match="adapter_config.json"):
        load_model(str(tiny_model_dir), adapter=str(tiny_model_dir), device="cpu")


def test_bundled_expansion_is_atomic_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash while expanding")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        expand_bundled("smollm2-135m-instruct", home=tmp_path)
    models = tmp_path / "models"
    assert not (models / "smollm2-135m-instruct").exists()
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []


def test_trained_alias_splits_into_base_and_shipped_adapter(monkeypatch, tmp_path: Path) -> None:
    from o1_rag import models

    with pytest.raises(
        ModelNotFoundError, match="already includes its adapter; to load another, name the base"
    ):
        models.split_trained("o1-smollm2-135m", "some/adapter")
    monkeypatch.setattr(models, "ADAPTERS_DIR", tmp_path)
    with pytest.raises(ModelNotFoundError, match="adapter of 'o1-smollm2-135m' is missing"):
        models.split_trained("o1-smollm2-135m", None)
    (tmp_path / "o1-smollm2-135m").mkdir()
    (tmp_path / "o1-smollm2-135m" / "adapter_config.json").write_text("{}")
    assert models.split_trained("o1-smollm2-135m", None) == (
        "smollm2-135m-instruct",
        str(tmp_path / "o1-smollm2-135m"),
    )
    assert models.split_trained("some/hub-id", None) == ("some/hub-id", None)


def test_pickled_adapter_is_refused_up_front(tmp_path: Path, tiny_model_dir: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04not loaded")
    with pytest.raises(ModelNotFoundError, match=r"adapter_model.bin \(pickle, never loaded\)"):
        load_model(str(tiny_model_dir), adapter=str(tmp_path), device="cpu")


def test_loading_an_adapter_warns_nothing_about_peft_internals(
    tiny_model_dir: Path, tiny_adapter_dir: Path
) -> None:
    """peft reads a deprecated transformers attribute when it wraps a model: not the user's warning."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_model(str(tiny_model_dir), adapter=str(tiny_adapter_dir), device="cpu")
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]


class Tagged(O1Embedder):
    """A user's subclass of the embedder."""


def test_a_subclass_of_the_embedder_loads_and_unpickles_as_itself(tiny_model_dir: Path) -> None:
    import pickle

    loaded = Tagged.from_pretrained(str(tiny_model_dir), device="cpu", cache=False, thinker=False)
    assert type(loaded) is Tagged
    clone = pickle.loads(pickle.dumps(loaded))  # the registry hands back the same object in this process
    assert type(clone) is Tagged and clone.fingerprint == loaded.fingerprint
    plain = O1Embedder.from_pretrained(str(tiny_model_dir), device="cpu", cache=False, thinker=False)
    assert type(pickle.loads(pickle.dumps(plain))) is O1Embedder  # the same names, kept apart by class
