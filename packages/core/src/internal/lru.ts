/**
 * A least-recently-used map: a `Map` for lookup and a doubly linked list for
 * recency. A hit is one `Map` read and a few pointer writes; keeping recency
 * in the `Map`'s own insertion order instead (delete and set again on every
 * hit) costs two more hashed operations and leaves a hole in the table each
 * time, which the engine rehashes away later.
 *
 * @internal
 */

interface Node<V> {
  readonly key: string
  value: V
  previous: Node<V> | undefined
  next: Node<V> | undefined
}

/**
 * A map of at most `capacity` keys; adding one more drops the least recently
 * read or written.
 *
 * @internal
 */
export class Lru<V> {
  private readonly nodes = new Map<string, Node<V>>()
  /** The least recently used. */
  private head: Node<V> | undefined = undefined
  /** The most recently used. */
  private tail: Node<V> | undefined = undefined

  readonly capacity: number

  constructor(capacity: number) {
    this.capacity = capacity
  }

  get size(): number {
    return this.nodes.size
  }

  /** The value under `key`, now the most recently used. */
  get(key: string): V | undefined {
    const node = this.nodes.get(key)
    if (node === undefined) return undefined
    if (node !== this.tail) {
      this.unlink(node)
      this.append(node)
    }
    return node.value
  }

  /** Sets `key` as the most recently used; drops the least recently used past capacity. */
  set(key: string, value: V): void {
    const found = this.nodes.get(key)
    if (found !== undefined) {
      found.value = value
      if (found !== this.tail) {
        this.unlink(found)
        this.append(found)
      }
      return
    }
    const node: Node<V> = { key, value, previous: undefined, next: undefined }
    this.nodes.set(key, node)
    this.append(node)
    if (this.nodes.size > this.capacity) this.delete(this.head!.key)
  }

  delete(key: string): void {
    const node = this.nodes.get(key)
    if (node === undefined) return
    this.nodes.delete(key)
    this.unlink(node)
  }

  private unlink(node: Node<V>): void {
    if (node.previous === undefined) this.head = node.next
    else node.previous.next = node.next
    if (node.next === undefined) this.tail = node.previous
    else node.next.previous = node.previous
    node.previous = undefined
    node.next = undefined
  }

  private append(node: Node<V>): void {
    node.previous = this.tail
    if (this.tail === undefined) this.head = node
    else this.tail.next = node
    this.tail = node
  }
}
