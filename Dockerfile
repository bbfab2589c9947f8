# One image for every service; the command picks the service. The web app
# is built in a stage of its own and only its output is kept (the gateway
# serves it at /).
FROM node:20-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
# The API types (src/api/schema.d.ts) only feed the type check, which make
# test runs; the bundle does not need them.
RUN npx vite build --logLevel warn

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 \
    PYTHONWARNINGS=ignore::DeprecationWarning
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
COPY gateway ./gateway
RUN pip install . && useradd --system --uid 10001 crm
COPY config.yml ./
COPY --from=web /web/dist ./web/dist
# The package is installed into site-packages: name the build's place.
ENV CRM_WEB_DIST=/app/web/dist
USER crm
# e.g. services.accounts.service:AccountsService
ENV CRM_SERVICE=gateway.service:GatewayService
CMD ["sh", "-c", "exec nameko run --config config.yml $CRM_SERVICE"]
