/**
 * In-process pieces of observability: W3C trace context parsing, samplers,
 * the tracer provider + OTLP/JSON exporter against the test receiver, trace
 * ids on log lines, the pretty log format, the metrics server and the
 * Prometheus text checker the other tests rely on.
 */
import { context, ROOT_CONTEXT, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { Counter } from 'prom-client';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createLogger, silentLogger } from '../../common/logger.js';
import { prettyLine } from '../../common/logger-pretty.js';
import { startMetricsServer } from '../../common/metrics/metrics-server.js';
import { createRegistry } from '../../common/metrics/registry.js';
import { AsyncLocalStorageContextManager } from '../../common/telemetry/context-manager.js';
import {
  OtlpJsonBatchProcessor,
  otlpOptionsFromEnv,
  otlpTracesUrl,
} from '../../common/telemetry/otlp-json-exporter.js';
import { startTelemetry } from '../../common/telemetry/sdk.js';
import { formatTraceparent, parseTraceparent } from '../../common/telemetry/trace-context.js';
import { SluiceTracerProvider, samplerFromEnv } from '../../common/telemetry/tracer-provider.js';
import { startOtlpReceiver } from './otlp-receiver.js';
import { parsePrometheusText } from './prom-text.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('W3C trace context', () => {
  it('parses and formats traceparent, refusing malformed and all-zero ids', () => {
    const sc = parseTraceparent(`00-${TRACE}-${SPAN}-01`, 'a=1,b=2');
    expect(sc).toMatchObject({ traceId: TRACE, spanId: SPAN, traceFlags: 1, isRemote: true });
    expect(sc!.traceState!.get('b')).toBe('2');
    expect(formatTraceparent(sc!)).toBe(`00-${TRACE}-${SPAN}-01`);
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)!.traceFlags).toBe(0);
    // A future version may append fields; version 00 may not.
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-01-extra`)).toBeDefined();
    for (const bad of [
      '',
      'garbage',
      `00-${TRACE}-${SPAN}-01-extra`,
      `ff-${TRACE}-${SPAN}-01`,
      `00-${'0'.repeat(32)}-${SPAN}-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE.toUpperCase()}-${SPAN}-01`,
      `00-${TRACE.slice(1)}-${SPAN}-01`,
    ]) {
      expect(parseTraceparent(bad), bad).toBeUndefined();
    }
  });

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
    const o = otlpOptionsFromEnv(
      'http://c/v1/traces',
      {},
      {
        OTEL_EXPORTER_OTLP_HEADERS: 'api-key=a%20b,x=1',
        OTEL_BSP_SCHEDULE_DELAY: '250',
      },
    );
    expect(o.headers).toEqual({ 'api-key': 'a b', x: '1' });
    expect(o.scheduleDelayMs).toBe(250);
    expect(startTelemetry('svc', silentLogger, {}).enabled).toBe(false);
    expect(
      startTelemetry('svc', silentLogger, {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_SDK_DISABLED: 'true',
      }).enabled,
    ).toBe(false);
  });

  it('samples as OTEL_TRACES_SAMPLER says, following a parent by default', () => {
    const sampled = { traceId: TRACE, spanId: SPAN, traceFlags: TraceFlags.SAMPLED };
    const unsampled = { ...sampled, traceFlags: TraceFlags.NONE };
    const dflt = samplerFromEnv({});
    expect(dflt(TRACE, undefined)).toBe(true);
    expect(dflt(TRACE, unsampled)).toBe(false);
    expect(dflt(TRACE, sampled)).toBe(true);
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'always_off' })(TRACE, sampled)).toBe(false);
    const ratio0 = samplerFromEnv({
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0',
    });
    expect(ratio0(TRACE, undefined)).toBe(false);
    expect(ratio0(TRACE, sampled)).toBe(true);
  });
});

describe('tracer provider and OTLP/JSON export', () => {
  it('exports spans with parent, kind, attributes, events, links and status', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const processor = new OtlpJsonBatchProcessor(
        otlpOptionsFromEnv(`${receiver.url}/v1/traces`, { 'service.name': 'unit' }, {}),
        silentLogger,
      );
      const provider = new SluiceTracerProvider(processor, samplerFromEnv({}));
      const tracer = provider.getTracer('sluice');
      const parent = trace.setSpanContext(
        ROOT_CONTEXT,
        parseTraceparent(`00-${TRACE}-${SPAN}-01`)!,
      );
      const span = tracer.startSpan(
        'send t',
        {
          kind: SpanKind.PRODUCER,
          attributes: { 'messaging.system': 'rocketmq', n: 3, ok: true, keys: ['a', 'b'] },
          links: [{ context: { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 } }],
        },
        parent,
      );
      span.addEvent('flushed', { bytes: 10 });
      span.recordException(new Error('boom'));
      span.setStatus({ code: 2, message: 'boom' });
      span.end();
      span.end(); // a second end is ignored
      const unsampled = tracer.startSpan(
        'dropped',
        {},
        trace.setSpanContext(ROOT_CONTEXT, parseTraceparent(`00-${TRACE}-${SPAN}-00`)!),
      );
      expect(unsampled.isRecording()).toBe(false);
      expect(unsampled.spanContext().traceId).toBe(TRACE);
      unsampled.end();
      await provider.forceFlush();

      expect(receiver.spans).toHaveLength(1);
      const s = receiver.spans[0]!;
      expect(s).toMatchObject({
        service: 'unit',
        traceId: TRACE,
        parentSpanId: SPAN,
        name: 'send t',
        kind: 4,
        status: { code: 2, message: 'boom' },
        links: [{ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) }],
      });
      expect(s.attributes).toEqual({
        'messaging.system': 'rocketmq',
        n: 3,
        ok: true,
        keys: ['a', 'b'],
      });
      const ns = BigInt(s.startTimeUnixNano);
      expect(Number(ns / 1_000_000n)).toBeGreaterThan(Date.now() - 60_000);
      await provider.shutdown();
    } finally {
      await receiver.close();
    }
  });

  it('drops a batch the endpoint refuses without throwing', async () => {
    const processor = new OtlpJsonBatchProcessor(
      otlpOptionsFromEnv('http://127.0.0.1:9/v1/traces', {}, { OTEL_EXPORTER_OTLP_TIMEOUT: '500' }),
      silentLogger,
    );
    const span = new SluiceTracerProvider(processor, () => true).getTracer('x').startSpan('s');
    span.end();
    await processor.forceFlush();
    expect(processor.dropped).toBe(1);
  });
});

describe('logs', () => {
  const manager = new AsyncLocalStorageContextManager();
  context.setGlobalContextManager(manager);
  afterAll(() => {
    context.disable();
  });

  it('carry the active span ids on request-scoped lines only', () => {
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const log = createLogger('mqtest', 'info', 'pretty');
      const span = trace.wrapSpanContext(parseTraceparent(`00-${TRACE}-${SPAN}-01`)!);
      log.info('outside');
      context.with(trace.setSpan(context.active(), span), () => log.info({ topic: 't' }, 'inside'));
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
  });
});
