# One image: supervisord running the API, the worker and Flower.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TASKLINE_PYTHON=/usr/local/bin/python \
    TASKLINE_RUN_DIR=/app/var \
    TASKLINE_API_HOST=0.0.0.0 \
    TASKLINE_FLOWER_HOST=0.0.0.0 \
    TASKLINE_CONSOLE_HOST=0.0.0.0 \
    TASKLINE_SERVICES_AUTOSTART=false

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
    && useradd --create-home --uid 1000 taskline
COPY --chown=taskline:taskline . .
RUN mkdir -p /app/var && chown taskline:taskline /app/var
USER taskline

EXPOSE 8000 5555 9001
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"
# Settings (defaults, .env, the environment) exported for supervisord by core.settings.
CMD ["bash", "-c", ". scripts/env.sh && exec supervisord -c /app/supervisord.conf"]
