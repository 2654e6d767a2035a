"""Thought synthesis: an expert LLM drafts candidate thoughts, a retrieval committee votes on them."""
