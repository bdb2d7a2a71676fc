# One image for every role: web (default CMD), `celery -A jitportal worker`,
# `celery -A jitportal beat`, and `python manage.py migrate --noinput`.
#
# No `# syntax=` line: it makes BuildKit fetch a frontend image from Docker Hub before the
# build starts, and nothing here needs more than the frontend built into every engine.
# Dev tools (the demo's sign-in proxy, the Zero simulator) and tests stay out through
# .dockerignore; tests/deploy/test_stack.py lists /app in the built image to prove it.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the dependencies declared in pyproject.toml, in a virtualenv -------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only these two: the dependency layer is rebuilt when they change, not with every code or
# README change (setuptools builds the metadata without the README that pyproject names).
COPY pyproject.toml constraints.txt ./
# Pinned by constraints.txt, so the image gets the versions CI tested. The project's own
# (here empty) wheel is dropped: the app runs from /app, next to its templates and static
# files. The virtualenv has no pip: nothing installs packages at run time.
RUN pip wheel --wheel-dir /wheels -c constraints.txt . \
 && rm /wheels/jitportal-*.whl \
 && python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install --no-index --find-links=/wheels /wheels/*.whl

# --- runtime -----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DEBUG=false \
    CELERY_BEAT_SCHEDULE_FILENAME=/var/lib/jitportal/celerybeat-schedule \
    BROKER_DATA_DIR=/var/lib/jitportal/broker

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
    --shell /usr/sbin/nologin app \
 && install -d -o app -g app -m 0750 /var/lib/jitportal

# One layer, no wheels left behind (a removed file still weighs in the layer that added it).
COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Code stays owned by root: the app user can read it, not change it.
COPY manage.py ./
COPY jitportal ./jitportal
COPY apps ./apps
COPY templates ./templates
COPY static ./static

# Settings refuse to start without production values; these dummies exist only for this
# RUN (never in the image's environment) because collectstatic needs no real ones.
RUN SECRET_KEY=build-only \
    ALLOWED_HOSTS=build \
    JWKS_ENDPOINT=http://build/jwks.json \
    POMERIUM_JWT_AUDIENCE=build \
    DATABASE_URL=sqlite:////tmp/build.db \
    CELERY_BROKER_URL=memory:// \
    python manage.py collectstatic --noinput

USER 10001:10001
EXPOSE 8000

# No curl in the slim image; the standard library is enough.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

# Workers, timeouts and logs come from the environment via the config file
# (WEB_CONCURRENCY, default 3; 30 s timeout and graceful timeout; access log on stdout).
CMD ["gunicorn", "--config", "jitportal/gunicorn.conf.py", "jitportal.wsgi:application"]
