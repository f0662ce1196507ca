// docs/config.md is generated from the field table (src/topology/fields.ts) that the topology
// validator takes its keys from, and the table agrees with the parsers: every example is
// accepted, required means required, the host config parser knows exactly the documented
// fields. A field added without a row fails here (or is refused by the validator).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { CONFIG_MD, checkFieldTable, renderConfigDocs } from '../scripts/gen-config-docs.ts';
import { HOST_CONFIG, TOPOLOGY_SECTIONS } from '../src/topology/fields.ts';
import { parseHostConfigFile, validateTopology } from '../src/topology/index.ts';

test('the field table agrees with the parsers', (t) => {
  t.deepEqual(checkFieldTable(), []);
});

test('docs/config.md is current (npm run docs:config)', (t) => {
  t.is(readFileSync(CONFIG_MD, 'utf8'), renderConfigDocs(), 'docs/config.md is stale: run `npm run docs:config` and commit it');
});

test('a field the table does not have is refused, so it cannot be used undocumented', (t) => {
  const { problems } = validateTopology({ version: 1, orgs: [{ name: 'acme', network: 1, colour: 'red' }] }, 't.json');
  t.regex(problems[0]?.message ?? '', /unknown field "colour" \(expected: name, network, comment\)/);
  t.throws(() => parseHostConfigFile('{"host": "a", "colour": "red"}', '/h.json'), { message: /unknown field "colour"/ });
});

test('every documented field has a type, a range, an example and a description', (t) => {
  for (const s of [HOST_CONFIG, ...TOPOLOGY_SECTIONS]) {
    for (const f of s.fields) {
      t.true(f.type !== '' && f.range !== '' && f.doc !== '' && f.example !== undefined, `${s.name}.${f.key}`);
      t.true(f.required === true || (f.default ?? '') !== '', `${s.name}.${f.key}: optional, so it needs a default`);
    }
  }
});
