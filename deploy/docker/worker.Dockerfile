# drydock control worker: runs every fleet workflow and the activities that call cloud APIs and agents.
# Build from the repository root:  docker build -f deploy/docker/worker.Dockerfile -t drydock-worker .
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# Optional deps (tfjs-node) and dev deps are not needed by the control worker.
RUN npm ci --omit=dev --omit=optional --ignore-scripts && npm cache clean --force
COPY tsconfig.json ./
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY gpu-agent ./gpu-agent
COPY scripts/cli ./scripts/cli
RUN ln -s /app/scripts/cli/drydock.mjs /usr/local/bin/drydock
USER node
# Connection: TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_API_KEY / TEMPORAL_TLS_* or a profile.
# Required: DRYDOCK_AGENT_TOKEN. Optional: DRYDOCK_CODEC_KEY(_FILE), DRYDOCK_METRICS_ADDRESS.
ENV DRYDOCK_POOLS_FILE=/etc/drydock/pools.yaml \
    DRYDOCK_METRICS_ADDRESS=0.0.0.0:9464
EXPOSE 9464
# SIGTERM lets in-flight activities finish (shutdownGraceTime) before the pod goes.
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "workers/control.ts"]
