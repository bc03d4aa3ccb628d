/**
 * Loads the public apache.rocketmq.v2 protocol (proto/apache/rocketmq/v2)
 * with the same loader options as the internal protos (common/proto.ts):
 * snake_case fields, 64-bit integers as numbers, enums as their names,
 * defaults filled in, oneofs named. scripts/gen-proto.mjs generates the
 * matching types into common/generated/apache/rocketmq/v2.
 *
 * Enum values are read as names ('PRODUCER', 'COMMIT' …); when writing, a
 * name or a number is accepted, so Status.code takes our numeric Code.
 */
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../../common/generated/service.js';
import { PROTO_LOADER_OPTIONS } from '../../common/proto.js';

/** service.proto imports definition.proto and the well-known types. */
export const MESSAGING_PROTO_FILES = ['apache/rocketmq/v2/service.proto'];

export const MESSAGING_SERVICE_NAME = 'apache.rocketmq.v2.MessagingService';

let cached: { definition: PackageDefinition; grpc: ProtoGrpcType } | undefined;

/** The public protocol, loaded once per process (also used for reflection). */
export function messagingProto(): { definition: PackageDefinition; grpc: ProtoGrpcType } {
  if (!cached) {
    const definition = loadSync(MESSAGING_PROTO_FILES, PROTO_LOADER_OPTIONS);
    cached = { definition, grpc: loadPackageDefinition(definition) as unknown as ProtoGrpcType };
  }
  return cached;
}
