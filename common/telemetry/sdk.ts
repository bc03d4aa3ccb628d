/**
 * Turns tracing on in a process when OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: registers the tracer
 * provider, an AsyncLocalStorage context manager and the W3C propagator
 * with @opentelemetry/api. Unset (or OTEL_SDK_DISABLED=true, or
 * OTEL_TRACES_EXPORTER=none) nothing is registered and the API stays a
 * no-op. Called from each component's main.ts only.
 *
 * Standard variables read: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT,HEADERS,TIMEOUT,PROTOCOL},
 * OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_{SCHEDULE_DELAY,MAX_QUEUE_SIZE,
 * MAX_EXPORT_BATCH_SIZE}. Only the http/json protocol is spoken.
 * SLUICE_OTEL_CONTEXT=none skips the context manager (see below).
 */
import { hostname } from 'node:os';
import { context, propagation, trace } from '@opentelemetry/api';
import type { Running } from '../cli.js';
import type { Logger } from '../logger.js';
import { AsyncLocalStorageContextManager } from './context-manager.js';
import {
  OtlpJsonBatchProcessor,
  otlpOptionsFromEnv,
  otlpTracesUrl,
  parseKeyValueList,
} from './otlp-json-exporter.js';
import { W3CTraceContextPropagator } from './trace-context.js';
import { SluiceTracerProvider, samplerFromEnv } from './tracer-provider.js';
import { setTracingEnabled } from './tracing.js';

export interface Telemetry {
  readonly enabled: boolean;
  /** Exports what is queued and stops. */
  shutdown(): Promise<void>;
}

const OFF: Telemetry = { enabled: false, shutdown: async () => undefined };

export function startTelemetry(
  defaultServiceName: string,
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Telemetry {
  const url = otlpTracesUrl(env);
  if (!url || env.OTEL_SDK_DISABLED === 'true') return OFF;
  if ((env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',').every((e) => e.trim() === 'none')) return OFF;
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (protocol && protocol !== 'http/json') {
    logger.warn(
      { protocol },
      'only OTLP http/json is supported; sending JSON to the same endpoint',
    );
  }
  const attrs = parseKeyValueList(env.OTEL_RESOURCE_ATTRIBUTES);
  const resource = {
    ...attrs,
    'service.name': env.OTEL_SERVICE_NAME || attrs['service.name'] || defaultServiceName,
    'service.instance.id': attrs['service.instance.id'] ?? `${hostname()}:${process.pid}`,
    'host.name': hostname(),
    'process.pid': process.pid,
    'telemetry.sdk.name': 'sluice',
    'telemetry.sdk.language': 'nodejs',
  };
  const processor = new OtlpJsonBatchProcessor(otlpOptionsFromEnv(url, resource, env), logger);
  const provider = new SluiceTracerProvider(processor, samplerFromEnv(env));
  // The active context across awaits is what puts trace ids on log lines. On
  // Node 20 AsyncLocalStorage rides on async_hooks and costs about half the
  // gateway's send throughput at 100% sampling; SLUICE_OTEL_CONTEXT=none
  // trades those log ids for throughput (spans are unaffected: every span's
  // parent is passed explicitly).
  if (env.SLUICE_OTEL_CONTEXT !== 'none') {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager());
  }
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  setTracingEnabled(true);
  logger.info({ url, service: resource['service.name'] }, 'tracing on (OTLP/HTTP JSON)');
  return {
    enabled: true,
    shutdown: async () => {
      setTracingEnabled(false);
      await provider.shutdown();
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
  const telemetry = startTelemetry(serviceName, logger);
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
