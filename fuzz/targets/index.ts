// Every fuzz target, by name (`npm run fuzz -- --target NAME`).
import type { TargetFactory } from '../lib.ts';
import { configTarget } from './config.ts';
import { dnsTarget } from './dns.ts';
import { nat66Target } from './nat66.ts';
import { routerTarget } from './router.ts';
import { uapiTarget } from './uapi.ts';
import { wgTarget } from './wg.ts';

export const TARGETS: ReadonlyMap<string, TargetFactory> = new Map([
  ['wg', wgTarget],
  ['router', routerTarget],
  ['nat66', nat66Target],
  ['dns', dnsTarget],
  ['uapi', uapiTarget],
  ['config', configTarget],
]);
