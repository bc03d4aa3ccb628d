/**
 * The walking skeleton end to end with real processes: a broker registers
 * with the name server, the gateway routes a send, receive and ack, and what
 * was accepted survives a broker restart (and a SIGKILL).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerStats } from '../harness/clients.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';

async function post(
  c: Cluster,
  path: string,
  body: unknown,
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${c.http}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

describe('walking skeleton', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster({ brokers: [{}], gateway: true });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('logs RocketMQ boot lines', () => {
    expect(c.namesrvs[0]!.lines.join('\n')).toMatch(
      /The Name Server boot success\. serializeType=JSON, address/,
    );
    expect(c.brokers[0]!.lines.join('\n')).toMatch(
      new RegExp(
        `The broker\\[broker-a, ${c.brokers[0]!.addr.replace('.', '\\.')}\\] boot success\\.`,
      ),
    );
  });

  it('sends, receives and acks; an acked message is not delivered again', async () => {
    const sent = await post(c, '/v1/topics/skel1/messages', {
      messages: [{ body: 'one' }, { body: 'two', tag: 'B' }],
    });
    expect(sent.status).toBe(200);
    expect(sent.json.results.map((r: any) => r.status)).toEqual(['OK', 'OK']);

    const got = await post(c, '/v1/topics/skel1/groups/g/receive', { max: 10, waitSeconds: 2 });
    expect(got.status).toBe(200);
    expect(got.json.messages.map((m: any) => m.body).sort()).toEqual(['one', 'two']);

    const handles = got.json.messages.map((m: any) => m.receiptHandle);
    const acked = await post(c, '/v1/topics/skel1/groups/g/ack', { receiptHandles: handles });
    expect(acked.json.results.map((r: any) => r.code)).toEqual([20000, 20000]);

    // Acking the same handle again is refused as stale.
    const again = await post(c, '/v1/topics/skel1/groups/g/ack', { receiptHandles: [handles[0]] });
    expect(again.json.results[0].code).toBe(40013);

    const none = await post(c, '/v1/topics/skel1/groups/g/receive', { max: 10, waitSeconds: 0 });
    expect(none.json.messages).toEqual([]);
  });

  it('long-polls: a waiting receive answers as soon as a message arrives', async () => {
    // The topic must exist before a receive can wait on it.
    await post(c, '/v1/topics/skel2/messages', { body: 'first' });
    const first = await post(c, '/v1/topics/skel2/groups/g/receive', { max: 1, waitSeconds: 2 });
    await post(c, '/v1/topics/skel2/groups/g/ack', {
      receiptHandles: [first.json.messages[0].receiptHandle],
    });

    const pending = post(c, '/v1/topics/skel2/groups/g/receive', { max: 1, waitSeconds: 20 });
    await waitFor(
      'the receive to wait on the broker',
      async () => Number((await brokerStats(c.brokers[0]!.addr)).longPollsWaiting) > 0,
    );
    const sentAt = Date.now();
    await post(c, '/v1/topics/skel2/messages', { body: 'late' });
    const got = await pending;
    expect(got.json.messages[0].body).toBe('late');
    expect(Date.now() - sentAt).toBeLessThan(2_000);
  });

  it('keeps accepted messages across a SIGKILL and restart of the broker', async () => {
    const sent = await post(c, '/v1/topics/skel3/messages', { body: 'durable' });
    expect(sent.json.results[0].status).toBe('OK');
    await c.brokers[0]!.kill('SIGKILL');
    await c.brokers[0]!.start();
    const got = await waitFor<any[]>('message after restart', async () => {
      const r = await post(c, '/v1/topics/skel3/groups/g/receive', { max: 1, waitSeconds: 1 });
      return r.json.messages?.length > 0 ? r.json.messages : undefined;
    });
    expect(got[0].body).toBe('durable');
  });

  it('answers problem+json for bad input', async () => {
    const bad = await fetch(`${c.http}/v1/topics/skel4/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"body": ',
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect(((await bad.json()) as { code: number }).code).toBe(40000);

    const badName = await post(c, '/v1/topics/bad%20name/messages', { body: 'x' });
    expect(badName.status).toBe(400);

    const forged = await post(c, '/v1/topics/skel4/groups/g/ack', { receiptHandles: ['abc.def'] });
    expect(forged.json.results[0].code).toBe(40013);
  });
});
