# dsar: multi-stage build on python:3.11-slim; dependencies are installed before the code is
# copied, so a code change does not reinstall them. Runs as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
# Dependencies first (only pyproject.toml), with empty packages so the metadata resolves.
COPY pyproject.toml ./
RUN mkdir -p api/account/templates api/account/static schema exporters \
        stores/migrations/service stores/migrations/accounts \
        stores/migrations/billing stores/migrations/analytics catalogue \
    && touch api/__init__.py api/account/__init__.py schema/__init__.py exporters/__init__.py \
        stores/__init__.py catalogue/__init__.py \
    && /venv/bin/pip install . && /venv/bin/pip uninstall -y dsar
COPY api ./api
COPY schema ./schema
COPY exporters ./exporters
COPY stores ./stores
COPY catalogue ./catalogue
RUN /venv/bin/pip install --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 dsar
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH DSAR_HOME=/home/dsar/.dsar PYTHONUNBUFFERED=1
USER dsar
WORKDIR /home/dsar
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"
# Configure DSAR_DATABASE_URL, DSAR_STORES, DSAR_OIDC_ISSUER and DSAR_AUDIENCE at run time.
CMD ["dsar", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-seed"]
