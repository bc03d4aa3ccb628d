/**
 * Structured logging: pino JSON lines, one per event. LOG_LEVEL sets the level
 * (default info).
 */
import { type Logger, pino } from 'pino';

export type { Logger };

export const DEFAULT_LOG_LEVEL = 'info';

export function createLogger(component: string, level = process.env.LOG_LEVEL): Logger {
  return pino({ name: component, level: level ?? DEFAULT_LOG_LEVEL, base: { pid: process.pid } });
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
