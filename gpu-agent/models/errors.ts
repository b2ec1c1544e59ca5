/**
 * Why a model cannot be fetched, verified or loaded; `status` is the agent's HTTP answer (4xx: the
 * request or the source is wrong and a retry will not help; 5xx: try again). The old model keeps serving.
 */
export class ModelError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}
