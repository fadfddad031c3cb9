/**
 * The HTTP and WebSocket server (uWebSockets.js) of one replica's main thread. The only module
 * that creates and listens on a uWS app; everything it serves goes through the Router.
 *
 *   GET    /healthz            200 {"status":"ok"} (503 when healthProvider says otherwise)
 *   GET    /v1/status          JSON: router.info(), front-end state, and statusProvider()'s report
 *   GET    /metrics            Prometheus text format 0.0.4 of the metrics registry
 *   GET|PUT|DELETE|POST /v1/kv/:key     kv-routes.ts
 *   POST   /v1/kv/_batch       batch.ts
 *   GET|PUT|DELETE|POST /v1/delos/<group>/:key   the same key routes on a Delos log group's router
 *   WS     /v1/ws              ws-handler.ts, protocol in ws-protocol.ts
 */
import { PaxosStoreError } from '../../errors.js';
import { PROMETHEUS_CONTENT_TYPE } from '../../metrics/prometheus.js';
import type { MetricsRegistry } from '../../metrics/registry.js';
import { RequestMetrics } from '../../metrics/request-metrics.js';
import type { Router } from '../../router/types.js';
import { type ListenSocket, loadUws } from '../uws.js';
import { registerBatchRoute } from './batch.js';
import { RequestIdSource } from './execute.js';
import { beginExchange, errorReply, jsonReply, respond } from './http-io.js';
import { type HttpContext, registerKeyRoutes, serve } from './kv-routes.js';
import { type HttpLimits, resolveHttpLimits } from './limits.js';
import { WsFrontend } from './ws-handler.js';

export interface HttpServerOptions {
  /** Interface to bind; default 127.0.0.1. */
  readonly host?: string;
  /** 0 picks a free port (read it from the returned server). */
  readonly port: number;
  readonly router: Router;
  /** Delos log groups by name, each with the router that reaches its applicator (docs/delos.md). */
  readonly logGroups?: ReadonlyMap<string, Router>;
  /** One server per registry: it registers the request and connection metrics in it. */
  readonly metrics: MetricsRegistry;
  readonly limits?: Partial<HttpLimits>;
  /** Extra facts for GET /v1/status: replicas, shards, peer link state, in-flight work. */
  readonly statusProvider?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** GET /healthz answers 503 with `reason` when this says unhealthy. */
  readonly healthProvider?: () => { readonly healthy: boolean; readonly reason?: string };
}

export interface HttpServer {
  readonly host: string;
  readonly port: number;
  /** Name of the npm package whose uWebSockets.js binary serves this. */
  readonly uwsPackage: string;
  /** Stops listening and closes every connection (WebSockets with 1001); idempotent. */
  close(): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { module: uws, packageName } = loadUws();
  const limits = resolveHttpLimits(options.limits);
  const host = options.host ?? '127.0.0.1';
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
    throw new PaxosStoreError('INVALID_ARGUMENT', `port must be 0–65535, got ${options.port}`);
  }
  const context: HttpContext = {
    router: options.router,
    limits,
    metrics: new RequestMetrics(options.metrics),
    requestIds: new RequestIdSource(),
    http: { inFlight: 0 },
  };
  const ws = new WsFrontend(context, options.metrics);
  registerConnectionGauges(options.metrics, ws, context);

  const app = uws.App();
  app.ws('/v1/ws', ws.behavior(uws.DISABLED));
  registerBatchRoute(app, context);
  registerKeyRoutes(app, context);
  for (const [group, router] of options.logGroups ?? []) registerKeyRoutes(app, { ...context, router }, `/v1/delos/${group}`, 'delos_');
  app.get('/healthz', (res) =>
    serve(context, res, 'health', async () => {
      const health = options.healthProvider?.() ?? { healthy: true };
      return health.healthy
        ? jsonReply(200, { status: 'ok' })
        : jsonReply(503, { status: 'unhealthy', reason: health.reason ?? 'unknown' });
    }),
  );
  app.get('/v1/status', (res) =>
    serve(context, res, 'status', async () => {
      const provided = (await options.statusProvider?.()) ?? {};
      return jsonReply(200, {
        router: options.router.info(),
        frontends: {
          // This status request itself is one of the HTTP exchanges in flight.
          http: { inFlight: context.http.inFlight },
          ws: { connections: ws.sockets.size, inFlight: ws.inFlight() },
        },
        ...provided,
      });
    }),
  );
  app.get('/metrics', (res) =>
    serve(context, res, 'metrics', async () => ({
      status: 200,
      contentType: PROMETHEUS_CONTENT_TYPE,
      body: options.metrics.render(),
    })),
  );
  app.any('/*', (res, req) => {
    const exchange = beginExchange(res);
    const what = `${req.getMethod().toUpperCase()} ${req.getUrl()}`;
    respond(exchange, errorReply(new PaxosStoreError('NOT_FOUND', `no route for ${what}`)));
  });

  const listenSocket = await listen(uws, app, host, options.port);
  const port = uws.us_socket_local_port(listenSocket);
  let closed = false;
  return {
    host,
    port,
    uwsPackage: packageName,
    close: async () => {
      if (closed) return;
      closed = true;
      uws.us_listen_socket_close(listenSocket);
      ws.closeAll();
      // Closes the remaining (HTTP keep-alive) sockets so nothing keeps the process alive.
      // (app.close() exists since uWS.js v20.29 but is missing from the v20.30 type declarations.)
      (app as typeof app & { close(): void }).close();
    },
  };
}

function listen(
  uws: ReturnType<typeof loadUws>['module'],
  app: ReturnType<ReturnType<typeof loadUws>['module']['App']>,
  host: string,
  port: number,
): Promise<ListenSocket> {
  return new Promise((resolve, reject) => {
    // Exclusive: a second server on the same port must fail, not silently share it (SO_REUSEPORT).
    const listenWithOptions = app.listen as unknown as (
      host: string,
      port: number,
      options: number,
      callback: (socket: ListenSocket | false) => void,
    ) => void;
    listenWithOptions.call(app, host, port, uws.LIBUS_LISTEN_EXCLUSIVE_PORT, (socket) => {
      if (socket === false) {
        reject(new PaxosStoreError('IO_ERROR', `cannot listen on ${host}:${port} (in use or not permitted)`));
      } else {
        resolve(socket);
      }
    });
  });
}

function registerConnectionGauges(registry: MetricsRegistry, ws: WsFrontend, context: HttpContext): void {
  const httpInFlight = registry
    .gauge({ name: 'paxosstore_http_in_flight_requests', help: 'HTTP requests received and not yet answered.' })
    .with();
  const connections = registry
    .gauge({ name: 'paxosstore_ws_connections', help: 'Open WebSocket connections.' })
    .with();
  const inFlight = registry
    .gauge({ name: 'paxosstore_ws_in_flight_requests', help: 'WebSocket requests received and not yet answered.' })
    .with();
  registry.onCollect(() => {
    connections.set(ws.sockets.size);
    inFlight.set(ws.inFlight());
    httpInFlight.set(context.http.inFlight);
  });
}
