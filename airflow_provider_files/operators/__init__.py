"""Operators that upload files to OpenAI-compatible Files and Uploads APIs (see ``files``)."""
