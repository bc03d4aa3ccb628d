/**
 * In-process pieces of observability: the official OpenTelemetry SDK as
 * common/telemetry/sdk.ts wires it (export to the test OTLP receiver, the
 * resource, W3C propagation of traceparent and tracestate), nothing
 * registered when tracing is off, trace ids on log lines, the pretty log
 * format, the metrics server and the Prometheus text checker the other
 * tests rely on.
 */
import { context, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { Hono } from 'hono';
import { pino } from 'pino';
import { Counter } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { errors } from '../../common/errors.js';
import { createLogger, silentLogger } from '../../common/logger.js';
import { prettyLine } from '../../common/logger-pretty.js';
import { startMetricsServer } from '../../common/metrics/metrics-server.js';
import { createRegistry } from '../../common/metrics/registry.js';
import {
  otlpTracesUrl,
  startTelemetry,
  type Telemetry,
  tracingConfigured,
} from '../../common/telemetry/sdk.js';
import {
  contextOfTraceparent,
  traceHeadersOf,
  traceIdsOf,
  tracer,
  tracingEnabled,
} from '../../common/telemetry/tracing.js';
import { GatewayMetrics } from '../../gateway/http/metrics.js';
import { problemResponse } from '../../gateway/http/problem.js';
import { type OtlpReceiver, startOtlpReceiver } from './otlp-receiver.js';
import { parsePrometheusText } from './prom-text.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('tracing configuration', () => {
  it('reads the standard OTEL_* variables', () => {
    expect(otlpTracesUrl({})).toBeUndefined();
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' })).toBe(
      'http://c:4318/v1/traces',
    );
    expect(
      otlpTracesUrl({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/x',
      }),
    ).toBe('http://t:1/x');
    expect(tracingConfigured({})).toBe(false);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(true);
    for (const off of [
      { OTEL_SDK_DISABLED: 'true' },
      { OTEL_SDK_DISABLED: 'TRUE' },
      { OTEL_TRACES_EXPORTER: 'none' },
    ]) {
      expect(
        tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', ...off }),
        JSON.stringify(off),
      ).toBe(false);
    }
  });

  it('registers nothing when tracing is off: spans are no-ops, contexts are not read', async () => {
    const t = await startTelemetry('svc', silentLogger, {});
    expect(t.enabled).toBe(false);
    expect(tracingEnabled()).toBe(false);
    const span = tracer().startSpan('x');
    expect(span.isRecording()).toBe(false);
    expect(span.spanContext().traceId).toBe('0'.repeat(32));
    // No propagator: a stored traceparent is not even parsed.
    expect(contextOfTraceparent(`00-${TRACE}-${SPAN}-01`)).toBeUndefined();
    await t.shutdown();
  });
});

describe('official OpenTelemetry SDK, as sdk.ts wires it', () => {
  let receiver: OtlpReceiver;
  let telemetry: Telemetry;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    telemetry = await startTelemetry('unit-default', silentLogger, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    });
  });
  afterAll(async () => {
    await telemetry?.shutdown();
    await receiver?.close();
  });

  it('propagates W3C traceparent and tracestate, refusing malformed and all-zero ids', () => {
    expect(telemetry.enabled).toBe(true);
    expect(tracingEnabled()).toBe(true);
    const ctx = contextOfTraceparent(`00-${TRACE}-${SPAN}-01`, 'a=1,b=2');
    const sc = trace.getSpanContext(ctx!);
    expect(sc).toMatchObject({ traceId: TRACE, spanId: SPAN, traceFlags: 1, isRemote: true });
    expect(sc!.traceState!.get('b')).toBe('2');
    expect(traceHeadersOf(sc!)).toEqual({
      traceparent: `00-${TRACE}-${SPAN}-01`,
      tracestate: 'a=1,b=2',
    });
    for (const bad of [
      '',
      'garbage',
      `ff-${TRACE}-${SPAN}-01`,
      `00-${'0'.repeat(32)}-${SPAN}-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE.slice(1)}-${SPAN}-01`,
    ]) {
      expect(contextOfTraceparent(bad), bad).toBeUndefined();
    }
    expect(traceIdsOf(`00-${TRACE}-${SPAN}-01`)).toEqual({ trace_id: TRACE, span_id: SPAN });
    expect(traceIdsOf(`00-${'0'.repeat(32)}-${SPAN}-01`)).toBeUndefined();
    expect(traceIdsOf('garbage')).toBeUndefined();
  });

  it('exports spans with parent, kind, attributes, events, links, status and the resource', async () => {
    const parent = contextOfTraceparent(`00-${TRACE}-${SPAN}-01`)!;
    const span = tracer().startSpan(
      'send t',
      {
        kind: SpanKind.PRODUCER,
        attributes: { 'messaging.system': 'rocketmq', n: 3, ok: true, keys: ['a', 'b'] },
        links: [{ context: { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 } }],
      },
      parent,
    );
    span.addEvent('commitlog.flushed');
    span.setStatus({ code: 2, message: 'boom' });
    span.end();
    // Sampling follows the parent: an unsampled parent's child is not recorded.
    const unsampled = tracer().startSpan(
      'dropped',
      {},
      contextOfTraceparent(`00-${TRACE}-${SPAN}-00`),
    );
    expect(unsampled.isRecording()).toBe(false);
    unsampled.end();
    await telemetry.forceFlush();

    expect(receiver.rejected).toEqual([]);
    expect(receiver.spans.map((s) => s.name)).toEqual(['send t']);
    const s = receiver.spans[0]!;
    expect(s).toMatchObject({
      service: 'unit-default',
      traceId: TRACE,
      parentSpanId: SPAN,
      kind: 4,
      status: { code: 2, message: 'boom' },
      links: [{ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) }],
      events: [{ name: 'commitlog.flushed' }],
    });
    expect(s.attributes).toEqual({
      'messaging.system': 'rocketmq',
      n: 3,
      ok: true,
      keys: ['a', 'b'],
    });
    expect(Number(BigInt(s.startTimeUnixNano) / 1_000_000n)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('puts the active span ids on log lines inside a traced request only', () => {
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const log = createLogger('mqtest', 'info', 'pretty');
      const span = trace.wrapSpanContext(
        trace.getSpanContext(contextOfTraceparent(`00-${TRACE}-${SPAN}-01`)!)!,
      );
      log.info('outside');
      context.with(trace.setSpan(ROOT_CONTEXT, span), () => log.info({ topic: 't' }, 'inside'));
    } finally {
      spy.mockRestore();
    }
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}mqtest: outside\n$/);
    expect(lines[0]).not.toContain('trace_id');
    expect(lines[1]).toContain(`trace_id=${TRACE}`);
    expect(lines[1]).toContain(`span_id=${SPAN}`);
    expect(lines[1]).toContain('topic=t');
  });
});

