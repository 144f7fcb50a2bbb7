# The model server: `model-server serve`, one uvicorn worker on port 8000.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MODELS_PATH=/app/saved_models \
    MODEL_SIGNING_KEY_FILE=/app/keys/model-signing.key \
    MONITORING_PATH=/app/monitoring

# LightGBM's wheel links the system's OpenMP runtime, which the slim image lacks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies in their own layer: a code change does not reinstall them.
COPY requirements.txt requirements-dask.txt ./
RUN pip install -r requirements.txt -r requirements-dask.txt

# A non-root user; the models, the signing key's and the captured rows' directories are its
# only writable places.
# docker-compose.yml runs the container as APP_UID:APP_GID (default 1000:1000, this user)
# and makes both mounted directories writable for it.
RUN useradd --uid 1000 --user-group --no-create-home --home-dir /app app \
    && mkdir -p /app/saved_models /app/keys /app/monitoring \
    && chown app:app /app/saved_models /app/keys /app/monitoring \
    && chmod 700 /app/keys

# The package itself (its dependencies are in the layer above): the `model-server` command.
COPY pyproject.toml README.md requirements-dev.txt ./
COPY server/ server/
COPY client/ client/
RUN pip install --no-deps . && rm -rf build

USER app
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"

# GRACE: after SIGTERM, requests get 10 s to finish, then running fits are stopped. The
# server writes its own access log (ACCESS_LOG: route templates, never bodies or tokens).
CMD ["model-server", "serve", "--host", "0.0.0.0", "--port", "8000", "--grace", "10"]
