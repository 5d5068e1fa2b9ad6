"""Reads for search, one module per concept:

- embedding_models: the active CLIP model, its identity and its cosine bounds;
- query_vectors: a query's vector (CLIP text, a stored record's, an uploaded picture's);
- filters: SearchFilters, the form's and the search box's fields as a queryset filter;
- vector: the nearest records among a filter's candidates (HNSW, exact, bit-sketch scan);
- keyword: Postgres full-text matches ranked with ts_rank;
- fusion: reciprocal rank fusion;
- some_words: when no record matches the words as a whole, those matching some of them;
- ranking: search_images, which puts them together;
- duplicates and neighbours: near-duplicates, a record's similar images;
- backlog: what the embedding services read.

The names other apps use are re-exported here; the search box's parser is engine.search_query.
"""

from search.selectors.backlog import images_for_embedding, images_without_embedding
from search.selectors.duplicates import collapse_near_duplicates
from search.selectors.embedding_models import (
    CLIP_CONFIG,
    TINY_CLIP_NAME,
    active_embedding_model,
    active_model_name,
    embedding_model_bounds,
    embedding_model_name,
    near_duplicate_bound,
    nonsense_bound,
    relevance_bound,
)
from search.selectors.filters import SearchFilters
from search.selectors.fusion import RRF_K, reciprocal_rank_fusion
from search.selectors.hits import SearchHit, SearchResults
from search.selectors.keyword import KEYWORD_TSQUERY
from search.selectors.neighbours import (
    Neighbours,
    PictureLikeness,
    image_neighbours,
    picture_near_duplicates,
)
from search.selectors.query_vectors import (
    image_vector,
    query_text_vector,
    text_embedder_warm,
    uploaded_image_vector,
)
from search.selectors.ranking import CANDIDATES, search_images

__all__ = [
    "CANDIDATES",
    "CLIP_CONFIG",
    "KEYWORD_TSQUERY",
    "RRF_K",
    "TINY_CLIP_NAME",
    "Neighbours",
    "PictureLikeness",
    "SearchFilters",
    "SearchHit",
    "SearchResults",
    "active_embedding_model",
    "active_model_name",
    "collapse_near_duplicates",
    "embedding_model_bounds",
    "embedding_model_name",
    "image_neighbours",
    "image_vector",
    "images_for_embedding",
    "images_without_embedding",
    "near_duplicate_bound",
    "nonsense_bound",
    "picture_near_duplicates",
    "query_text_vector",
    "reciprocal_rank_fusion",
    "relevance_bound",
    "search_images",
    "text_embedder_warm",
    "uploaded_image_vector",
]
