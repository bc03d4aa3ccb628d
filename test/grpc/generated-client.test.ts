/**
 * "Generated gRPC clients work": a client generated at test time from our
 * proto/apache/rocketmq/v2 files by a code generator (protoc + ts-proto with
 * outputServices=grpc-js) sends, receives and acks through the gateway.
 *
 * Needs protoc (Debian: protobuf-compiler). When it is missing and we run as
 * root it is installed, as test/harness/redis.ts installs redis-server.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { credentials, Metadata } from '@grpc/grpc-js';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT, PROTO_DIR } from '../../common/paths.js';
import { type Cluster, startCluster } from '../harness/cluster.js';

function findProtoc(): string | undefined {
  if (existsSync('/usr/bin/protoc')) return '/usr/bin/protoc';
  try {
    return (
      execFileSync('sh', ['-c', 'command -v protoc'], { encoding: 'utf8' }).trim() || undefined
    );
  } catch {
    return undefined;
  }
}

function ensureProtoc(): string {
  const found = findProtoc();
  if (found) return found;
  if (process.getuid?.() === 0) {
    execFileSync(
      'sh',
      [
        '-c',
        'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler',
      ],
      { stdio: 'ignore' },
    );
    const installed = findProtoc();
    if (installed) return installed;
  }
  throw new Error(
    'protoc is not installed: run `sudo apt-get install -y protobuf-compiler` and re-run the tests',
  );
}

/**
 * The two well-known types our protos import. protoc finds them in
 * /usr/include when libprotobuf-dev is installed; otherwise these stand in
 * (same package, names and field numbers as the published ones).
 */
const WELL_KNOWN: Record<string, string> = {
  'google/protobuf/duration.proto':
    'syntax = "proto3";\npackage google.protobuf;\nmessage Duration {\n  int64 seconds = 1;\n  int32 nanos = 2;\n}\n',
  'google/protobuf/timestamp.proto':
    'syntax = "proto3";\npackage google.protobuf;\nmessage Timestamp {\n  int64 seconds = 1;\n  int32 nanos = 2;\n}\n',
};

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/**
 * Generates TypeScript with ts-proto, then transpiles it to ESM JavaScript
 * under node_modules/.cache so that its imports (@grpc/grpc-js,
 * @bufbuild/protobuf) resolve to this package's dependencies.
 */
function generateClient(outRoot: string): string {
  const protoc = ensureProtoc();
  const tsOut = join(outRoot, 'ts');
  const jsOut = join(outRoot, 'js');
  const wkt = join(outRoot, 'include');
  mkdirSync(tsOut, { recursive: true });
  const includes = ['-I', PROTO_DIR];
  if (existsSync('/usr/include/google/protobuf/duration.proto'))
    includes.push('-I', '/usr/include');
  else {
    for (const [file, text] of Object.entries(WELL_KNOWN)) {
      mkdirSync(dirname(join(wkt, file)), { recursive: true });
      writeFileSync(join(wkt, file), text);
    }
    includes.push('-I', wkt);
  }
  execFileSync(
    protoc,
    [
      `--plugin=protoc-gen-ts_proto=${join(PACKAGE_ROOT, 'node_modules', '.bin', 'protoc-gen-ts_proto')}`,
      `--ts_proto_out=${tsOut}`,
      '--ts_proto_opt=outputServices=grpc-js,env=node,esModuleInterop=true,importSuffix=.js,forceLong=number',
      ...includes,
      join(PROTO_DIR, 'apache/rocketmq/v2/definition.proto'),
      join(PROTO_DIR, 'apache/rocketmq/v2/service.proto'),
    ],
    { stdio: 'pipe' },
  );
  for (const file of walk(tsOut)) {
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: {
        module: ts.ModuleKind.ES2022,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
    }).outputText;
    const target = join(jsOut, relative(tsOut, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, js);
  }
  writeFileSync(join(jsOut, 'package.json'), '{"type":"module"}\n');
  return jsOut;
}

