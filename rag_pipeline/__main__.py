"""`python -m rag_pipeline`: the rag-pipeline command line."""

from rag_pipeline.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
