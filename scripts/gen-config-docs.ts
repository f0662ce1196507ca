// docs/config.md from the field table of src/topology/fields.ts (the one the topology validator
// takes its keys from), after checking the table against the real parsers:
//   - every example is accepted: one entry per section built from its examples validates, and so
//     does a host config built from its examples, from the file and from each flag;
//   - "required" is true: leaving a required field out is refused with `missing "…"`, leaving an
//     optional one out is not;
//   - the host config parser knows exactly the documented fields, and the defaults written in
//     the table are the parser's.
// `npm run docs:config` writes the file; `--check` only says whether it is current (exit 1 if not).
// test/docs-config.test.ts runs the same check, so a new field cannot go undocumented.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HOST_CONFIG, TOPOLOGY_DOCUMENT, TOPOLOGY_SECTIONS } from '../src/topology/fields.ts';
import type { FieldDoc, SectionDoc } from '../src/topology/fields.ts';
import * as topology from '../src/topology/index.ts';
import { HostConfigError, mergeHostConfig, parseHostConfigFile, parseHostFlags, validateTopology } from '../src/topology/index.ts';

export const CONFIG_MD = fileURLToPath(new URL('../docs/config.md', import.meta.url));

const SECTION_OF: Record<string, string> = { orgs: 'orgs', apps: 'apps', hosts: 'hosts', machines: 'machines', peers: 'peers' };

/** One entry of a section from the examples of its fields. */
function exampleEntry(s: SectionDoc, only?: (f: FieldDoc) => boolean): Record<string, unknown> {
  return Object.fromEntries(s.fields.filter((f) => !only || only(f)).map((f) => [f.key, structuredClone(f.example)]));
}

/** A topology document with one example entry per section. */
export function exampleTopology(): Record<string, unknown> {
  const doc: Record<string, unknown> = exampleEntry(TOPOLOGY_DOCUMENT);
  for (const s of TOPOLOGY_SECTIONS) if (SECTION_OF[s.name]) doc[s.name] = [exampleEntry(s)];
  return doc;
}

/** A host config with every field at its example (the store one aside: it needs an etcd). */
export function exampleHostConfig(withStore = false): Record<string, unknown> {
  return exampleEntry(HOST_CONFIG, (f) => withStore || f.key !== 'store');
}

function problemsOf(doc: unknown): string[] {
  return validateTopology(doc, 'example.json').problems.map((p) => `${p.entry}: ${p.message}`);
}

/** Every way the table and the parsers disagree (empty: they agree). */
export function checkFieldTable(): string[] {
  const out: string[] = [];
  const base = exampleTopology();
  for (const p of problemsOf(base)) out.push(`topology example refused: ${p}`);
  const sections: [string, SectionDoc, (d: Record<string, unknown>) => Record<string, unknown>][] = [
    ['topology', TOPOLOGY_DOCUMENT, (d) => d],
    ...TOPOLOGY_SECTIONS.filter((s) => SECTION_OF[s.name]).map((s): [string, SectionDoc, (d: Record<string, unknown>) => Record<string, unknown>] =>
      [s.name, s, (d) => (d[s.name] as Record<string, unknown>[])[0]]),
  ];
  const prev = TOPOLOGY_SECTIONS.find((s) => s.name === 'machines[].previous')!;
  sections.push([prev.name, prev, (d) => ((d.machines as Record<string, unknown>[])[0].previous as Record<string, unknown>[])[0]]);
  const svc = TOPOLOGY_SECTIONS.find((s) => s.name === 'apps[].services')!;
  sections.push([svc.name, svc, (d) => ((d.apps as Record<string, unknown>[])[0].services as Record<string, unknown>[])[0]]);
  for (const [name, s, entry] of sections) {
    for (const f of s.fields) {
      // A section of the document left out is checked alone below (its entries are referred to).
      if (s === TOPOLOGY_DOCUMENT && !f.required) continue;
      const d = structuredClone(base);
      delete entry(d)[f.key];
      const problems = problemsOf(d);
      if (f.required && problems.length === 0) out.push(`${name}.${f.key} is documented as required, but leaving it out is accepted`);
      if (!f.required && problems.length > 0) out.push(`${name}.${f.key} is documented as optional, but leaving it out gives: ${problems.join('; ')}`);
    }
  }
  const bare = Object.fromEntries(TOPOLOGY_DOCUMENT.fields.filter((f) => f.required).map((f) => [f.key, f.example]));
  for (const p of problemsOf(bare)) out.push(`a topology of only its required fields is refused: ${p}`);
  // The host config: the file with every example, each flag alone, the keys the parser knows.
  const file = '/etc/sixpn/host.json';
  try {
    parseHostConfigFile(JSON.stringify(exampleHostConfig(true)), file);
  } catch (err) {
    out.push(`host config example refused: ${(err as Error).message}`);
  }
  for (const f of HOST_CONFIG.fields) {
    if (!f.flag) continue;
    const value = Array.isArray(f.example) ? f.example.join(',') : String(f.example);
    try {
      const { config, rest } = parseHostFlags([f.flag, value], '/');
      if (rest.length > 0 || !(f.key in config)) out.push(`host config flag ${f.flag} does not set "${f.key}"`);
    } catch (err) {
      out.push(`host config flag ${f.flag} ${value} refused: ${(err as Error).message}`);
    }
  }
  try {
    parseHostConfigFile('{"-": 0}', file);
  } catch (err) {
    const known = /expected: ([^)]*)\)/.exec(err instanceof HostConfigError ? err.problems[0] : '')?.[1].split(', ') ?? [];
    const documented = HOST_CONFIG.fields.map((f) => f.key).filter((k) => k !== 'comment');
    for (const k of known) if (!documented.includes(k)) out.push(`host config field "${k}" is parsed but not documented in src/topology/fields.ts`);
    for (const k of documented) if (!known.includes(k)) out.push(`host config field "${k}" is documented but the parser does not know it`);
  }
  try {
    mergeHostConfig({}, {});
    out.push('host config: nothing is required');
  } catch (err) {
    const problems = err instanceof HostConfigError ? err.problems.join('\n') : '';
    for (const f of HOST_CONFIG.fields) {
      const says = problems.includes(`${f.key}: missing`);
      if (!!f.required !== says) out.push(`host config ${f.key}: documented as ${f.required ? 'required' : 'optional'}, the parser ${says ? 'requires' : 'does not require'} it`);
    }
  }
  const defaults = mergeHostConfig({}, { host: 'ams1', privateKeyFile: '/k' });
  const topo = HOST_CONFIG.fields.find((f) => f.key === 'topology')!;
  if (!topo.default?.includes(`\`${defaults.topology}\``)) out.push(`host config topology: the default is ${defaults.topology}`);
  const metricsDefault = (topology as Record<string, unknown>).DEFAULT_METRICS_ADDRESS;
  const metrics = HOST_CONFIG.fields.find((f) => f.key === 'metrics');
  if (typeof metricsDefault === 'string' && metrics && !metrics.default?.includes(`"${metricsDefault}"`)) {
    out.push(`host config metrics: the default is ${metricsDefault}`);
  }
  return out;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const json = (v: unknown) => `\`${JSON.stringify(v)}\``;