describe('logs', () => {
  it('the gateway access log: debug per request, warn with trace ids for a 5xx answer', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = { write: (l: string) => lines.push(JSON.parse(l)) };
    const metrics = new GatewayMetrics(undefined, false);
    const use = (level: string) => {
      lines.length = 0;
      const a = new Hono();
      a.onError((err, c) => problemResponse(c, err));
      a.use('*', metrics.middleware(pino({ level }, sink)));
      a.get('/ok', (c) => c.text('ok'));
      a.get('/boom', () => {
        throw errors.internal('disk on fire');
      });
      return a;
    };
    const tp = { traceparent: `00-${TRACE}-${SPAN}-01` };
    let a = use('info');
    expect((await a.request('/ok', { headers: tp })).status).toBe(200);
    // At info (the default) a fine request writes nothing: 20k requests/s stay quiet.
    expect(lines).toEqual([]);
    expect((await a.request('/boom', { headers: tp })).status).toBe(500);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 40,
      msg: 'request failed',
      method: 'GET',
      route: '/boom',
      status: 500,
      err: 'disk on fire',
      trace_id: TRACE,
      span_id: SPAN,
    });
    a = use('debug');
    expect((await a.request('/ok')).status).toBe(200);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 20, msg: 'request', route: '/ok', status: 200 });
    expect(lines[0]).not.toHaveProperty('trace_id');
  });

  it('pretty-prints pino JSON and passes anything else through', () => {
    const line = JSON.stringify({ level: 40, time: 0, name: 'b', msg: 'slow', ms: 12, who: 'a b' });
    expect(prettyLine(line, false)).toBe('00:00:00.000 WARN  b: slow ms=12 who="a b"\n');
    expect(prettyLine('not json\n', false)).toBe('not json\n');
  });
});

describe('metrics server and Prometheus text', () => {
  it('serves a registry on /metrics and 404 elsewhere', async () => {
    const registry = createRegistry('sluice_unit_', false);
    const c = new Counter({
      name: 'sluice_unit_things_total',
      help: 'things',
      labelNames: ['topic'],
      registers: [registry],
    });
    c.inc({ topic: 'a "quoted"\\topic' }, 3);
    const server = await startMetricsServer(registry, 0, '127.0.0.1', silentLogger);
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(res.status).toBe(200);
      const e = parsePrometheusText(await res.text());
      expect(e.types.get('sluice_unit_things_total')).toBe('counter');
      expect(e.value('sluice_unit_things_total', { topic: 'a "quoted"\\topic' })).toBe(3);
      expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('the checker refuses lines that are not Prometheus text', () => {
    expect(() => parsePrometheusText('ok_metric 1\n')).not.toThrow();
    expect(() => parsePrometheusText('ok_metric{a="1"} 2.5e3 1700000000\n')).not.toThrow();
    expect(() => parsePrometheusText('bad-name 1\n')).toThrow(/not a sample/);
    expect(() => parsePrometheusText('m{a=1} 1\n')).toThrow(/not a sample/);
    expect(() => parsePrometheusText('m 1 2 3\n')).toThrow(/not a sample/);
    expect(() => parsePrometheusText('# TYPE m bogus\n')).toThrow(/bad comment/);
    // NaN as prom-client writes it, and Inf, parse as Prometheus does.
    expect(parsePrometheusText('m Nan\n').value('m')).toBeNaN();
    expect(parsePrometheusText('m{le="+Inf"} 3\nn -Inf\n').value('n')).toBe(-Infinity);
    expect(() => parsePrometheusText('m nope\n')).toThrow(/not a sample/);
  });
});