describe('a gRPC client generated from our .proto files (protoc + ts-proto)', () => {
  let c: Cluster;
  let outRoot: string;
  let gen: any;
  let def: any;
  let client: any;

  beforeAll(async () => {
    outRoot = join(
      PACKAGE_ROOT,
      'node_modules',
      '.cache',
      `sluice-ts-proto-${process.pid}-${Date.now()}`,
    );
    const [cluster, jsOut] = await Promise.all([
      startCluster({ brokers: [{}], gateway: true }),
      Promise.resolve().then(() => generateClient(outRoot)),
    ]);
    c = cluster;
    gen = await import(pathToFileURL(join(jsOut, 'apache/rocketmq/v2/service.js')).href);
    def = await import(pathToFileURL(join(jsOut, 'apache/rocketmq/v2/definition.js')).href);
    client = new gen.MessagingServiceClient(
      `127.0.0.1:${c.gateway!.grpcPort}`,
      credentials.createInsecure(),
    );
  });
  afterAll(async () => {
    client?.close();
    await c?.close();
    if (outRoot) rmSync(outRoot, { recursive: true, force: true });
  });

  const unary = <T>(method: string, request: unknown): Promise<T> =>
    new Promise((resolve, reject) => {
      const md = new Metadata();
      md.set('x-mq-client-id', 'generated-client-1');
      client[method](request, md, (err: Error | null, res: T) =>
        err ? reject(err) : resolve(res),
      );
    });

  it('routes, sends, receives and acks', async () => {
    const topic = { resourceNamespace: '', name: 'gen-topic' };
    const group = { resourceNamespace: '', name: 'gen-group' };
    const access = {
      scheme: def.AddressScheme.IPv4,
      addresses: [{ host: '127.0.0.1', port: c.gateway!.grpcPort }],
    };

    const route: any = await unary(
      'queryRoute',
      gen.QueryRouteRequest.fromPartial({ topic, endpoints: access }),
    );
    expect(route.status.code).toBe(def.Code.OK);
    const q0 = route.messageQueues.find((q: any) => q.id === 0);
    expect(q0.permission).toBe(def.Permission.READ_WRITE);
    expect(q0.broker.endpoints.addresses[0].port).toBe(c.gateway!.grpcPort);

    const sent: any = await unary(
      'sendMessage',
      gen.SendMessageRequest.fromPartial({
        messages: [
          {
            topic,
            userProperties: { via: 'ts-proto' },
            systemProperties: {
              tag: 'Gen',
              keys: ['g1'],
              messageId: 'GEN-0001',
              messageType: def.MessageType.NORMAL,
              bodyEncoding: def.Encoding.IDENTITY,
            },
            body: Buffer.from('generated hello'),
          },
        ],
      }),
    );
    expect(sent.status.code).toBe(def.Code.OK);
    expect(sent.entries[0].messageId).toBe('GEN-0001');

    const responses: any[] = [];
    const stream = client.receiveMessage(
      gen.ReceiveMessageRequest.fromPartial({
        group,
        messageQueue: q0,
        filterExpression: { type: def.FilterType.TAG, expression: '*' },
        batchSize: 8,
        invisibleDuration: { seconds: 30, nanos: 0 },
        longPollingTimeout: { seconds: 5, nanos: 0 },
      }),
      new Metadata(),
      { deadline: Date.now() + 15_000 },
    );
    for await (const r of stream) responses.push(r);
    expect(responses[0].status.code).toBe(def.Code.OK);
    const messages = responses.filter((r) => r.message).map((r) => r.message);
    expect(responses.at(-1).deliveryTimestamp).toBeDefined();
    expect(messages).toHaveLength(1);
    const m = messages[0];
    expect(Buffer.from(m.body).toString()).toBe('generated hello');
    expect(m.userProperties).toEqual({ via: 'ts-proto' });
    expect(m.systemProperties).toMatchObject({
      tag: 'Gen',
      keys: ['g1'],
      messageId: 'GEN-0001',
      deliveryAttempt: 1,
    });
    expect(m.systemProperties.bodyDigest.type).toBe(def.DigestType.MD5);
    expect(m.systemProperties.receiptHandle).toBeTruthy();

    const acked: any = await unary(
      'ackMessage',
      gen.AckMessageRequest.fromPartial({
        group,
        topic,
        entries: [
          {
            messageId: m.systemProperties.messageId,
            receiptHandle: m.systemProperties.receiptHandle,
          },
        ],
      }),
    );
    expect(acked.status.code).toBe(def.Code.OK);
    expect(acked.entries[0].status.code).toBe(def.Code.OK);
  });
});