function table(s: SectionDoc, withFlag: boolean): string {
  const head = ['field', ...(withFlag ? ['flag'] : []), 'type', 'default', 'values', 'example', 'what it does'];
  const rows = s.fields.map((f) => [
    `\`${f.key}\``,
    ...(withFlag ? [f.flag ? `\`${f.flag}\`` : ''] : []),
    f.type,
    f.required ? '**required**' : (f.default ?? ''),
    f.range,
    json(f.example),
    f.doc,
  ].map(cell));
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The text of docs/config.md. */
export function renderConfigDocs(): string {
  const parts = [
    '# Configuration reference',
    '',
    '<!-- Generated by `npm run docs:config` (scripts/gen-config-docs.ts) from src/topology/fields.ts;',
    '     do not edit by hand. test/docs-config.test.ts fails when this file is not current. -->',
    '',
    'sixpn reads two files: the **host config**, one small file per server (`sixpn up -c /etc/sixpn/host.json`),',
    'and the **topology**, one document for the whole network (a file that is the same on every host, or',
    'etcd). The operator CLI (`sixpn org|app|host|machine|peer …`) writes the topology for you and allocates',
    'ids; these tables say what it writes. Every example below is accepted by the parsers of this version:',
    'the generator feeds them to them before writing this page. A field not listed here is refused',
    '(`unknown field`), except `comment`, allowed everywhere.',
    '',
    'A **32-bit id** (org network, host id, machine instance) is written as a JSON integer (`24`), hex text',
    '(`"0x18"`, `"0x0a7b007d"`) or the two groups as they read in an address (`"0:18"`, `"a7b:7d"`).',
    'Addresses are derived, never written: a machine is `fdaa | org network | host id | instance | ::2`,',
    'so org `0x18`, host `a7b:7d`, instance `0xf066b83b` is `fdaa:0:18:a7b:7d:f066:b83b:2`.',
    '',
    `## ${HOST_CONFIG.name}`,
    '',
    HOST_CONFIG.doc,
    '',
    table(HOST_CONFIG, true),
    '',
    'A host config with every field (JSON; `store` left out, which would take the topology from etcd):',
    '',
    '```json',
    JSON.stringify(exampleHostConfig(), null, 2),
    '```',
    '',
    '## topology',
    '',
    TOPOLOGY_DOCUMENT.doc,
    '',
    table(TOPOLOGY_DOCUMENT, false),
    '',
  ];
  for (const s of TOPOLOGY_SECTIONS) parts.push(`### ${s.name}`, '', s.doc, '', table(s, false), '');
  parts.push(
    'A topology with one entry of each kind, every field at the example above (it validates; see',
    '`examples/topology.example.json` for a larger one):',
    '',
    '```json',
    JSON.stringify(exampleTopology(), null, 2),
    '```',
    '',
  );
  return parts.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const problems = checkFieldTable();
  if (problems.length > 0) {
    console.error(`gen-config-docs: the field table (src/topology/fields.ts) disagrees with the parsers:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    process.exit(1);
  }
  const text = renderConfigDocs();
  let old = '';
  try {
    old = readFileSync(CONFIG_MD, 'utf8');
  } catch {
    // first run
  }
  if (process.argv.includes('--check')) {
    if (old !== text) {
      console.error('gen-config-docs: docs/config.md is not current; run `npm run docs:config`');
      process.exit(1);
    }
    console.log('gen-config-docs: docs/config.md is current');
  } else if (old !== text) {
    writeFileSync(CONFIG_MD, text);
    console.log('gen-config-docs: wrote docs/config.md');
  } else console.log('gen-config-docs: docs/config.md is current');
}
