"""The one home of the LLMs that evaluation uses: answer generators and ragas judges.

A name is either a model that ``o1_rag.models`` resolves (bundled alias, folder, Hugging Face id), run
locally through ``langchain-huggingface``, or, with a base URL, a model behind any OpenAI-compatible
endpoint (a vLLM server, for instance).
"""

from __future__ import annotations

from typing import Any

from o1_rag.models import BASE_MODEL


def local_llm(
    name: str = BASE_MODEL, max_new_tokens: int = 128, batch_size: int = 8, device: str = "auto"
) -> Any:
    """A LangChain ``HuggingFacePipeline`` (greedy, left-padded batches) for a local causal LM."""
    from langchain_huggingface import HuggingFacePipeline
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    from o1_rag.causal_lm import pick_device, pick_dtype
    from o1_rag.models import model_path

    path = model_path(name)
    device = pick_device(device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=pick_dtype("auto", device), use_safetensors=True)
    model.to(device)
    pipe = pipeline(
        "text-generation",
        model=model,
        tokenizer=tokenizer,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        return_full_text=False,
        pad_token_id=tokenizer.pad_token_id,
    )
    return HuggingFacePipeline(pipeline=pipe, batch_size=batch_size)


def endpoint_llm(base_url: str, model: str, max_tokens: int = 256, api_key: str | None = None) -> Any:
    """A LangChain chat model for an OpenAI-compatible endpoint. No key from the environment is sent unless
    given as ``api_key`` (a placeholder satisfies the client otherwise)."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=base_url,
        model=model,
        max_tokens=max_tokens,
        temperature=0,
        api_key=api_key or "not-needed",
    )


def make_llm(
    name: str, url: str | None, max_new_tokens: int, api_key: str | None = None, device: str = "auto"
) -> Any:
    """The model ``name`` behind the endpoint ``url`` when one is given, else run locally."""
    if url:
        return endpoint_llm(url, name, max_new_tokens, api_key)
    return local_llm(name, max_new_tokens, device=device)


def ragas_judge(name: str, url: str | None, api_key: str | None = None, device: str = "auto") -> Any:
    """A ragas judge LLM (an endpoint answers in up to 512 tokens, a local model in 256)."""
    from ragas.llms import LangchainLLMWrapper

    return LangchainLLMWrapper(make_llm(name, url, 512 if url else 256, api_key, device))


def ragas_embeddings() -> Any:
    """The bundled MiniLM as ragas embeddings (the offline semantic-similarity metric, and the judge's)."""
    from langchain_huggingface import HuggingFaceEmbeddings
    from ragas.embeddings import LangchainEmbeddingsWrapper

    from o1_rag.encoders import resolve_encoder_path

    return LangchainEmbeddingsWrapper(
        HuggingFaceEmbeddings(model_name=resolve_encoder_path("all-minilm-l6-v2")[0])
    )


def chat_prompt(llm: Any, user: str) -> str:
    """``user`` wrapped in the local model's chat template (endpoints take the plain text)."""
    tokenizer = getattr(getattr(llm, "pipeline", None), "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return user
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
    )


def complete(llm: Any, prompts: list[str]) -> list[str]:
    """Answers for several prompts in one batched call (text of chat messages, or plain strings)."""
    outputs = llm.batch(prompts)
    return [(o.content if hasattr(o, "content") else str(o)).strip() for o in outputs]
