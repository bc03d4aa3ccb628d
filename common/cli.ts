/**
 * The command line every server binary shares (mqnamesrv, mqbroker,
 * mqgateway): `-c FILE`, `-n ADDR;ADDR`, `-p` to print the effective config,
 * and trailing `key=value` overrides. Env NAMESRV_ADDR stands in for `-n`.
 */
import { Command } from 'commander';
import {
  formatOptions,
  type LoadedOptions,
  loadOptions,
  type OptionsOf,
  type Schema,
} from './config/options.js';
import { errors, isSluiceError } from './errors.js';
import { createLogger, type Logger } from './logger.js';
import { startMemoryRelief } from './memory-relief.js';

export interface Running {
  /** Stops serving and releases files; resolves when done. */
  close(): Promise<void>;
}

export interface ComponentSpec<S extends Schema> {
  /** Binary name, e.g. `mqbroker`. */
  name: string;
  description: string;
  schema: S;
  /** Schema key that `-n` / NAMESRV_ADDR set; omitted for the name server. */
  namesrvKey?: keyof S & string;
  /** Extra help text (examples). */
  examples?: string;
  /** Component-specific flags, each setting one schema key (e.g. `--redis <url>` → redisUrl). */
  flags?: readonly { flags: string; description: string; key: keyof S & string }[];
  start(options: OptionsOf<S>, logger: Logger): Promise<Running>;
}

/** How config warnings name each binary's component. */
const COMPONENT_LABELS: Readonly<Record<string, string>> = {
  mqbroker: 'broker',
  mqnamesrv: 'name server',
  mqgateway: 'gateway',
};

function schemaHelp(schema: Schema): string {
  const rows = Object.entries(schema).map(([key, spec]) => {
    const allowed = spec.type === 'enum' ? ` (${spec.values.join('|')})` : '';
    return `  ${key}=${String(spec.default)}${allowed}\n      ${spec.doc}`;
  });
  return `\nConfig keys (file or trailing key=value), with defaults:\n${rows.join('\n')}\n`;
}

/** Builds the commander program for a server component. */
export function componentCommand<S extends Schema>(spec: ComponentSpec<S>): Command {
  const program = new Command(spec.name)
    .description(spec.description)
    .option('-c, --config <file>', 'RocketMQ-style .properties config file')
    .option('-p, --print-config', 'print the effective config and exit')
    .argument('[overrides...]', 'key=value settings that override the config file')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `${spec.examples ?? ''}${schemaHelp(spec.schema)}`);
  if (spec.namesrvKey) {
    program.option(
      '-n, --namesrv-addr <addrs>',
      'name server addresses, ";"-separated (env NAMESRV_ADDR)',
    );
  }
  for (const f of spec.flags ?? []) program.option(f.flags, f.description);
  program.action(
    async (overrides: string[], flags: Record<string, string | boolean | undefined>) => {
      let loaded: LoadedOptions<S>;
      try {
        const file = flags.config as string | undefined;
        const key = spec.namesrvKey;
        const flagAddr = flags.namesrvAddr as string | undefined;
        // Commander stores `--redis <url>` as `redis`: the first long flag, camel-cased.
        const flagSettings = (): Record<string, string> => {
          const out: Record<string, string> = {};
          for (const f of spec.flags ?? []) {
            const long = /--([a-z0-9-]+)/.exec(f.flags)?.[1] ?? '';
            const value = flags[long.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())];
            if (typeof value === 'string') out[f.key] = value;
          }
          return out;
        };
        const component = COMPONENT_LABELS[spec.name] ?? spec.name;
        loaded = loadOptions(spec.schema, {
          file,
          overrides,
          explicit: { ...flagSettings(), ...(key && flagAddr ? { [key]: flagAddr } : {}) },
          component,
        });
        // NAMESRV_ADDR applies only when neither -n, the file nor an override set the key.
        const envAddr = process.env.NAMESRV_ADDR;
        if (key && !flagAddr && envAddr && loaded.sources[key] === undefined) {
          loaded = loadOptions(spec.schema, {
            file,
            overrides,
            explicit: { ...flagSettings(), [key]: envAddr },
            component,
          });
        }
        const addrs = key ? String(loaded.options[key]) : '';
        if (addrs.trim() !== '') parseHostPortList(addrs);
      } catch (err) {
        fail(spec.name, err);
      }
      if (flags.printConfig) {
        // Warnings go to stderr so that stdout stays a clean .properties text.
        for (const w of loaded.warnings) process.stderr.write(`${spec.name}: warning: ${w}\n`);
        process.stdout.write(`${formatOptions(spec.schema, loaded.options)}\n`);
        return;
      }
      const logger = createLogger(spec.name);
      for (const w of loaded.warnings) logger.warn(w);
      let running: Running;
      try {
        running = await spec.start(loaded.options, logger);
      } catch (err) {
        logger.error({ err }, `${spec.name} failed to start`);
        fail(spec.name, err);
      }
      onShutdown(logger, () => running.close());
      await startMemoryRelief(logger);
    },
  );
  return program;
}

/** Prints one clear line and exits non-zero. */
export function fail(name: string, err: unknown): never {
  const message = isSluiceError(err) || err instanceof Error ? err.message : String(err);
  process.stderr.write(`${name}: ${message}\n`);
  process.exit(1);
}

/** Longest a clean shutdown may take before the process exits anyway. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 20_000;

/** SIGINT / SIGTERM close the component once; a second signal exits at once. */
export function onShutdown(logger: Logger, close: () => Promise<void>): void {
  let closing = false;
  const handler = (signal: NodeJS.Signals) => {
    if (closing) process.exit(130);
    closing = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error({ timeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS }, 'shutdown took too long; exiting');
      process.exit(1);
    }, DEFAULT_SHUTDOWN_TIMEOUT_MS).unref();
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

/**
 * Splits a `;`-separated list of `host:port` addresses (as parseAddressList)
 * and checks every entry, so that a typo is one clear line up front instead
 * of a connection that never succeeds.
 *
 * @example parseHostPortList('localhost:9876;10.0.0.2:9876') // ['127.0.0.1:9876', '10.0.0.2:9876']
 */
export function parseHostPortList(value: string, what = 'name server address'): string[] {
  const addrs = parseAddressList(value);
  if (addrs.length === 0) throw errors.badRequest(`no ${what} in '${value}'`);
  for (const addr of addrs) {
    const m = /^(\[[^\]]+\]|[^:\s[\]]+):(\d+)$/.exec(addr);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65_535) {
      throw errors.badRequest(`${what} '${addr}' is not host:port`);
    }
  }
  return addrs;
}

/** Splits a `;`-separated name server list (commas and spaces tolerated). */
export function parseAddressList(value: string): string[] {
  return value
    .split(/[;,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (s.startsWith('localhost:') ? `127.0.0.1:${s.slice('localhost:'.length)}` : s));
}
