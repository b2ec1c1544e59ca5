# drydock control worker: runs every fleet workflow and the activities that call cloud APIs and agents.
# Build from the repository root:  docker build -f deploy/docker/worker.Dockerfile -t drydock-worker .
FROM node:20-bookworm-slim
# The Worker Deployment build id the workers poll as (there is no .git in the image to take it from):
#   --build-arg DRYDOCK_BUILD_ID=0.1.0-$(git rev-parse --short=12 HEAD)   (also the image tag; deploy/k8s sets it too)
ARG DRYDOCK_BUILD_ID=
ENV NODE_ENV=production DRYDOCK_BUILD_ID=${DRYDOCK_BUILD_ID}
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/ensure-deps.sh ./scripts/
# As the project's own scripts install (npm ci refuses a lock made on Linux: other platforms' optional binaries are missing).
# Not --omit=optional: esbuild's (tsx) and swc's (the workflow bundler) platform binaries are optional dependencies.
# The control worker runs no inference and no training: llama.cpp's prebuilt binaries (~650 MB) and tfjs-node go.
RUN bash scripts/ensure-deps.sh --omit=dev --ignore-scripts \
    && rm -rf node_modules/@node-llama-cpp node_modules/@tensorflow/tfjs-node node_modules/@tensorflow/tfjs-node-gpu \
    && npm cache clean --force
COPY tsconfig.json ./
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY gpu-agent ./gpu-agent
# The drydock CLI and the helpers it imports (scripts/sim and its dev server are not in the image).
COPY scripts/cli ./scripts/cli
COPY scripts/lib ./scripts/lib
COPY scripts/schedules ./scripts/schedules
RUN ln -s /app/scripts/cli/drydock.mjs /usr/local/bin/drydock
USER node
# Connection: TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_API_KEY / TEMPORAL_TLS_* or a profile.
# Required: DRYDOCK_AGENT_KEY(_FILE) (per-node agent tokens are derived from it). Optional: DRYDOCK_CODEC_KEY(_FILE), DRYDOCK_METRICS_ADDRESS.
ENV DRYDOCK_POOLS_FILE=/etc/drydock/pools.yaml \
    DRYDOCK_METRICS_ADDRESS=0.0.0.0:9464
EXPOSE 9464
# SIGTERM lets in-flight activities finish (shutdownGraceTime) before the pod goes.
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "workers/control.ts"]
