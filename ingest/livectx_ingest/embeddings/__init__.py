"""The embedding worker: text topics -> sentence-transformers -> vector store, with a searchable watermark."""
