# The license API image. Build:  docker build -t license-api:v1 .
# The bundle stage compiles every production dependency into one file (license-api/build.ts), so
# the runtime stage ships no node_modules, no npm and no build tools.
#
# No `# syntax=` line: it would make BuildKit fetch a frontend image from a registry, and the
# classic builder (DOCKER_BUILDKIT=0) must build this file where no registry is reachable.
# NODE_IMAGE is the official image pinned by its multi-architecture index digest (as published for
# node:24.21.0-bookworm-slim; not re-resolved on a machine without a registry). Offline, pass an
# image with Node 24 and npm built locally (scripts/docker-base.sh makes one):
#   docker build --build-arg NODE_IMAGE=verdict/node:24-bookworm-local -t license-api:v1 .
ARG NODE_IMAGE=node:24.21.0-bookworm-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY license-api/ ./license-api/
ARG APP_VERSION=dev
RUN APP_VERSION=${APP_VERSION} node license-api/build.ts /out/app

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8000
WORKDIR /app
COPY --from=build --chown=0:0 /out/app/ /app/
# The numeric user matches runAsUser in the Kubernetes manifests (the image's `node` user, 1000).
USER 1000:1000
EXPOSE 8000
# Docker's own health check (Kubernetes ignores it and uses the probes in the manifests).
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/health/ready').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1 and receives SIGTERM itself: no npm or shell wrapper in between.
CMD ["node", "server.mjs"]
