/**
 * What a request says about its client, from the transport headers the
 * RocketMQ 5 SDKs send (x-mq-client-id, x-mq-request-id, x-mq-namespace,
 * x-mq-language, x-mq-client-version, x-mq-protocol) and the authorization
 * header. Credentials are parsed and not checked yet: a client configured
 * with an access key works as one without.
 *
 * Namespaces follow RocketMQ: a resource in namespace `ns` is named
 * `ns%name` on the brokers.
 */
import type { Metadata } from '@grpc/grpc-js';
import { errors } from '../../common/errors.js';
import type {
  Resource,
  Resource__Output,
} from '../../common/generated/apache/rocketmq/v2/Resource.js';

export interface Credential {
  scheme: string;
  accessKey: string;
  signedHeaders: string[];
  signature: string;
}

export interface ClientContext {
  /** Empty when the client sent none (generated stubs may not). */
  clientId: string;
  requestId: string;
  namespace: string;
  language: string;
  clientVersion: string;
  /** "host:port" of the client's socket as the gateway sees it. */
  peer: string;
  credential: Credential | undefined;
}

function header(md: Metadata, key: string): string {
  const v = md.get(key)[0];
  return typeof v === 'string' ? v : v ? v.toString('utf8') : '';
}

/**
 * Parses `MQv2-HMAC-SHA1 Credential=AK, SignedHeaders=x-mq-date-time, Signature=HEX`.
 * Never throws: anything unreadable is undefined.
 */
export function parseAuthorization(value: string): Credential | undefined {
  const m = /^\s*(\S+)\s+(.*)$/.exec(value);
  if (!m) return undefined;
  const fields = new Map<string, string>();
  for (const part of m[2]!.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const credential = fields.get('credential');
  if (credential === undefined) return undefined;
  return {
    scheme: m[1]!,
    // "AK" or, in older clients, "AK/region/service".
    accessKey: credential.split('/')[0]!,
    signedHeaders: (fields.get('signedheaders') ?? '').split(';').filter(Boolean),
    signature: fields.get('signature') ?? '',
  };
}

export function clientContext(call: { metadata: Metadata; getPeer(): string }): ClientContext {
  const md = call.metadata;
  const auth = header(md, 'authorization');
  return {
    clientId: header(md, 'x-mq-client-id'),
    requestId: header(md, 'x-mq-request-id'),
    namespace: header(md, 'x-mq-namespace'),
    language: header(md, 'x-mq-language'),
    clientVersion: header(md, 'x-mq-client-version'),
    peer: call.getPeer().replace(/^ipv[46]:/, ''),
    credential: auth ? parseAuthorization(auth) : undefined,
  };
}

/** The broker-side name of a topic or group resource (namespace applied). */
export function qualify(
  resource: Resource__Output | null | undefined,
  namespace: string,
  kind: 'topic' | 'group',
): string {
  const name = resource?.name ?? '';
  if (!name) {
    throw kind === 'topic'
      ? errors.illegalTopic('', 'must not be empty')
      : errors.illegalGroup('', 'must not be empty');
  }
  const ns = resource?.resource_namespace || namespace;
  return ns && !name.startsWith(`${ns}%`) ? `${ns}%${name}` : name;
}

/** The client-side resource for a broker-side name. */
export function toResource(qualified: string, namespace: string): Resource {
  if (namespace && qualified.startsWith(`${namespace}%`)) {
    return { resource_namespace: namespace, name: qualified.slice(namespace.length + 1) };
  }
  return { resource_namespace: '', name: qualified };
}
