/** Fixed-capacity FIFO that overwrites its oldest entry when full. */
export class RingBuffer<T> {
  readonly capacity: number;
  readonly #items: (T | undefined)[];
  #next = 0;
  #size = 0;
  /** How many entries were overwritten since creation. */
  dropped = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new Error(`ring buffer capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#items = new Array<T | undefined>(capacity);
  }

  /** Appends `item`; returns the entry it pushed out, if any. */
  push(item: T): T | undefined {
    const evicted = this.#size === this.capacity ? this.#items[this.#next] : undefined;
    if (this.#size === this.capacity) this.dropped++;
    else this.#size++;
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
    return evicted;
  }

  get size(): number {
    return this.#size;
  }

  /** Oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    const start = (this.#next - this.#size + this.capacity) % this.capacity;
    for (let i = 0; i < this.#size; i++) out.push(this.#items[(start + i) % this.capacity] as T);
    return out;
  }
}
