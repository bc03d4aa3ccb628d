/**
 * Batching span processor + OTLP/HTTP exporter (JSON encoding, which every
 * OpenTelemetry Collector accepts on /v1/traces). Spans queue in memory and
 * leave every OTEL_BSP_SCHEDULE_DELAY ms or when a batch fills; a full
 * queue drops new spans (counted, never blocking a request). Export failures
 * are logged once per burst and the batch is dropped, as the SDKs do.
 */
import type { Attributes, AttributeValue, Link } from '@opentelemetry/api';
import type { Logger } from '../logger.js';
import type { FinishedSpan, SpanProcessor } from './tracer-provider.js';

export const DEFAULT_BSP_SCHEDULE_DELAY_MS = 5_000;
export const DEFAULT_BSP_MAX_QUEUE_SIZE = 2_048;
export const DEFAULT_BSP_MAX_EXPORT_BATCH_SIZE = 512;
export const DEFAULT_OTLP_TIMEOUT_MS = 10_000;

export interface OtlpExporterOptions {
  /** Full URL of the traces endpoint, e.g. http://collector:4318/v1/traces. */
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
  scheduleDelayMs: number;
  maxQueueSize: number;
  maxExportBatchSize: number;
  /** Resource attributes sent with every batch (service.name …). */
  resource: Attributes;
}

function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const v = Number(env[name]);
  return Number.isFinite(v) && v >= 0 && env[name] !== '' ? v : fallback;
}

/** `k1=v1,k2=v2` (URL-encoded values) as OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES write them. */
export function parseKeyValueList(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (text ?? '').split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const key = part.slice(0, i).trim();
    try {
      out[key] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      out[key] = part.slice(i + 1).trim();
    }
  }
  return out;
}

/** The traces URL the OTEL_EXPORTER_OTLP_* variables name, or undefined when tracing is not configured. */
export function otlpTracesUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const specific = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (specific) return specific;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!base) return undefined;
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

export function otlpOptionsFromEnv(
  url: string,
  resource: Attributes,
  env: NodeJS.ProcessEnv = process.env,
): OtlpExporterOptions {
  return {
    url,
    headers: {
      ...parseKeyValueList(env.OTEL_EXPORTER_OTLP_HEADERS),
      ...parseKeyValueList(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS),
    },
    timeoutMs: intEnv(
      env,
      'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT',
      intEnv(env, 'OTEL_EXPORTER_OTLP_TIMEOUT', DEFAULT_OTLP_TIMEOUT_MS),
    ),
    scheduleDelayMs: intEnv(env, 'OTEL_BSP_SCHEDULE_DELAY', DEFAULT_BSP_SCHEDULE_DELAY_MS),
    maxQueueSize: Math.max(1, intEnv(env, 'OTEL_BSP_MAX_QUEUE_SIZE', DEFAULT_BSP_MAX_QUEUE_SIZE)),
    maxExportBatchSize: Math.max(
      1,
      intEnv(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', DEFAULT_BSP_MAX_EXPORT_BATCH_SIZE),
    ),
    resource,
  };
}

type AnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: AnyValue[] } };

function anyValue(v: AttributeValue | null | undefined): AnyValue {
  if (Array.isArray(v)) return { arrayValue: { values: v.map((x) => anyValue(x)) } };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number')
    return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  return { stringValue: v == null ? '' : String(v) };
}

function keyValues(attrs: Attributes): { key: string; value: AnyValue }[] {
  const out: { key: string; value: AnyValue }[] = [];
  for (const key in attrs) {
    const v = attrs[key];
    if (v !== undefined) out.push({ key, value: anyValue(v) });
  }
  return out;
}

function linkJson(l: Link) {
  return {
    traceId: l.context.traceId,
    spanId: l.context.spanId,
    ...(l.context.traceState ? { traceState: l.context.traceState.serialize() } : {}),
    attributes: keyValues(l.attributes ?? {}),
  };
}

/** One ExportTraceServiceRequest in OTLP/JSON (ids as hex, times as decimal strings). */
export function toOtlpJson(spans: readonly FinishedSpan[], resource: Attributes): unknown {
  const byScope = new Map<string, { scope: FinishedSpan['scope']; spans: unknown[] }>();
  for (const s of spans) {
    const key = `${s.scope.name}@${s.scope.version ?? ''}`;
    let group = byScope.get(key);
    if (!group) {
      group = { scope: s.scope, spans: [] };
      byScope.set(key, group);
    }
    group.spans.push({
      traceId: s.context.traceId,
      spanId: s.context.spanId,
      ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
      ...(s.context.traceState ? { traceState: s.context.traceState.serialize() } : {}),
      name: s.name,
      // OTLP numbers kinds from 1 (INTERNAL); the API from 0.
      kind: s.kind + 1,
      startTimeUnixNano: s.startNs.toString(),
      endTimeUnixNano: s.endNs.toString(),
      attributes: keyValues(s.attributes),
      events: s.events.map((e) => ({
        timeUnixNano: e.timeNs.toString(),
        name: e.name,
        attributes: keyValues(e.attributes),
      })),
      links: s.links.map(linkJson),
      status: { code: s.status.code, ...(s.status.message ? { message: s.status.message } : {}) },
    });
  }
  return {
    resourceSpans: [
      {
        resource: { attributes: keyValues(resource) },
        scopeSpans: [...byScope.values()].map((g) => ({ scope: g.scope, spans: g.spans })),
      },
    ],
  };
}

export class OtlpJsonBatchProcessor implements SpanProcessor {
  private queue: FinishedSpan[] = [];
  private timer: NodeJS.Timeout | undefined;
  private exporting: Promise<void> = Promise.resolve();
  private closed = false;
  /** Spans dropped because the queue was full or an export failed. */
  dropped = 0;
  private failing = false;

  constructor(
    private readonly options: OtlpExporterOptions,
    private readonly logger: Logger,
  ) {}

  onEnd(span: FinishedSpan): void {
    if (this.closed) return;
    if (this.queue.length >= this.options.maxQueueSize) {
      this.dropped++;
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.options.maxExportBatchSize) void this.flushSoon(0);
    else if (!this.timer) this.flushSoon(this.options.scheduleDelayMs);
  }

  private flushSoon(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.forceFlush();
    }, delayMs);
    this.timer.unref();
  }

  /** Exports everything queued so far; resolves when those exports finished. */
  forceFlush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    // Exports run one at a time, in order.
    this.exporting = this.exporting.then(async () => {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.options.maxExportBatchSize);
        await this.send(batch);
      }
    });
    return this.exporting;
  }

  private async send(batch: FinishedSpan[]): Promise<void> {
    try {
      const res = await fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.options.headers },
        body: JSON.stringify(toOtlpJson(batch, this.options.resource)),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      this.failing = false;
    } catch (err) {
      this.dropped += batch.length;
      if (!this.failing) {
        this.logger.warn(
          { url: this.options.url, spans: batch.length, err: String(err) },
          'span export failed; dropping the batch',
        );
      }
      this.failing = true;
    }
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.closed = true;
  }
}
