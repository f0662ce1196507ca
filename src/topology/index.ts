// src/topology: the data model of orgs, apps, machines, hosts and WireGuard peers, the topology
// document and the interface of its stores (their I/O, file and etcd, is src/store's).
//   model        the types, derived 6PN addresses, id and endpoint text
//   validate     document → model, every problem named by file, entry and field
//   topology     the Topology indexes (by org, app, id, host, address, /120) and the DNS view
//   diff         what changed between two topologies
//   patch        an edit applied in place, at the cost of the edit (patch-context: its indexes)
//   edit         document edits: stop, start, remove, migrate a machine
//   stores       the document, its parsing, the store interface (read, validated update, watch)
//   alloc        operator edits with allocated ids (org networks, host ids, instances, peer /120s)
//   host-config  the host's own settings (`sixpn up -c FILE` and flags), validated (read by src/host)

export {
  LABEL_RE,
  MACHINE_ID_RE,
  REGION_RE,
  PEER_NAME_RE,
  METADATA_KEY_RE,
  METADATA_VALUE_MAX_LEN,
  DEFAULT_PROCESS_GROUP,
  SERVICE_HOST,
  SERVICE_INDEX_MAX,
  SERVICE_DNS_SUFFIX,
  deriveMachineAddress,
  deriveServiceAddress,
  formatId32,
  parseId32,
  parseEndpoint,
  formatEndpoint,
} from './model.ts';
export type {
  MachineState,
  Org,
  App,
  AppEgress,
  Service,
  ServicePort,
  ServiceProtocol,
  Endpoint,
  Host,
  PreviousAddress,
  Machine,
  Peer,
  TopologyData,
} from './model.ts';
export { EntryTexts, TOPOLOGY_VERSION, TopologyError, validateTopology } from './validate.ts';
export type { Problem } from './validate.ts';
export { Topology, dnsView, topologyDigest } from './topology.ts';
export type { EntityEdit, MovedMachine, Swap } from './topology.ts';
export { changed, diffEdit, diffTopology, describeDiff } from './diff.ts';
export { patchTopology } from './patch.ts';
export type { EntryChange, PatchResult } from './patch.ts';
export type { Change, EntityDiff, MachineDiff, TopologyDiff } from './diff.ts';
export {
  DEFAULT_TOPOLOGY_FILE, TOPOLOGY_POLL_INTERVAL_MS, SECTIONS, DEFAULT_ETCD_PREFIX,
  topologyFromDocument, parseTopology, asDocument, describeStore, emptyDocument, parseStoreSpec,
} from './stores.ts';
export type { TopologySource, TopologySourceFactory, TopologyWatcher, WatchOptions } from './stores.ts';
export type {
  ChangeHandler, Entry, Section, StoreSpec, StoreStatus, StoreTls, StoreWatchOptions, TopologyDocument, TopologyStore,
  UpdateResult, WatchedSource,
} from './stores.ts';
export {
  EditError, addHost, createApp, createMachine, createOrg, createPeer, destroyMachine, migrateMachine, newMachineId,
  removeApp, removeHost, removeOrg, removePeer, replaceDocument, setMachineStateIn,
} from './alloc.ts';
export type { HostSpec, MachineSpec, PeerSpec } from './alloc.ts';
export { setMachineState, removeMachine, moveMachine } from './edit.ts';
export { autostartIn, autostopIn } from './autoscale.ts';
export { allocateService, releaseService } from './alloc-service.ts';
export type { ServiceSpec } from './alloc-service.ts';
export {
  DNS_PORT,
  HostConfigError,
  parseHostConfigFile,
  parseHostFlags,
  mergeHostConfig,
  resolveLocalHost,
  DEFAULT_METRICS_ADDRESS,
} from './host-config.ts';
export type { HostConfig, PartialHostConfig, LocalHost } from './host-config.ts';
