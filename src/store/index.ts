// The topology stores' I/O (the edge; the interface and the document are src/topology's, pure):
//   file.ts        the topology file: read, replaced atomically, watched
//   file-store.ts  the file backend of TopologyStore (a lock file serializes writers)
//   etcd.ts        the etcd v3 backend: one key per entry, transactions, a host's watch
import type { StoreSpec, TopologyStore } from '../topology/index.ts';
import { FileStore } from './file-store.ts';

export { loadTopology, watchTopology, writeFileAtomic } from './file.ts';
export { FileStore } from './file-store.ts';

/** Opens a store (an etcd client connects lazily; nothing is read yet). */
export async function openStore(spec: StoreSpec): Promise<TopologyStore> {
  if (spec.kind === 'file') return new FileStore(spec.file);
  const { EtcdStore } = await import('./etcd.ts');
  return new EtcdStore(spec);
}
