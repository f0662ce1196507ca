// The entries of an etcd store (etcd.ts) as a host and the CLI hold them: one key per entry
// under the prefix, `meta` beside them, each entry kept as its JSON text.

import { EntryTexts, SECTIONS, TOPOLOGY_VERSION, TopologyError, topologyFromDocument } from '../topology/index.ts';
import type { Entry, Section, Topology, TopologyDocument } from '../topology/index.ts';

export const META_KEY = 'meta';

/** The key of an entry under the prefix, or undefined when the entry has no usable name. */
export function entryKey(section: Section, e: Entry): string | undefined {
  const name = section === 'machines' ? e.id : e.name;
  if (typeof name !== 'string' || name === '' || name.includes('/')) return undefined;
  if (section !== 'peers') return `${section}/${name}`;
  return typeof e.org === 'string' && e.org !== '' && !e.org.includes('/') ? `peers/${e.org}/${name}` : undefined;
}

export function sectionOf(key: string): Section | undefined {
  const s = key.slice(0, key.indexOf('/'));
  return (SECTIONS as readonly string[]).includes(s) ? (s as Section) : undefined;
}

/**
 * The entries of a store, by key, kept in key order of their first appearance. An entry is held as
 * its JSON text (checked to parse), not parsed: 50,000 machines are ~8 MB of text against ~26 MB
 * of parsed objects, and a whole validation parses them one at a time (EntryTexts).
 */
export class Entries {
  readonly sections = new Map<Section, Map<string, string>>(SECTIONS.map((s) => [s, new Map()]));
  meta: Entry = {};
  /** Problems of keys that are not an entry (bad JSON, unknown folder): the store is invalid while they stay. */
  readonly bad = new Map<string, string>();

  set(key: string, value: Buffer): void {
    this.bad.delete(key);
    const text = value.toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      this.delete(key);
      this.bad.set(key, `not valid JSON: ${(err as Error).message}`);
      return;
    }
    if (key === META_KEY) {
      this.meta = typeof parsed === 'object' && parsed !== null ? (parsed as Entry) : {};
      return;
    }
    const s = sectionOf(key);
    if (!s) {
      this.bad.set(key, `not a key of the layout (${META_KEY}, ${SECTIONS.map((x) => `${x}/…`).join(', ')})`);
      return;
    }
    this.sections.get(s)!.set(key, text);
  }

  /** The entry (parsed anew) or meta of a key; undefined when there is none. */
  get(key: string): unknown {
    if (key === META_KEY) return this.meta;
    const s = sectionOf(key);
    const text = s && this.sections.get(s)!.get(key);
    return text === undefined ? undefined : JSON.parse(text);
  }

  delete(key: string): void {
    this.bad.delete(key);
    if (key === META_KEY) this.meta = {};
    else this.sections.get(sectionOf(key)!)?.delete(key);
  }

  private top(): { version: number; comment?: string } {
    return {
      version: typeof this.meta.version === 'number' ? this.meta.version : TOPOLOGY_VERSION,
      ...(typeof this.meta.comment === 'string' ? { comment: this.meta.comment } : {}),
    };
  }

  /** The document, its entries parsed anew (an edit may change them in place). */
  document(): TopologyDocument {
    const doc: TopologyDocument = { ...this.top(), orgs: [], hosts: [], apps: [], machines: [], peers: [] };
    for (const s of SECTIONS) doc[s] = [...this.sections.get(s)!.values()].map((t) => JSON.parse(t) as Entry);
    return doc;
  }

  /** The topology, or a TopologyError naming the bad keys and entries. */
  topology(source: string): Topology {
    if (this.bad.size > 0) {
      throw new TopologyError(source, [...this.bad].map(([k, m]) => ({ file: source, entry: `key ${k}`, message: m })));
    }
    const doc: Record<string, unknown> = this.top();
    for (const s of SECTIONS) doc[s] = new EntryTexts(this.sections.get(s)!.values());
    return topologyFromDocument(doc, source);
  }
}
