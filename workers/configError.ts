/** A worker setting from env is missing or unusable: the worker prints the message and exits with code 2. */
export class WorkerConfigError extends Error {}
