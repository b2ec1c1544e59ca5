# drydock gpu-agent: one per GPU host. nvidia-smi and the driver's libraries come from the host
# (the NVIDIA container toolkit, or the hostPath mounts in deploy/k8s/agent-daemonset.yaml).
# Build from the repository root:  docker build -f deploy/docker/agent.Dockerfile -t drydock-agent .
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/ensure-deps.sh ./scripts/
# As the project's own scripts install (npm ci refuses a lock made on Linux: other platforms' optional binaries are missing).
# Optional dependencies stay: node-llama-cpp's prebuilt CUDA / Vulkan / CPU binaries and esbuild's (tsx) are
# optional dependencies of those packages, so --omit=optional would leave the agent unable to start or to serve.
# --ignore-scripts: with the binaries present no compiler is needed (the agent loads them with build: 'never');
# node-llama-cpp's postinstall would only try to build llama.cpp from source, and tfjs-node's (unused here) downloads.
RUN bash scripts/ensure-deps.sh --omit=dev --ignore-scripts && npm cache clean --force
COPY tsconfig.json ./
COPY gpu-agent ./gpu-agent
# Pure helpers the agent shares with the workflows (model URIs, digests).
COPY workflows/common ./workflows/common
# The agent listens on every interface so the control worker can reach it at the node's IP.
ENV DRYDOCK_AGENT_HOST=0.0.0.0 \
    DRYDOCK_AGENT_PORT=9400 \
    DRYDOCK_AGENT_DATA_DIR=/var/lib/drydock-agent \
    DRYDOCK_AGENT_GPU_BACKEND=nvidia \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
EXPOSE 9400
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "gpu-agent/main.ts"]
