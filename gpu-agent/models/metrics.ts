import { Gauge, type Registry } from 'prom-client';
import type { ModelFetcher } from './fetcher.ts';

/** Model download progress and cache use as Prometheus gauges, read from the store at each scrape. */
export function registerModelMetrics(registry: Registry, fetcher: ModelFetcher): void {
  const g = (name: string, help: string, labelNames: string[], collect: (this: Gauge) => void) => new Gauge({ name, help, labelNames, registers: [registry], collect });
  const active = () => fetcher.downloads().filter((d) => d.state === 'downloading' || d.state === 'verifying');
  const each = (gauge: Gauge, value: (d: ReturnType<typeof active>[number]) => number | null) => {
    gauge.reset();
    for (const d of active()) {
      const v = value(d);
      if (v !== null) gauge.set({ sha256: d.sha256 }, v);
    }
  };
  g('drydock_model_download_bytes', 'Bytes of a model download on disk so far (downloads under way)', ['sha256'], function () {
    each(this, (d) => d.bytes);
  });
  g('drydock_model_download_total_bytes', 'Size of a model being downloaded, when the source says it', ['sha256'], function () {
    each(this, (d) => d.totalBytes);
  });
  g('drydock_model_download_bytes_per_second', 'Download rate over the last seconds', ['sha256'], function () {
    each(this, (d) => d.bytesPerSecond);
  });
  g('drydock_model_download_eta_seconds', 'Seconds left of a download at its current rate', ['sha256'], function () {
    each(this, (d) => d.etaSeconds);
  });
  g('drydock_model_downloads_active', 'Model downloads under way', [], function () {
    this.set(active().length);
  });
  g('drydock_model_cache_bytes', 'Bytes in the model cache (verified models and partial downloads)', [], function () {
    this.set(fetcher.cacheView()?.usedBytes ?? 0);
  });
  g('drydock_model_cache_models', 'Verified models in the model cache', [], function () {
    this.set(fetcher.cacheView()?.models.length ?? 0);
  });
}
