/** What a notification said: messages became claimable ('published'), or room was made ('settled'). */
export type TopicEvent = 'published' | 'settled';
export type TopicListener = (event: TopicEvent) => void;

/**
 * The listeners of a transport's one notification channel, by topic. The engines differ in how
 * the payload arrives (postgres NOTIFY, redis PUBLISH) but not in what it says: `p:<topic>`
 * (something became claimable) or `s:<topic>` (room was made on an onFull 'wait' topic).
 *
 * @example
 * const listeners = new TopicListeners();
 * const off = listeners.add('orders', (event) => console.log(event));
 * listeners.dispatch('p:orders'); // logs 'published'
 * off();
 */
export class TopicListeners {
  private readonly byTopic = new Map<string, Set<TopicListener>>();

  /** How many topics have a listener. */
  get size(): number {
    return this.byTopic.size;
  }

  /** Registers `listener` for `topic`; returns the function that removes it. */
  add(topic: string, listener: TopicListener): () => void {
    let set = this.byTopic.get(topic);
    if (set === undefined) {
      set = new Set();
      this.byTopic.set(topic, set);
    }
    set.add(listener);
    return () => {
      const current = this.byTopic.get(topic);
      current?.delete(listener);
      if (current?.size === 0) this.byTopic.delete(topic);
    };
  }

  /** Hands a channel payload to its topic's listeners; ignores payloads of another shape. */
  dispatch(payload: string): void {
    const event: TopicEvent | undefined = payload.startsWith('p:') ? 'published' : payload.startsWith('s:') ? 'settled' : undefined;
    if (event === undefined) return;
    const set = this.byTopic.get(payload.slice(2));
    if (set === undefined) return;
    // A copy: a listener may unsubscribe (itself or another) while we go through them.
    for (const listener of [...set]) listener(event);
  }

  /** Tells every listener of every topic, e.g. after notifications may have been missed. */
  broadcast(event: TopicEvent): void {
    for (const set of this.byTopic.values()) for (const listener of [...set]) listener(event);
  }
}
