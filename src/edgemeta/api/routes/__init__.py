"""Routes, one module per resource; each exposes ``routes(api) -> list[Route]``."""
