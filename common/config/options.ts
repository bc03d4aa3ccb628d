/**
 * Typed option schemas and the one loader that turns a `.properties` file plus
 * command-line overrides into validated, frozen options.
 *
 * A schema lists every key a component understands with its type and default
 * (each default written once, here in the schema). Keys that only mean
 * something on the JVM are accepted with a warning; unknown keys too. A bad
 * value stops startup with `file:line: key=value is not valid; expected …`.
 */
import { readFileSync } from 'node:fs';
import { errors } from '../errors.js';
import { parseProperties } from './properties.js';

interface BaseSpec {
  doc: string;
}
export interface StringSpec extends BaseSpec {
  type: 'string';
  default: string;
}
export interface IntSpec extends BaseSpec {
  type: 'int';
  default: number;
  min?: number;
  max?: number;
}
export interface FloatSpec extends BaseSpec {
  type: 'float';
  default: number;
  min?: number;
  max?: number;
}
export interface BoolSpec extends BaseSpec {
  type: 'bool';
  default: boolean;
}
export interface EnumSpec<V extends string = string> extends BaseSpec {
  type: 'enum';
  values: readonly V[];
  default: V;
}
export type OptionSpec = StringSpec | IntSpec | FloatSpec | BoolSpec | EnumSpec;
export type Schema = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> =
  S extends EnumSpec<infer V>
    ? V
    : S extends BoolSpec
      ? boolean
      : S extends IntSpec | FloatSpec
        ? number
        : string;

export type OptionsOf<S extends Schema> = { readonly [K in keyof S]: ValueOf<S[K]> };

/**
 * Keys RocketMQ's JVM broker and name server accept that have no meaning here
 * (thread pools, JVM memory tricks). They are accepted so RocketMQ files load.
 */
export const JVM_ONLY_KEYS: ReadonlySet<string> = new Set([
  'sendMessageThreadPoolNums',
  'pullMessageThreadPoolNums',
  'processReplyMessageThreadPoolNums',
  'queryMessageThreadPoolNums',
  'adminBrokerThreadPoolNums',
  'clientManageThreadPoolNums',
  'consumerManageThreadPoolNums',
  'heartbeatThreadPoolNums',
  'endTransactionThreadPoolNums',
  'serverWorkerThreads',
  'serverCallbackExecutorThreads',
  'serverSelectorThreads',
  'clientWorkerThreads',
  'defaultThreadPoolNums',
  'useReentrantLockWhenPutMessage',
  'transientStorePoolEnable',
  'transientStorePoolSize',
  'warmMapedFileEnable',
  'useEpollNativeSelector',
  'serverPooledByteBufAllocatorEnable',
  'osPageCacheBusyTimeOutMills',
  'waitTimeMillsInSendQueue',
  'sendThreadPoolQueueCapacity',
  'pullThreadPoolQueueCapacity',
  'rocketmqHome',
]);

export interface ConfigSource {
  /** Path shown in errors: the file name, or `command line`. */
  file: string;
  line: number;
}

export interface LoadedOptions<S extends Schema> {
  options: OptionsOf<S>;
  /** Where each key set away from its default came from. */
  sources: Partial<Record<keyof S, ConfigSource>>;
  /** Human-readable warnings (unknown or JVM-only keys). */
  warnings: string[];
}

export interface LoadOptionsInput {
  /** A `.properties` file, if any. */
  file?: string;
  /** `key=value` strings from the command line; they override the file. */
  overrides?: readonly string[];
  /** Keys set programmatically (e.g. `-n`), applied last. */
  explicit?: Readonly<Record<string, string>>;
  /** What loads the options, as warnings name it: `broker` (default), `name server`, `gateway`. */
  component?: string;
}

