/**
 * A small tracer provider behind @opentelemetry/api: spans with attributes,
 * events, links and status, W3C ids, the standard samplers, handed to a
 * processor when they end. Why not @opentelemetry/sdk-trace-base: its
 * Node 20 line (2.x) declares `@opentelemetry/api <1.10` as a peer and we
 * depend on 1.10; the 3.x line needs Node >= 22.15. The API is the only
 * contract the rest of the code sees, so swapping this for the official SDK
 * later touches common/telemetry/sdk.ts alone.
 */
import { randomFillSync } from 'node:crypto';
import {
  type Attributes,
  type AttributeValue,
  type Context,
  context as contextApi,
  type Exception,
  type HrTime,
  isSpanContextValid,
  type Link,
  type Span,
  type SpanAttributes,
  type SpanAttributeValue,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  type SpanStatus,
  SpanStatusCode,
  type TimeInput,
  TraceFlags,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';

/** Nanoseconds since the epoch. */
export type EpochNanos = bigint;

export interface FinishedSpan {
  name: string;
  kind: SpanKind;
  context: SpanContext;
  parentSpanId?: string;
  startNs: EpochNanos;
  endNs: EpochNanos;
  attributes: Attributes;
  events: { name: string; timeNs: EpochNanos; attributes: Attributes }[];
  links: Link[];
  status: SpanStatus;
  scope: { name: string; version?: string };
}

export interface SpanProcessor {
  onEnd(span: FinishedSpan): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Whether a new span is recorded and exported; `parent` is the span context it continues, if any. */
export type Sampler = (traceId: string, parent: SpanContext | undefined) => boolean;

/** Most attributes a span keeps (the SDK default). */
const MAX_ATTRIBUTES = 128;

/**
 * The sampler OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG name (default
 * parentbased_always_on), as the SDKs read them.
 */
export function samplerFromEnv(env: NodeJS.ProcessEnv = process.env): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  const arg = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1');
  const ratio = Number.isFinite(arg) ? Math.min(1, Math.max(0, arg)) : 1;
  // Upper 56 bits of the trace id against the ratio, like the SDKs' TraceIdRatioBased.
  const byRatio: Sampler = (traceId) =>
    ratio >= 1 ? true : Number.parseInt(traceId.slice(-14), 16) / 2 ** 56 < ratio;
  const root: Sampler = name.endsWith('always_off')
    ? () => false
    : name.endsWith('traceidratio')
      ? byRatio
      : () => true;
  if (!name.startsWith('parentbased')) return root;
  return (traceId, parent) =>
    parent ? (parent.traceFlags & TraceFlags.SAMPLED) !== 0 : root(traceId, undefined);
}

/** Random bytes for ids, drawn from a pool refilled 4 KiB at a time (one syscall per ~170 spans). */
const ID_POOL = Buffer.allocUnsafe(4096);
let idPoolOffset = ID_POOL.length;

/** `bytes` random bytes as lower-case hex, never all zero (an invalid W3C id). */
function randomId(bytes: number): string {
  for (;;) {
    if (idPoolOffset + bytes > ID_POOL.length) {
      randomFillSync(ID_POOL);
      idPoolOffset = 0;
    }
    const id = ID_POOL.toString('hex', idPoolOffset, idPoolOffset + bytes);
    idPoolOffset += bytes;
    if (!/^0+$/.test(id)) return id;
  }
}

function epochNanos(time?: TimeInput): EpochNanos {
  if (time === undefined) {
    const ms = performance.timeOrigin + performance.now();
    const whole = Math.floor(ms);
    return BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6));
  }
  if (time instanceof Date) return BigInt(time.getTime()) * 1_000_000n;
  if (Array.isArray(time)) {
    const [s, ns] = time as HrTime;
    return BigInt(s) * 1_000_000_000n + BigInt(ns);
  }
  const ms = time as number;
  // Values this small are performance.now() readings, not epoch ms.
  const epochMs = ms < 1e11 ? performance.timeOrigin + ms : ms;
  const whole = Math.floor(epochMs);
  return BigInt(whole) * 1_000_000n + BigInt(Math.round((epochMs - whole) * 1e6));
}

function isAttributeValue(v: unknown): v is AttributeValue {
  if (v == null) return false;
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'boolean' || Array.isArray(v);
}

class RecordingSpan implements Span {
  private readonly attributes: Attributes = {};
  private attributeCount = 0;
  private readonly events: FinishedSpan['events'] = [];
  private readonly links: Link[];
  private status: SpanStatus = { code: SpanStatusCode.UNSET };
  private readonly startNs: EpochNanos;
  private ended = false;

  constructor(
    private name: string,
    private readonly kind: SpanKind,
    private readonly ctx: SpanContext,
    private readonly parentSpanId: string | undefined,
    options: SpanOptions,
    private readonly scope: FinishedSpan['scope'],
    private readonly processor: SpanProcessor,
  ) {
    this.startNs = epochNanos(options.startTime);
    this.links = [...(options.links ?? [])];
    if (options.attributes) this.setAttributes(options.attributes);
  }

