"""A trained model on any images: embeddings (``Embedder``), the embedding file, gallery search.

The public names below load their module on first use (see :mod:`daaf.utils.lazy`).
"""

from daaf.utils.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "embedder": ["Embedder"],
        "inputs": ["list_images"],
        "search": ["search_file", "top_k_blocks"],
        "store": ["Embeddings", "read_embeddings"],
    },
)
