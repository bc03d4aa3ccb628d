/**
 * `mqadmin updateKvConfig` / `deleteKvConfig` (every name server of the list)
 * and `getKvConfig` (the first that answers).
 */
import { adminCommand } from './context.js';
import { reportEach } from './each-namesrv.js';
import { keyValues } from './format.js';

export function updateKvConfigCommand() {
  return adminCommand<{ namespace: string; key: string; value: string }>(
    'updateKvConfig',
    'Create or update a KV config entry on every name server of -n',
    (cmd) =>
      cmd
        .requiredOption('-s, --namespace <ns>', 'namespace')
        .requiredOption('-k, --key <key>', 'key')
        .requiredOption('-v, --value <value>', 'value'),
    async (ctx, opts) => {
      const results = await ctx.namesrv.putKvConfig({
        namespace: opts.namespace,
        key: opts.key,
        value: opts.value,
      });
      reportEach(
        ctx,
        results,
        (addr) => `create or update kv config to namespace success. [${addr}]`,
      );
      if (ctx.json) {
        ctx.printJson({
          results: results.map((r) => ({ namesrv: r.addr, error: r.error?.message ?? null })),
        });
      }
    },
  );
}

export function deleteKvConfigCommand() {
  return adminCommand<{ namespace: string; key: string }>(
    'deleteKvConfig',
    'Delete a KV config entry on every name server of -n',
    (cmd) =>
      cmd
        .requiredOption('-s, --namespace <ns>', 'namespace')
        .requiredOption('-k, --key <key>', 'key'),
    async (ctx, opts) => {
      const results = await ctx.namesrv.deleteKvConfig({
        namespace: opts.namespace,
        key: opts.key,
      });
      reportEach(ctx, results, (addr) => `delete kv config from namespace success. [${addr}]`);
      if (ctx.json) {
        ctx.printJson({
          results: results.map((r) => ({ namesrv: r.addr, error: r.error?.message ?? null })),
        });
      }
    },
  );
}

export function getKvConfigCommand() {
  return adminCommand<{ namespace: string; key?: string }>(
    'getKvConfig',
    'Show a KV config entry (-k) or a whole namespace',
    (cmd) =>
      cmd.requiredOption('-s, --namespace <ns>', 'namespace').option('-k, --key <key>', 'key'),
    async (ctx, opts) => {
      const table = opts.key
        ? {
            [opts.key]: (
              await ctx.namesrv.getKvConfig({ namespace: opts.namespace, key: opts.key })
            ).value,
          }
        : await ctx.namesrv.kvList(opts.namespace);
      if (ctx.json) ctx.printJson({ namespace: opts.namespace, table });
      else if (Object.keys(table).length > 0) ctx.out(keyValues(table, '='));
    },
  );
}
