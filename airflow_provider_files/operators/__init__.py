"""Operators of OpenAI-compatible Files, Uploads and Batches APIs (``files``: uploads; ``batches``: Batch jobs)."""
