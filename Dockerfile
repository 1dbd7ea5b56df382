# One image: supervisord running the API, the worker, the scheduler and Flower, in production.
# Every locked package has a wheel for this Python (see the README's "Dependencies").
FROM python:3.14-slim-trixie

# Production: every process refuses development defaults and weak settings (taskline/core/guard.py);
# the secrets come from the environment (docker-compose.yml takes them from .env).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TASKLINE_ENV=production \
    TASKLINE_PYTHON=/usr/local/bin/python \
    TASKLINE_RUN_DIR=/app/var \
    TASKLINE_API_HOST=0.0.0.0 \
    TASKLINE_FLOWER_HOST=0.0.0.0 \
    TASKLINE_CONSOLE_HOST=0.0.0.0 \
    TASKLINE_SERVICES_AUTOSTART=false

WORKDIR /app
# Exactly the locked versions, each file checked against its hash; wheels only, nothing built.
COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements.lock \
    && useradd --create-home --uid 1000 taskline
# Swagger UI's files for /docs, the version swagger-ui.lock pins, refused unless the tarball
# has the integrity it holds (a folder fetched outside the image is not copied: .dockerignore).
COPY swagger-ui.lock .
COPY scripts/fetch_swagger_ui.py scripts/
RUN python scripts/fetch_swagger_ui.py
# The code belongs to root: the processes, run as taskline, can read it but not change it.
COPY . .
RUN mkdir -p /app/var && chown taskline:taskline /app/var
USER taskline

EXPOSE 8000 5555 9001
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"
# Settings (defaults, the environment) exported for supervisord by taskline.core.settings; the guard
# refuses unsafe production settings before supervisord (and its console) starts at all.
CMD ["bash", "-c", \
     ". scripts/env.sh && python -m taskline.core.guard && exec supervisord -c /app/supervisord.conf"]
