import { HttpError } from './http.ts';

export interface LimitSettings {
  /** Control requests served at once (long polls and model swaps included); 0: no cap. */
  maxControlConcurrency: number;
  /** Requests per second each token may make, averaged; 0: no limit. */
  ratePerToken: number;
  /** Requests a token may make in a burst above the rate. */
  burstPerToken: number;
}

export const LIMIT_DEFAULTS: LimitSettings = { maxControlConcurrency: 32, ratePerToken: 100, burstPerToken: 200 };

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Request limits: a cap on concurrent control requests and a token bucket per caller. Both answer
 * 429 with Retry-After, which the worker's agent client honours.
 */
export class RequestLimits {
  private control = 0;
  private readonly buckets = new Map<string, Bucket>();

  constructor(readonly settings: LimitSettings, private readonly now: () => number = Date.now) {}

  /** Charges one request to `id`; throws 429 when its bucket is empty. */
  charge(id: string): void {
    const { ratePerToken: rate, burstPerToken: burst } = this.settings;
    if (rate <= 0) return;
    const t = this.now();
    const b = this.buckets.get(id) ?? { tokens: burst, at: t };
    b.tokens = Math.min(burst, b.tokens + ((t - b.at) / 1000) * rate);
    b.at = t;
    if (b.tokens < 1) {
      this.buckets.set(id, b);
      const seconds = Math.max(1, Math.ceil((1 - b.tokens) / rate));
      throw new HttpError(429, `rate limit: more than ${rate} requests per second with this token (burst ${burst}); retry after ${seconds}s`, { 'retry-after': String(seconds) });
    }
    b.tokens -= 1;
    this.buckets.set(id, b);
    if (this.buckets.size > 10_000) this.buckets.clear(); // unknown callers never reach here; this bounds memory anyway
  }

  /** Takes a control slot; the returned function gives it back. Throws 429 when all are taken. */
  enterControl(): () => void {
    const cap = this.settings.maxControlConcurrency;
    if (cap > 0 && this.control >= cap) {
      throw new HttpError(429, `busy: ${cap} control requests are in progress (--max-control-concurrency); retry after 1s`, { 'retry-after': '1' });
    }
    this.control++;
    let done = false;
    return () => {
      if (!done) this.control--;
      done = true;
    };
  }

  get controlInFlight(): number {
    return this.control;
  }
}
