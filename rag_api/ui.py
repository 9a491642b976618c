"""What a browser opens: the API's docs (/docs, /redoc) and the console (/console).

FastAPI's own docs pages load Swagger UI and ReDoc from a CDN, so they are blank without
internet. Here the same pages load them from the app: the assets come from the installed
`fastapi-offline` package (Swagger UI and ReDoc's standalone bundles, MIT), not from a copy
kept in this repository. The console is static HTML, CSS and JavaScript that call the public
API with the key the user signs in with; it can never do more than that key may.
"""

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

DOC_ASSETS = Path(fastapi_offline.__file__).parent / "static"
CONSOLE = Path(__file__).parent / "console"


def install(app: FastAPI) -> None:
    """Serve the docs from local assets and the console; call with docs_url=redoc_url=None."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount("/docs-assets", StaticFiles(directory=DOC_ASSETS), name="docs-assets")
    app.mount("/console", StaticFiles(directory=CONSOLE, html=True), name="console")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/console/")
