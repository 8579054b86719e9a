import type { NextFunction, Request, Response } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The service's Prometheus metrics, on a registry of its own (so tests can run several apps). */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly acquires: Counter<'result'>;
  readonly heartbeats: Counter<'result'>;
  readonly releases: Counter<'result'>;
  readonly activeSessions: Gauge;
  readonly connectionsClosed: Counter<'reason'>;

  constructor(labels: Record<string, string>) {
    this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.httpRequests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by method, route template and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by method, route template and status',
      labelNames: ['method', 'route', 'status'],
      registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    });
    this.acquires = new Counter({
      name: 'license_acquire_total',
      help: 'Seat acquisitions by result',
      labelNames: ['result'],
      registers,
    });
    this.heartbeats = new Counter({
      name: 'license_heartbeat_total',
      help: 'Heartbeats by result',
      labelNames: ['result'],
      registers,
    });
    this.releases = new Counter({ name: 'license_release_total', help: 'Releases by result', labelNames: ['result'], registers });
    // Set by a background recount (see ActiveSessionsGauge in service.ts): a scrape never touches
    // Postgres, so a scrape flood cannot load the database and a stalled database cannot stall a scrape.
    this.activeSessions = new Gauge({
      name: 'license_active_sessions',
      help: 'Open, unexpired sessions (all licenses), recounted in the background every ACTIVE_SESSIONS_REFRESH_SECONDS',
      registers,
    });
    this.connectionsClosed = new Counter({
      name: 'http_connections_closed_total',
      help: 'Connections the server refused or closed to protect itself, by reason: max_connections (MAX_CONNECTIONS open already), pipelined_too_deep (more requests in flight than allowed), not_reading (the client did not read its answers)',
      labelNames: ['reason'],
      registers,
    });
  }

  /** Express middleware: counts every response under its route template (never the raw URL). */
  middleware() {
    return (req: Request, res: Response, next: NextFunction) => {
      const start = process.hrtime.bigint();
      res.once('finish', () => {
        const route = routeTemplate(req);
        const labels = { method: req.method, route, status: String(res.statusCode) };
        this.httpRequests.inc(labels);
        this.httpDuration.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
      });
      next();
    };
  }
}

function routeTemplate(req: Request): string {
  // Routers are mounted at the root with full paths, so the matched template is complete.
  const path = req.route?.path;
  return typeof path === 'string' ? path : 'unmatched';
}
