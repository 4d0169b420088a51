# dsar: multi-stage build on python:3.11-slim; dependencies are installed before the code is
# copied, so a code change does not reinstall them. Runs as a non-root user, with no secret
# inside: every secret and setting comes from the environment at run time (docs/OPERATIONS.md).
# Linted by hadolint in the tests (tests/test_container.py), which also check that every
# package pyproject.toml installs is copied below.
FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
# Dependencies first: only pyproject.toml, with every package it names present but empty.
COPY pyproject.toml ./
RUN python -c "import pathlib, tomllib; \
names = tomllib.load(open('pyproject.toml', 'rb'))['tool']['setuptools']['packages']; \
[pathlib.Path(n.replace('.', '/')).mkdir(parents=True, exist_ok=True) for n in names]; \
[pathlib.Path(n.replace('.', '/'), '__init__.py').touch() for n in names]" \
    && /venv/bin/pip install . && /venv/bin/pip uninstall -y dsar
COPY api ./api
COPY schema ./schema
COPY domain ./domain
COPY exporters ./exporters
COPY stores ./stores
COPY catalogue ./catalogue
RUN /venv/bin/pip install --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 dsar
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH DSAR_HOME=/home/dsar/.dsar PYTHONUNBUFFERED=1
USER 10001
WORKDIR /home/dsar
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"]
# Configure DSAR_DATABASE_URL, DSAR_STORES, DSAR_OIDC_ISSUER, DSAR_AUDIENCE and DSAR_SECRET_KEY
# at run time; run `dsar migrate` with the owner's URL before the first start.
CMD ["dsar", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-seed"]
