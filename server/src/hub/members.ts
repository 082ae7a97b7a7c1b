/**
 * What a room keeps about each connection, as one record per connection in one
 * map: its subscriber, the presence client ids it announced, and whether it has
 * sent its own state. These were a map or a set per concern (subscribers,
 * presence ids, their owners, who sent state): each an empty hash table of
 * 150–180 bytes, and with one connection per document most of what a small
 * room held beyond its Y.Doc and Awareness.
 *
 * Who owns a presence id is found by scanning the few members of a small room;
 * a room with more members keeps an index (id → member), built when it is first
 * needed, so presence at hundreds of clients stays a map lookup per entry.
 */

import type { ConnectionId } from '../connection-id.js';
/** Past this many members a presence owner is looked up in an index, not found by a scan. */
const SCAN_MEMBERS = 8;

/** A subscriber as the room knows it (room.ts `Subscriber`). */
interface Keyed {
  readonly connId: ConnectionId;
}

export interface Member<S extends Keyed> {
  readonly connId: ConnectionId;
  /** Set while subscribed; a connection may speak (presence, edits) before or without it. */
  subscriber: S | undefined;
  /** Presence client ids it announced: a short array (at most a few, presence-guard.ts). */
  ids: number[] | undefined;
  /** It has sent its state (sync step 2) or an edit: its presence ids are its own. */
  sentState: boolean;
}

/** No members: what `all()` returns for an empty room. */
const NONE: readonly never[] = [];

export class Members<S extends Keyed> {
  /** The record while it is the only one: most rooms have one connection, and a Map is ~180 bytes. */
  private only: Member<S> | undefined;
  /** Every record, once a second one was made. */
  private byConn: Map<number, Member<S>> | undefined;
  private subscribed = 0;
  /** Presence ids owned by members, in all. */
  private owned = 0;
  /** Presence id → its member; made once a lookup would scan more than SCAN_MEMBERS. */
  private byId: Map<number, Member<S>> | undefined;

  get subscriberCount(): number {
    return this.subscribed;
  }

  /** Presence ids owned by connections (not relayed by peers). */
  get presenceCount(): number {
    return this.owned;
  }

  get(connId: ConnectionId): Member<S> | undefined {
    if (this.byConn) return this.byConn.get(connId);
    return this.only?.connId === connId ? this.only : undefined;
  }

  /** The record of `connId`, made at first use. */
  of(connId: ConnectionId): Member<S> {
    const known = this.get(connId);
    if (known) return known;
    const member: Member<S> = { connId, subscriber: undefined, ids: undefined, sentState: false };
    if (!this.byConn && !this.only) this.only = member;
    else {
      if (!this.byConn) {
        this.byConn = new Map([[this.only!.connId, this.only!]]);
        this.only = undefined;
      }
      this.byConn.set(connId, member);
    }
    return member;
  }

  subscribe(subscriber: S): void {
    const member = this.of(subscriber.connId);
    if (!member.subscriber) this.subscribed++;
    member.subscriber = subscriber;
  }

  /** Every record; those with a subscriber receive frames. Live: removals while iterating are safe. */
  all(): Iterable<Member<S>> {
    if (this.byConn) return this.byConn.values();
    return this.only ? [this.only] : NONE;
  }

  /**
   * Forgets `connId`. Its presence ids are no longer anyone's from now on; the
   * returned record still lists them, so the caller can remove their states.
   */
  remove(connId: ConnectionId): Member<S> | undefined {
    const member = this.get(connId);
    if (!member) return undefined;
    if (this.byConn) this.byConn.delete(connId);
    else this.only = undefined;
    if (member.subscriber) this.subscribed--;
    for (const id of member.ids ?? []) {
      this.owned--;
      if (this.byId?.get(id) === member) this.byId.delete(id);
    }
    return member;
  }

  /** The member that announced presence id `id`, if any. */
  ownerOf(id: number): Member<S> | undefined {
    if (this.owned === 0) return undefined;
    if (!this.byId && this.byConn && this.byConn.size > SCAN_MEMBERS) {
      this.byId = new Map();
      for (const member of this.byConn.values())
        for (const owned of member.ids ?? []) this.byId.set(owned, member);
    }
    if (this.byId) return this.byId.get(id);
    for (const member of this.all()) if (member.ids?.includes(id)) return member;
    return undefined;
  }

  /** `member` announced presence id `id` (it is now its owner). */
  own(member: Member<S>, id: number): void {
    const previous = this.ownerOf(id);
    if (previous === member) return;
    if (previous) this.disown(id);
    if (member.ids) member.ids.push(id);
    else member.ids = [id];
    this.owned++;
    this.byId?.set(id, member);
  }

  /** Presence id `id` left (for whatever reason): it is nobody's. */
  disown(id: number): void {
    const owner = this.ownerOf(id);
    if (!owner) return;
    const at = owner.ids!.indexOf(id);
    owner.ids!.splice(at, 1);
    this.owned--;
    this.byId?.delete(id);
  }
}
