from pathlib import Path

import pytest
from transformers import AutoTokenizer

from o1_rag.prompts import EMB, O1_TOKENS, QUERY_END, QUERY_START, THOUGHT, O1Format, add_o1_tokens


@pytest.fixture
def tokenizer(real_tokenizer_dir: Path):
    tok = AutoTokenizer.from_pretrained(real_tokenizer_dir)
    add_o1_tokens(tok)
    return tok


def test_add_o1_tokens_is_idempotent_and_special(real_tokenizer_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(real_tokenizer_dir)
    before = len(tok)
    assert add_o1_tokens(tok) == 4
    assert add_o1_tokens(tok) == 0
    assert len(tok) == before + 4
    for marker in O1_TOKENS:
        ids = tok(f"a {marker} b", add_special_tokens=False)["input_ids"]
        assert tok.convert_tokens_to_ids(marker) in ids, marker  # never split into pieces
        assert marker in tok.all_special_tokens
        assert tok.decode(ids, skip_special_tokens=True).replace(" ", "") == "ab"


def test_add_o1_tokens_resizes_model(tiny_model_dir: Path, real_tokenizer_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    tok = AutoTokenizer.from_pretrained(real_tokenizer_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    add_o1_tokens(tok, model)
    assert model.get_input_embeddings().weight.shape[0] == len(tok)


def test_query_with_thought_layout(tokenizer) -> None:
    fmt = O1Format(tokenizer)
    ids = fmt.query_with_thought("what is aspirin", "a drug")
    q = tokenizer("what is aspirin", add_special_tokens=False)["input_ids"]
    t = tokenizer("a drug", add_special_tokens=False)["input_ids"]
    tid = tokenizer.convert_tokens_to_ids
    expected = [
        tid(QUERY_START),
        *q,
        tid(QUERY_END),
        tid(EMB),
        tid(THOUGHT),
        *t,
        tokenizer.eos_token_id,
        tid(EMB),
    ]
    assert ids == expected
    assert fmt.query_prefix("what is aspirin") == expected[: len(q) + 3]
    assert fmt.thought_prompt("what is aspirin") == expected[: len(q) + 4]
    assert ids.count(tid(EMB)) == 2


def test_truncation_keeps_markers(tokenizer) -> None:
    fmt = O1Format(tokenizer, max_query_tokens=4, max_thought_tokens=5, max_document_tokens=6)
    long = "word " * 200
    doc = fmt.document(long)
    assert len(doc) == 7 and doc[-1] == fmt.emb_id
    seq = fmt.query_with_thought(long, long)
    assert len(seq) == 4 + 4 + 5 + 2 and seq[-1] == fmt.emb_id and seq[-2] == tokenizer.eos_token_id


def test_format_requires_markers(real_tokenizer_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(real_tokenizer_dir)
    with pytest.raises(ValueError, match="add_o1_tokens"):
        O1Format(tok)


def test_chat_think_prompt_holds_query(tokenizer) -> None:
    fmt = O1Format(tokenizer)
    text = tokenizer.decode(fmt.chat_think_prompt("vitamin d and bones"))
    assert "vitamin d and bones" in text and "plausible response" in text
