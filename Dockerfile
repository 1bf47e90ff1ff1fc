# One image for web, worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BWV_VAR_DIR=/var/lib/bwv
RUN useradd --system --home /app --uid 1000 bwv \
    && mkdir -p /var/lib/bwv && chown bwv /var/lib/bwv
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bwv bwv
COPY common common
COPY blobstore blobstore
COPY custody custody
COPY devices devices
COPY evidence evidence
COPY retention retention
COPY review review
COPY estate estate
COPY accounts accounts
COPY requests_portal requests_portal
COPY integrations integrations
RUN pip install --no-cache-dir .
COPY manage.py gunicorn.conf.py ./
COPY templates templates
COPY static static
RUN BWV_PRODUCTION=0 DJANGO_SECRET_KEY=build-only BWV_KEKS=build:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput -v0
USER bwv
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "bwv.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4", "--timeout", "600"]
