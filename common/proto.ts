/**
 * Loads the .proto files at run time with @grpc/proto-loader. The loader
 * options must match scripts/gen-proto.mjs so that the generated types in
 * common/generated describe exactly what the loader yields (snake_case
 * fields, 64-bit integers as numbers, enums as strings, defaults filled in).
 */
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import type { ProtoGrpcType as BrokerProto } from './generated/broker.js';
import type { ProtoGrpcType as NamesrvProto } from './generated/namesrv.js';
import type { ProtoGrpcType as ReplicationProto } from './generated/replication.js';
import { PROTO_DIR } from './paths.js';

export const PROTO_LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export const SLUICE_PROTO_FILES = [
  'sluice/v1/common.proto',
  'sluice/v1/namesrv.proto',
  'sluice/v1/broker.proto',
  'sluice/v1/replication.proto',
];

export type SluiceProto = NamesrvProto & BrokerProto & ReplicationProto;

let cached: { definition: PackageDefinition; grpc: SluiceProto } | undefined;

/** The internal sluice.v1 services, loaded once per process. */
export function sluiceProto(): { definition: PackageDefinition; grpc: SluiceProto } {
  if (!cached) {
    const definition = loadSync(SLUICE_PROTO_FILES, PROTO_LOADER_OPTIONS);
    cached = { definition, grpc: loadPackageDefinition(definition) as unknown as SluiceProto };
  }
  return cached;
}
