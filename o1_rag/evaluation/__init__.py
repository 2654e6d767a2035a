"""Evaluation: IR benchmarks (ranx), RAG quality (ragas), reports and speed benchmarks."""
