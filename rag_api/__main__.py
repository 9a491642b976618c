"""`python -m rag_api` / `rag-api`: serve the API on RAG_API_HOST:RAG_API_PORT.

Nothing is imported at module level: every child of the extraction sandbox (which sniffs large
uploads) imports a script-style main module such as `rag-api` again, and importing the app
costs seconds.
"""


def main() -> None:
    from rag_api.main import limit_threads

    limit_threads()
    import uvicorn

    from rag_api.main import create_app
    from rag_pipeline.settings import get_settings

    settings = get_settings()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port)


if __name__ == "__main__":
    main()
