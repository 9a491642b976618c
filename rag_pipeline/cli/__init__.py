"""The rag-pipeline command line."""
