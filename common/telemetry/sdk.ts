/**
 * Turns tracing on in a process when OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, with the official
 * OpenTelemetry SDK: a BasicTracerProvider with a BatchSpanProcessor and the
 * OTLP/HTTP (JSON) exporter, the W3C trace-context propagator and an
 * AsyncLocalStorage context manager, all registered with
 * @opentelemetry/api. The only place that wires the SDK; called from each
 * component's main.ts (through withTelemetry).
 *
 * Tracing off (no endpoint, OTEL_SDK_DISABLED=true or
 * OTEL_TRACES_EXPORTER=none): nothing is loaded or registered, the API
 * stays a no-op and instrumented code skips span work (tracingEnabled()).
 *
 * The endpoint is read here (from `env`); the SDK packages read the other
 * standard variables themselves (from process.env):
 * OTEL_EXPORTER_OTLP_[TRACES_]{HEADERS,TIMEOUT,COMPRESSION},
 * OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_*, OTEL_SPAN_*_LIMIT,
 * OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (service.name defaults to
 * the component's, e.g. sluice-broker). OTEL_LOG_LEVEL sets what the SDK
 * itself logs (default warn: failed exports). Only the http/json protocol
 * is spoken. SLUICE_OTEL_CONTEXT=none skips the context manager (below).
 */
import { hostname } from 'node:os';
import { context, DiagLogLevel, diag, propagation, trace } from '@opentelemetry/api';
import type { Running } from '../cli.js';
import type { Logger } from '../logger.js';
import { setTracingEnabled } from './tracing.js';

export interface Telemetry {
  readonly enabled: boolean;
  /** Exports what is queued so far. */
  forceFlush(): Promise<void>;
  /** Exports what is queued and unregisters everything. */
  shutdown(): Promise<void>;
}

const OFF: Telemetry = {
  enabled: false,
  forceFlush: async () => undefined,
  shutdown: async () => undefined,
};

/** The traces URL the OTEL_EXPORTER_OTLP_* variables name, or undefined when tracing is not configured. */
export function otlpTracesUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const specific = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (specific) return specific;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!base) return undefined;
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

/** True when the environment asks for tracing (an OTLP endpoint, not disabled). */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if (!otlpTracesUrl(env) || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  return !(env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',').every((e) => e.trim() === 'none');
}

const DIAG_LEVELS: Record<string, DiagLogLevel> = {
  none: DiagLogLevel.NONE,
  error: DiagLogLevel.ERROR,
  warn: DiagLogLevel.WARN,
  info: DiagLogLevel.INFO,
  debug: DiagLogLevel.DEBUG,
  verbose: DiagLogLevel.VERBOSE,
  all: DiagLogLevel.ALL,
};

/**
 * Starts tracing when `env` asks for it (see the file comment); the SDK
 * modules are loaded only then.
 */
export async function startTelemetry(
  defaultServiceName: string,
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Telemetry> {
  const url = otlpTracesUrl(env);
  if (!url || !tracingConfigured(env)) return OFF;
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (protocol && protocol !== 'http/json') {
    logger.warn(
      { protocol },
      'only OTLP http/json is supported; sending JSON to the same endpoint',
    );
  }
  const [{ AsyncLocalStorageContextManager }, { W3CTraceContextPropagator }, otlp, res, sdk] =
    await Promise.all([
      import('@opentelemetry/context-async-hooks'),
      import('@opentelemetry/core'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-trace-base'),
    ]);

  // The SDK's own complaints (a failed export, a bad variable) go to our log.
  const sdkLog = logger.child({ component: 'otel' });
  diag.setLogger(
    {
      error: (msg, ...args) => sdkLog.error({ args }, msg),
      warn: (msg, ...args) => sdkLog.warn({ args }, msg),
      info: (msg, ...args) => sdkLog.info({ args }, msg),
      debug: (msg, ...args) => sdkLog.debug({ args }, msg),
      verbose: (msg, ...args) => sdkLog.trace({ args }, msg),
    },
    DIAG_LEVELS[(env.OTEL_LOG_LEVEL ?? 'warn').trim().toLowerCase()] ?? DiagLogLevel.WARN,
  );

  // Ours first, then what OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say (they win).
  const resource = res
    .defaultResource()
    .merge(
      res.resourceFromAttributes({
        'service.name': defaultServiceName,
        'service.instance.id': `${hostname()}:${process.pid}`,
        'host.name': hostname(),
        'process.pid': process.pid,
      }),
    )
    .merge(res.detectResources({ detectors: [res.envDetector] }));
  const provider = new sdk.BasicTracerProvider({
    resource,
    spanProcessors: [new sdk.BatchSpanProcessor(new otlp.OTLPTraceExporter({ url }))],
  });
  // The active context across awaits is what puts trace ids on log lines. On
  // Node 20 AsyncLocalStorage rides on async_hooks and costs a large share of
  // the gateway's send throughput at 100% sampling; SLUICE_OTEL_CONTEXT=none
  // trades those log ids for throughput (spans are unaffected: every span's
  // parent is passed explicitly).
  if (env.SLUICE_OTEL_CONTEXT !== 'none') {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  }
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  setTracingEnabled(true);
  const service = resource.attributes['service.name'];
  logger.info({ url, service }, 'tracing on (OTLP/HTTP JSON)');
  return {
    enabled: true,
    forceFlush: () => provider.forceFlush(),
    shutdown: async () => {
      setTracingEnabled(false);
      try {
        await provider.shutdown();
      } finally {
        trace.disable();
        propagation.disable();
        context.disable();
        diag.disable();
      }
    },
  };
}

/**
 * Starts tracing (when configured), then the component; closing the
 * component flushes the spans it left.
 *
 * @example start: (options, logger) => withTelemetry('sluice-broker', logger, () => startBroker(options, logger))
 */
export async function withTelemetry<R extends Running>(
  serviceName: string,
  logger: Logger,
  start: () => Promise<R>,
): Promise<R> {
  const telemetry = await startTelemetry(serviceName, logger);
  let running: R;
  try {
    running = await start();
  } catch (err) {
    await telemetry.shutdown();
    throw err;
  }
  const close = running.close.bind(running);
  running.close = async () => {
    try {
      await close();
    } finally {
      await telemetry.shutdown();
    }
  };
  return running;
}
