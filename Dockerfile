# One image for every service of the stack: code location, webserver, daemon, run workers, API
# and Chroma.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home \
    RAG_DATA_DIR=/data \
    RAG_BACKUP_DIR=/backups

# pg_dump for backups of the PostgreSQL instance storage; Tesseract and its language data for
# OCR of scans and images.
COPY scripts/ocr-packages.txt /tmp/ocr-packages.txt
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client curl \
        $(cat /tmp/ocr-packages.txt) \
    && rm -rf /var/lib/apt/lists/* /tmp/ocr-packages.txt

WORKDIR /app
# The CPU build of torch first, so sentence-transformers never pulls a CUDA one.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY rag_pipeline ./rag_pipeline
COPY rag_api ./rag_api
RUN pip install --no-cache-dir .
COPY workspace.yaml ./
COPY dagster.yaml ${DAGSTER_HOME}/dagster.yaml

RUN useradd --create-home --uid 1000 rag && mkdir -p /data /backups \
    && chown -R rag /data /backups ${DAGSTER_HOME}
USER rag
