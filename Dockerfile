# The campus-kg API image: built once (`docker compose build`), run as a non-root user, the
# workspace (lakehouse, state database, graph pointer) on a volume. See docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY campus_kg ./campus_kg
COPY ingest ./ingest
COPY resolution ./resolution
COPY ontology ./ontology
COPY graph_api ./graph_api
COPY queries ./queries
RUN pip install . \
 && useradd --uid 10001 --user-group --home-dir /home/campuskg --create-home campuskg \
 && mkdir -p /workspace && chown campuskg:campuskg /workspace

USER campuskg
VOLUME ["/workspace"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=5 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"
ENTRYPOINT ["campus-kg"]
CMD ["serve", "--workspace", "/workspace", "--host", "0.0.0.0", "--port", "8000"]
