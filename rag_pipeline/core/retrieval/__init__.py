"""Finding chunks: the Chroma index, the lexical index, search, filters and facets."""
