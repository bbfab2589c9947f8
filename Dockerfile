# One image for every service; the command picks the service.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 \
    PYTHONWARNINGS=ignore::DeprecationWarning
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
COPY gateway ./gateway
RUN pip install . && useradd --system --uid 10001 crm
COPY config.yml ./
USER crm
# e.g. services.accounts.service:AccountsService
ENV CRM_SERVICE=gateway.service:GatewayService
CMD ["sh", "-c", "exec nameko run --config config.yml $CRM_SERVICE"]
