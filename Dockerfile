# One image for the trainer and the stream workers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY rules_store ./rules_store
COPY streams ./streams
COPY training ./training
COPY xsell ./xsell
RUN pip install . \
 && useradd --system --uid 10001 --home-dir /var/lib/xsell --create-home xsell \
 && install -d -o xsell /var/lib/xsell/runs /var/lib/xsell/tables  # named volumes copy this owner

USER xsell
# Inside the container the web port must listen on all interfaces for the port mapping;
# docker-compose.yml publishes it on the host's loopback only.
ENV XSELL_STATE_DIR=/var/lib/xsell \
    XSELL_WEB_HOST=0.0.0.0 \
    XSELL_LOG_FORMAT=json

ENTRYPOINT ["xsell"]
CMD ["--help"]
