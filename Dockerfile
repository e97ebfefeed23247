# sferum-audit: the service image. `docker compose up` runs it as `sferum-audit serve`.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY domain domain
COPY application application
COPY projections projections
COPY consumers consumers
COPY cli cli
COPY integrity integrity
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SFERUM_AUDIT_DATA_DIR=/var/lib/sferum-audit \
    SFERUM_AUDIT_LOG_FORMAT=json \
    SFERUM_AUDIT_METRICS_PORT=9464
COPY --from=build /install /usr/local
RUN useradd --system --home-dir /var/lib/sferum-audit --create-home sferum
USER sferum
WORKDIR /var/lib/sferum-audit
EXPOSE 9464
# Healthy while the metrics endpoint answers (it runs in the serving process).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('SFERUM_AUDIT_METRICS_PORT', '9464'), timeout=2)"]
# SIGTERM stops it gracefully: in-flight batches finish and are acked.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sferum-audit"]
CMD ["serve"]
