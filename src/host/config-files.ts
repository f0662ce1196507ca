// The host's files, read at start: the host config (`sixpn up -c FILE`, merged with the flags by
// src/topology/host-config.ts, which validates both) and the private key.
import { readFileSync, statSync } from 'node:fs';
import { parseKeyBase64 } from '../noise/keys.ts';
import { HostConfigError, mergeHostConfig, parseHostConfigFile, parseHostFlags } from '../topology/index.ts';
import type { HostConfig, PartialHostConfig } from '../topology/index.ts';

/** `sixpn up [-c FILE] [flags]`: the merged host config, and the arguments it did not take. */
export function loadHostConfig(argv: readonly string[], cwd = process.cwd()): { config: HostConfig; rest: string[] } {
  const { config: flags, configFile, rest } = parseHostFlags(argv, cwd);
  let file: PartialHostConfig = {};
  if (configFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(configFile, 'utf8');
    } catch (err) {
      throw new HostConfigError([`${configFile}: cannot read: ${(err as NodeJS.ErrnoException).code ?? err}`]);
    }
    file = parseHostConfigFile(text, configFile);
  }
  return { config: mergeHostConfig(file, flags), rest };
}

/**
 * Reads the host's private key (wg(8) base64). Warns when the file is open to group or others.
 * The key is never part of a message; the caller zeroes it when done.
 */
export function readPrivateKey(file: string): { key: Uint8Array; warnings: string[] } {
  const warnings: string[] = [];
  let raw: Buffer;
  try {
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      warnings.push(`private key file ${file} is accessible to group or others (mode 0${mode.toString(8)}); chmod 600 it`);
    }
    raw = readFileSync(file);
  } catch (err) {
    throw new HostConfigError([`private key file ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? err}`]);
  }
  try {
    return { key: parseKeyBase64(raw.toString('latin1')), warnings };
  } catch (err) {
    throw new HostConfigError([`private key file ${file}: ${(err as Error).message}`]);
  } finally {
    raw.fill(0);
  }
}