function describe(spec: OptionSpec): string {
  switch (spec.type) {
    case 'enum':
      return `one of ${spec.values.join(', ')}`;
    case 'bool':
      return 'true or false';
    case 'int':
      return `an integer${spec.min !== undefined ? ` >= ${spec.min}` : ''}${spec.max !== undefined ? ` <= ${spec.max}` : ''}`;
    case 'float':
      return `a number${spec.min !== undefined ? ` >= ${spec.min}` : ''}${spec.max !== undefined ? ` <= ${spec.max}` : ''}`;
    default:
      return 'a string';
  }
}

function coerce(spec: OptionSpec, raw: string): string | number | boolean | undefined {
  const value = raw.trim();
  switch (spec.type) {
    case 'string':
      return raw;
    case 'bool':
      if (/^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
      return undefined;
    case 'enum':
      return spec.values.includes(value) ? value : undefined;
    case 'int': {
      if (!/^-?\d+$/.test(value)) return undefined;
      const n = Number(value);
      if (!Number.isSafeInteger(n)) return undefined;
      if (spec.min !== undefined && n < spec.min) return undefined;
      if (spec.max !== undefined && n > spec.max) return undefined;
      return n;
    }
    case 'float': {
      if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(value)) return undefined;
      const n = Number(value);
      if (spec.min !== undefined && n < spec.min) return undefined;
      if (spec.max !== undefined && n > spec.max) return undefined;
      return n;
    }
  }
}

/** Defaults of a schema, frozen. */
export function defaultsOf<S extends Schema>(schema: S): OptionsOf<S> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema)) out[key] = spec.default;
  return Object.freeze(out) as OptionsOf<S>;
}

/**
 * Loads options: schema defaults, then the file, then `key=value` overrides,
 * then explicit keys. Throws a SluiceError (code 40000, reason CONFIG) naming
 * file, line, key and what was expected on the first bad value.
 */
export function loadOptions<S extends Schema>(
  schema: S,
  input: LoadOptionsInput = {},
): LoadedOptions<S> {
  const values: Record<string, unknown> = { ...defaultsOf(schema) };
  const sources: Record<string, ConfigSource> = {};
  const warnings: string[] = [];

  const apply = (key: string, raw: string, src: ConfigSource) => {
    const spec = schema[key];
    if (!spec) {
      if (JVM_ONLY_KEYS.has(key)) {
        warnings.push(
          `${src.file}:${src.line}: ${key} only applies to the JVM ${input.component ?? 'broker'}; ignored`,
        );
      } else {
        warnings.push(`${src.file}:${src.line}: unknown key ${key}; ignored`);
      }
      return;
    }
    const v = coerce(spec, raw);
    if (v === undefined) throw errors.badConfig(src.file, src.line, key, raw, describe(spec));
    values[key] = v;
    sources[key] = src;
  };

  if (input.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(input.file, 'utf8');
    } catch (cause) {
      throw errors.badRequest(`cannot read config file ${input.file}: ${(cause as Error).message}`);
    }
    for (const entry of parseProperties(text)) {
      apply(entry.key, entry.value, { file: input.file, line: entry.line });
    }
  }
  (input.overrides ?? []).forEach((arg, i) => {
    const eq = arg.indexOf('=');
    if (eq <= 0) {
      throw errors.badRequest(`command line argument '${arg}' is not key=value`);
    }
    apply(arg.slice(0, eq), arg.slice(eq + 1), { file: 'command line', line: i + 1 });
  });
  for (const [key, raw] of Object.entries(input.explicit ?? {})) {
    apply(key, raw, { file: 'command line', line: 0 });
  }
  return {
    options: Object.freeze(values) as OptionsOf<S>,
    sources: sources as LoadedOptions<S>['sources'],
    warnings,
  };
}

/** Renders options as a `.properties` text (for `-p`). */
export function formatOptions<S extends Schema>(schema: S, options: OptionsOf<S>): string {
  return Object.keys(schema)
    .map((key) => `${key}=${String(options[key as keyof S])}`)
    .join('\n');
}
