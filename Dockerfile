# carmfg production image: web (gunicorn), Celery worker and beat share it.
FROM python:3.11-slim-bookworm

# WeasyPrint's runtime libraries (Pango, HarfBuzz) and fonts with Latin and Cyrillic.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
        fonts-dejavu-core fonts-liberation2 gettext \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project && rm -rf /root/.cache

COPY . .

# Translations: the committed .po catalogues compiled to the .mo files Django reads.
RUN PYTHON=python bash scripts/messages.sh compile

# Static files with their hashed names (production's manifest storage). The settings
# refuse production without a real secret, PostgreSQL and Redis, so collectstatic gets
# build-only dummies; nothing is connected to and none of them is kept in the image.
RUN CARMFG_ENV=production \
    SECRET_KEY=build-only-dummy-secret-key-not-used-at-run-time-0123456789 \
    DATABASE_URL=postgres://build@build.invalid/build \
    REDIS_URL=redis://build.invalid:6379/0 \
    ALLOWED_HOSTS=build.invalid \
    python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin carmfg \
    && mkdir -p /app/var/media /app/var/beat \
    && chown -R carmfg:carmfg /app/var
USER carmfg

EXPOSE 8000
CMD ["/app/scripts/docker/web-start.sh"]
