# drydock gpu-agent: one per GPU host. nvidia-smi and the driver's libraries come from the host
# (the NVIDIA container toolkit, or the hostPath mounts in deploy/k8s/agent-daemonset.yaml).
# Build from the repository root:  docker build -f deploy/docker/agent.Dockerfile -t drydock-agent .
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/ensure-deps.sh ./scripts/
# node-llama-cpp ships prebuilt CUDA / Vulkan / CPU binaries; no compiler is needed (build: 'never').
# As the project's own scripts install (npm ci refuses a lock made on Linux: other platforms' optional binaries are missing).
RUN bash scripts/ensure-deps.sh --omit=dev --omit=optional && npm cache clean --force
COPY tsconfig.json ./
COPY gpu-agent ./gpu-agent
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
