/**
 * Structured logging: pino JSON lines, one per event; human-readable lines
 * when stdout is a terminal (LOG_FORMAT=json|pretty overrides). LOG_LEVEL
 * sets the level (default info). A line logged while a span is active
 * (inside a traced request) carries its trace_id and span_id.
 */
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import { type Logger, pino } from 'pino';
import { prettyLine } from './logger-pretty.js';

export type { Logger };

export const DEFAULT_LOG_LEVEL = 'info';

/** The active span's ids, for pino's mixin; empty outside a traced request. */
function traceFields(): Record<string, string> {
  const sc = trace.getSpanContext(context.active());
  return sc && isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
}

export function createLogger(
  component: string,
  level = process.env.LOG_LEVEL,
  format = process.env.LOG_FORMAT,
): Logger {
  const options = {
    name: component,
    level: level ?? DEFAULT_LOG_LEVEL,
    base: { pid: process.pid },
    mixin: traceFields,
  };
  const pretty = format === 'pretty' || (format !== 'json' && process.stdout.isTTY === true);
  if (!pretty) return pino(options);
  const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
  return pino(options, { write: (line: string) => process.stdout.write(prettyLine(line, color)) });
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
