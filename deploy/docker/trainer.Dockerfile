# drydock trainer worker: runs training activities with native TensorFlow (tfjs-node built by
# scripts/install-tfjs-native.sh from the PyPI TensorFlow 2.15.1 wheel; nothing from other hosts).
# Build from the repository root:
#   docker build -f deploy/docker/trainer.Dockerfile -t drydock-trainer .                          # CPU
#   docker build -f deploy/docker/trainer.Dockerfile --build-arg TF_NATIVE=--gpu -t drydock-trainer:gpu .  # GPU (CUDA 12 wheels, ~3 GB more)
# On GPU hosts run it with the NVIDIA container toolkit (--gpus all); the driver comes from the host.
ARG TF_NATIVE=--cpu

FROM node:20-bookworm-slim AS build
ARG TF_NATIVE
# The addon is compiled here (Node's headers ship in this image); pip downloads the wheel.
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 python3-pip && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/ensure-deps.sh ./scripts/
# --ignore-scripts: tfjs-node's own install script downloads from a host we do not use; the installer below builds it.
# As the project's own scripts install (npm ci refuses a lock made on Linux: other platforms' optional binaries are missing).
RUN bash scripts/ensure-deps.sh --omit=dev --ignore-scripts && npm cache clean --force
COPY tsconfig.json ./
COPY scripts/install-tfjs-native.sh ./scripts/
COPY scripts/native ./scripts/native
ENV DRYDOCK_CACHE_DIR=/opt/drydock-cache
RUN bash scripts/install-tfjs-native.sh ${TF_NATIVE} && rm -rf /root/.npm /root/.cache/pip

FROM node:20-bookworm-slim
# The same build id as the control worker image of this release (--build-arg DRYDOCK_BUILD_ID=...).
ARG DRYDOCK_BUILD_ID=
ENV NODE_ENV=production DRYDOCK_CACHE_DIR=/opt/drydock-cache DRYDOCK_BUILD_ID=${DRYDOCK_BUILD_ID}
WORKDIR /app
# node_modules/@tensorflow/tfjs-node(-gpu)/deps points into the cache: both keep their paths.
COPY --from=build /opt/drydock-cache /opt/drydock-cache
COPY --from=build /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
USER node
# Connection: TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_API_KEY / TEMPORAL_TLS_* or a profile.
# Optional: DRYDOCK_CODEC_KEY(_FILE) (same keys as the control worker), DRYDOCK_TRAINER_CONCURRENCY.
ENV DRYDOCK_TRAINER_TASK_QUEUE=drydock-trainer \
    DRYDOCK_METRICS_ADDRESS=0.0.0.0:9465 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
EXPOSE 9465
STOPSIGNAL SIGTERM
# The start line names the backend, TensorFlow's version and the devices it sees.
CMD ["node", "--import", "tsx", "workers/trainer.ts"]
