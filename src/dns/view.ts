/**
 * What the `.internal` server needs to know about the world, as an interface the router's
 * topology implements. All calls are synchronous and made during one `answer()`; returned
 * objects are only read, never kept.
 *
 * Names (apps, regions, machine ids, process groups, metadata keys and values, peer names) are
 * matched against the query case-insensitively (ASCII, RFC 4343); the view returns them as the
 * topology spells them and the server folds case itself.
 */

/** Who is asking: the org whose names are visible, and where the asker is (for `nearest`). */
export interface DnsAsker {
  readonly org: string;
  /** Region code of the asking machine, or of a WireGuard peer's gateway; absent if unknown. */
  readonly region?: string;
}

export interface DnsMachine {
  readonly id: string; // 14-character machine id
  readonly app: string;
  readonly region: string; // three-letter region code
  readonly processGroup: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly address: Uint8Array; // 16-byte 6PN address (`…::2` of its /112)
  readonly started: boolean; // only started machines are ever answered
}

export interface DnsPeer {
  readonly name: string; // `^[a-zA-Z0-9-]+$`; `interactive-…` peers are hidden from DNS
  readonly address: Uint8Array; // 16-byte address inside the peer's /120
}

export interface DnsView {
  /**
   * The asker owning `source` (16 bytes; may be a view into a packet, valid during the call):
   * a machine whose /112 holds it, or a WireGuard peer whose /120 holds it. Undefined → REFUSED.
   */
  askerOf(source: Uint8Array): DnsAsker | undefined;
  /** Names of all apps of the org (machines started or not). */
  apps(org: string): Iterable<string>;
  /** All machines of an app of the org (started or not); empty if the org has no such app. */
  machines(org: string, app: string): Iterable<DnsMachine>;
  /** WireGuard peers of the org, `interactive-…` ones included (the server filters them). */
  peers(org: string): Iterable<DnsPeer>;
  /** Service addresses the org's machines and peers may use (those in its /48), by app. */
  services?(org: string): Iterable<DnsService>;
}

export interface DnsService {
  readonly app: string;
  readonly address: Uint8Array; // 16 bytes
}
