/**
 * Batches of 128 messages are ~130 KiB per call; HTTP/2's default 64 KiB
 * receive window would stall them (DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES).
 * Every server from startGrpcServer must advertise the wider window, and
 * clients must ask for it too.
 */
import { connect } from 'node:http2';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES,
  GRPC_CHANNEL_OPTIONS,
  type GrpcServerHandle,
  startGrpcServer,
} from '../../common/grpc.js';
import { waitFor } from '../harness/wait.js';

describe('gRPC transport windows', () => {
  let handle: GrpcServerHandle | undefined;
  afterAll(async () => {
    await handle?.close(100);
  });

  it('a server advertises the wide stream window and opens the connection window', async () => {
    handle = await startGrpcServer('127.0.0.1', 0, [], () => undefined);
    const session = connect(`http://127.0.0.1:${handle.port}`);
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('remoteSettings', () => resolve());
        session.once('error', reject);
      });
      expect(session.remoteSettings.initialWindowSize).toBe(DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES);
      // The connection-level window follows in a WINDOW_UPDATE right after the settings.

      await waitFor(
        'the connection window update',
        () => (session.state.remoteWindowSize ?? 0) >= DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES,
        5_000,
        10,
      );
    } finally {
      session.close();
    }
  });

  it('clients ask for the same window', () => {
    expect(GRPC_CHANNEL_OPTIONS['grpc-node.flow_control_window']).toBe(
      DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES,
    );
  });
});