  spanContext(): SpanContext {
    return this.ctx;
  }

  setAttribute(key: string, value: SpanAttributeValue): this {
    if (this.ended || !isAttributeValue(value)) return this;
    if (!(key in this.attributes)) {
      if (this.attributeCount >= MAX_ATTRIBUTES) return this;
      this.attributeCount++;
    }
    this.attributes[key] = value;
    return this;
  }

  setAttributes(attributes: SpanAttributes): this {
    for (const k in attributes) this.setAttribute(k, attributes[k] as SpanAttributeValue);
    return this;
  }

  addEvent(
    name: string,
    attributesOrStartTime?: SpanAttributes | TimeInput,
    startTime?: TimeInput,
  ): this {
    if (this.ended) return this;
    const isTime =
      typeof attributesOrStartTime === 'number' ||
      attributesOrStartTime instanceof Date ||
      Array.isArray(attributesOrStartTime);
    this.events.push({
      name,
      timeNs: epochNanos(isTime ? (attributesOrStartTime as TimeInput) : startTime),
      attributes: isTime ? {} : ((attributesOrStartTime as Attributes | undefined) ?? {}),
    });
    return this;
  }

  addLink(link: Link): this {
    if (!this.ended) this.links.push(link);
    return this;
  }

  addLinks(links: Link[]): this {
    for (const l of links) this.addLink(l);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (!this.ended) this.status = status;
    return this;
  }

  updateName(name: string): this {
    if (!this.ended) this.name = name;
    return this;
  }

  end(endTime?: TimeInput): void {
    if (this.ended) return;
    this.ended = true;
    let endNs = epochNanos(endTime);
    // A clock step backwards must not make a negative duration.
    if (endNs < this.startNs) endNs = this.startNs;
    this.processor.onEnd({
      name: this.name,
      kind: this.kind,
      context: this.ctx,
      ...(this.parentSpanId ? { parentSpanId: this.parentSpanId } : {}),
      startNs: this.startNs,
      endNs,
      attributes: this.attributes,
      events: this.events,
      links: this.links,
      status: this.status,
      scope: this.scope,
    });
  }

  isRecording(): boolean {
    return !this.ended;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attrs: Attributes = {};
    if (typeof exception === 'string') attrs['exception.message'] = exception;
    else {
      if (exception.name) attrs['exception.type'] = exception.name;
      else if (exception.code !== undefined) attrs['exception.type'] = String(exception.code);
      if (exception.message) attrs['exception.message'] = exception.message;
      if (exception.stack) attrs['exception.stacktrace'] = exception.stack;
    }
    this.addEvent('exception', attrs, time);
  }
}

class SluiceTracer implements Tracer {
  constructor(
    private readonly scope: FinishedSpan['scope'],
    private readonly sampler: Sampler,
    private readonly processor: SpanProcessor,
  ) {}

  startSpan(name: string, options: SpanOptions = {}, context?: Context): Span {
    const parentCtx = options.root ? undefined : (context ?? contextApi.active());
    const parent = parentCtx ? trace.getSpanContext(parentCtx) : undefined;
    const validParent = parent && isSpanContextValid(parent) ? parent : undefined;
    const traceId = validParent?.traceId ?? randomId(16);
    const spanId = randomId(8);
    const sampled = this.sampler(traceId, validParent);
    const sc: SpanContext = {
      traceId,
      spanId,
      traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
      ...(validParent?.traceState ? { traceState: validParent.traceState } : {}),
    };
    if (!sampled) return trace.wrapSpanContext(sc);
    return new RecordingSpan(
      name,
      options.kind ?? SpanKind.INTERNAL,
      sc,
      validParent?.spanId,
      options,
      this.scope,
      this.processor,
    );
  }

  startActiveSpan<F extends (span: Span) => unknown>(
    name: string,
    ...rest: unknown[]
  ): ReturnType<F> {
    const fn = rest.pop() as F;
    const [options, ctx] = rest as [SpanOptions | undefined, Context | undefined];
    const parent = ctx ?? contextApi.active();
    const span = this.startSpan(name, options, parent);
    return contextApi.with(trace.setSpan(parent, span), () => fn(span)) as ReturnType<F>;
  }
}

export class SluiceTracerProvider implements TracerProvider {
  constructor(
    private readonly processor: SpanProcessor,
    private readonly sampler: Sampler = samplerFromEnv(),
  ) {}

  getTracer(name: string, version?: string): Tracer {
    return new SluiceTracer(
      version === undefined ? { name } : { name, version },
      this.sampler,
      this.processor,
    );
  }

  forceFlush(): Promise<void> {
    return this.processor.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.processor.shutdown();
  }
}
