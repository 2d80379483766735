# Production image: gunicorn web, Celery worker and beat all run from this one image.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml constraints.txt ./
RUN pip install --no-cache-dir "pip>=25.1" \
 && pip install --no-cache-dir --constraint constraints.txt --group prod
COPY . .
RUN SECRET_KEY=build-only-collectstatic-key python manage.py collectstatic --noinput
RUN useradd --system --uid 1000 controlpanel && mkdir -p /app/var && chown controlpanel /app/var
USER controlpanel
EXPOSE 8000
CMD ["gunicorn", "controlpanel.wsgi:application", "--config", "controlpanel/gunicorn.conf.py"]
