/** Locations inside the installed package, valid from sources and from dist/. */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'proto'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot locate the sluice package root');
    dir = parent;
  }
  return dir;
}

/** Root of the sluice package (where package.json and proto/ live). */
export const PACKAGE_ROOT = findRoot();
export const PROTO_DIR = join(PACKAGE_ROOT, 'proto');

/** Expands a leading `~` as RocketMQ's docs write paths (`~/store`, `~/namesrv/kvConfig.json`). */
export function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

/** The package version (package.json), e.g. for `brokerVersionDesc`. */
export const SLUICE_VERSION: string = (
  JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
