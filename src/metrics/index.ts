// The Prometheus metrics of both programs (issue 14), on prom-client.
//
// Every value is read from the live objects when Prometheus scrapes (each metric's `collect`):
// the packet path keeps its plain counters and pays nothing for the metrics. A `Metrics` holds
// one registry; `counter`/`gauge` declare a metric with the function that reads it:
//
//   const m = new Metrics();
//   m.counter('sixpn_router_dropped_packets_total', 'Packets the router dropped, by reason.', ['reason'],
//     (emit) => { for (const r of REASONS) emit(router.counters[`dropped_${r}`], { reason: r }); });
//   const server = await serveMetrics(m, '127.0.0.1:9586', log);   // GET /metrics
//
// Names follow Prometheus's conventions: `sixpn_` first, base units (seconds, bytes), counters
// end in `_total`, labels for what varies (reason, peer, machine, org, app, device).
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from '../log.ts';

export type Labels = Record<string, string | number>;
export type Emit = (value: number, labels?: Labels) => void;

/** A histogram's state, read at scrape time: cumulative counts per upper bound (then +Inf), sum, count. */
export interface BucketSource {
  readonly bounds: readonly number[];
  read(): { cumulative: number[]; sum: number; count: number };
}

export class Metrics {
  readonly registry = new Registry();

  /** The Node.js process metrics too (CPU, memory, event loop lag; prom-client's defaults). */
  constructor(opts: { process?: boolean } = {}) {
    if (opts.process === false) return;
    collectDefaultMetrics({ register: this.registry });
    // gauges whose names end in _total, which the conventions (and promtool) keep for counters
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
  }

  /** A counter (name ends in _total) whose values `read` emits at each scrape. */
  counter(name: string, help: string, labelNames: readonly string[], read: (emit: Emit) => void): void {
    new Counter({
      name, help, labelNames, registers: [this.registry],
      collect() {
        this.reset();
        read((v, labels) => {
          if (Number.isFinite(v) && v >= 0) labels === undefined ? this.inc(v) : this.inc(labels, v);
        });
      },
    });
  }

  /** A gauge whose values `read` emits at each scrape. */
  gauge(name: string, help: string, labelNames: readonly string[], read: (emit: Emit) => void): void {
    new Gauge({
      name, help, labelNames, registers: [this.registry],
      collect() {
        this.reset();
        read((v, labels) => {
          if (Number.isFinite(v)) labels === undefined ? this.set(v) : this.set(labels, v);
        });
      },
    });
  }

  /** A histogram kept elsewhere in plain arrays (no observe per event), exported as it is at scrape time. */
  histogram(name: string, help: string, source: BucketSource): void {
    this.registry.registerMetric(new BucketView(name, help, source));
  }

  /** The text exposition (what GET /metrics answers). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/**
 * A prom-client Histogram whose values come from a BucketSource instead of observe(): the
 * registry formats what `get` returns (the shape prom-client's own Histogram returns).
 */
class BucketView extends Histogram<string> {
  readonly #name: string;
  readonly #help: string;
  readonly #source: BucketSource;

  constructor(name: string, help: string, source: BucketSource) {
    super({ name, help, buckets: [...source.bounds], registers: [] });
    this.#name = name;
    this.#help = help;
    this.#source = source;
  }

  override async get(): Promise<Awaited<ReturnType<Histogram<string>['get']>>> {
    const { cumulative, sum, count } = this.#source.read();
    const bounds = this.#source.bounds;
    const n = this.#name;
    const values: Array<{ metricName: string; labels: Labels; value: number }> = cumulative.map((value, i) => ({
      metricName: `${n}_bucket`, labels: { le: i < bounds.length ? bounds[i] : '+Inf' }, value,
    }));
    values.push({ metricName: `${n}_sum`, labels: {}, value: sum }, { metricName: `${n}_count`, labels: {}, value: count });
    return { name: n, help: this.#help, type: 'histogram', values, aggregator: 'sum' } as unknown as Awaited<ReturnType<Histogram<string>['get']>>;
  }

  getForPromString(): Promise<Awaited<ReturnType<Histogram<string>['get']>>> {
    return this.get();
  }
}

/** Parses "HOST:PORT", "[V6]:PORT" or ":PORT" (all addresses; port 0: any free one); throws on anything else. */
export function parseListenAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`metrics address ${JSON.stringify(text)} is not HOST:PORT or [ADDR]:PORT`);
  return { host: m[1] ?? (m[2] === '' ? '::' : m[2]), port };
}

/** The HTTP server of /metrics. */
export class MetricsServer {
  readonly url: string;
  readonly #server: Server;

  private constructor(server: Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  async close(): Promise<void> {
    await new Promise((r) => this.#server.close(r));
  }

  /** Serves `metrics` at http://ADDRESS/metrics (and a pointer to it at /). */
  static async listen(metrics: Metrics, address: string, log: Logger): Promise<MetricsServer> {
    const { host, port } = parseListenAddress(address);
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
      if (path === '/') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('sixpn: metrics at /metrics\n');
      if (path !== '/metrics') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      metrics.text().then(
        (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : body),
        (err: Error) => {
          log.error(`metrics: ${err.message}`);
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
        },
      );
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve()));
    const a = server.address();
    const bound = typeof a === 'object' && a !== null ? a.port : port;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`;
    log.info(`metrics at ${url}`);
    return new MetricsServer(server, url);
  }
}
