"""Semantic memory: text sources, the embedding model, vector stores and the read-your-writes watermark.

Shared by the embedding worker (``livectx_ingest``) that writes the index and the context client
(``livectx_agents``) that searches it. Heavy imports (torch, psycopg, pinecone) happen only in the
modules that need them.
"""

from livectx.vectors.records import SearchHit, VectorFilter, VectorRecord
from livectx.vectors.store import VectorStore, open_vector_store

__all__ = ["SearchHit", "VectorFilter", "VectorRecord", "VectorStore", "open_vector_store"]
