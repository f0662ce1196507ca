// Machine slots: the small integers Nat66 and Egress know machines by (0 … capacity − 1), for
// callers that know machines by name. A released slot goes to the back of the free queue, so it
// is reused as late as possible (release it after Egress.forgetMachine, which drops its flows).

export class MachineSlots {
  readonly capacity: number;
  private readonly ids: Array<string | undefined>;
  private readonly byId = new Map<string, number>();
  private readonly free: number[] = [];
  private head = 0; // free[head …] are free, oldest first

  constructor(capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new RangeError(`slots: capacity must be a positive integer: ${capacity}`);
    this.capacity = capacity;
    this.ids = new Array<string | undefined>(capacity);
    for (let i = 0; i < capacity; i++) this.free.push(i);
  }

  get size(): number {
    return this.byId.size;
  }

  // The machine's slot, taking a free one the first time; -1 when every slot is taken.
  acquire(id: string): number {
    const known = this.byId.get(id);
    if (known !== undefined) return known;
    if (this.head === this.free.length) return -1;
    const slot = this.free[this.head++];
    if (this.head > 1024 && this.head * 2 > this.free.length) {
      this.free.splice(0, this.head);
      this.head = 0;
    }
    this.ids[slot] = id;
    this.byId.set(id, slot);
    return slot;
  }

  // The machine's slot, or -1 (a Map lookup: fine per packet).
  get(id: string): number {
    return this.byId.get(id) ?? -1;
  }

  idOf(slot: number): string | undefined {
    return this.ids[slot];
  }

  // Frees the machine's slot; returns it, or -1 when it had none.
  release(id: string): number {
    const slot = this.byId.get(id);
    if (slot === undefined) return -1;
    this.byId.delete(id);
    this.ids[slot] = undefined;
    this.free.push(slot);
    return slot;
  }
}
