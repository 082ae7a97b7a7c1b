/**
 * Yjs client ids belong to the live connection that introduced them. Yjs trusts
 * client ids: content written under someone else's id at the clocks they will
 * use next makes every replica drop the victim's own later edits as duplicates.
 * So a connection may not add content under an id another live connection owns:
 * one that speaks for it in presence (a stock y-websocket client announces its
 * `doc.clientID` with its first presence field), or that already added content
 * under it. Connections of one token subject count as one writer, so a user's
 * reconnect need not wait until the old socket is found dead.
 *
 * Only *new* content counts (past the document's state vector): re-sending what
 * the document holds (sync step 2 after a reconnect, an offline merge that carries
 * other people's edits) claims and refuses nothing. A sync step 2 claims nothing
 * even where its content is new: after a node lost recent writes in a crash,
 * every client re-sends everyone's lost edits, and the first to do so must not
 * lock their authors out. For the same reason presence makes an id its
 * speaker's only once that connection has sent its own state. Delete sets never count:
 * deleting other people's content is ordinary editing. A connection that speaks
 * for presence ids claims only those by writing; so a client that carries an
 * absent user's unsent edits does not lock that user out when they return.
 */
import type { ConnectionId } from '../connection-id.js';
import { StateweaveError } from '../errors.js';

/** Who writes: the connection, and the key it shares ownership under (its subject, or itself). */
export interface Writer {
  readonly connId: ConnectionId;
  readonly key: string;
}

/** What `claim` needs to know about the document and the writer. */
export interface ClaimContext {
  /** The document's next clock for `client` (its state vector). */
  known(client: number): number;
  /** The owner key of the connection that speaks for `client` in presence, if any. */
  presenceOwner(client: number): string | undefined;
  /** The writing connection; undefined for an HTTP write, which claims nothing. */
  readonly writer: Writer | undefined;
  /** Presence ids the writing connection speaks for. */
  readonly writerPresence: readonly number[] | undefined;
  /**
   * False for a re-send (sync step 2): checked against owners, but it claims
   * nothing, since it may carry the edits of people who are not connected yet.
   */
  readonly claims: boolean;
}

export interface ClientIds {
  /**
   * Throws CLIENT_ID_TAKEN when `ends` (per client id, the clock past the
   * update's last struct) adds content under an id another live writer owns;
   * otherwise the writer becomes the owner of the new ids it may claim.
   */
  claim(ends: ReadonlyMap<number, number>, context: ClaimContext): void;
  /** The connection writes no more: once no connection of its key is left, the ids are free. */
  release(connId: ConnectionId): void;
}

/** The key of a connection that shares its ids with no other (no token subject). */
export const connectionKey = (connId: number): string => `connection:${connId}`;

interface Owner {
  readonly key: string;
  /** Client ids it introduced: short arrays (made with their first element, not grown from []). */
  ids: number[] | undefined;
  readonly connections: number[];
}

/** The key of a writing connection in `LiveClientIds.owners`: below 0, where no client id is. */
const writerSlot = (connId: number): number => -1 - connId;

/**
 * A class that holds nothing until the first claim: every room has one, and
 * most rooms' writers introduce nothing worth an entry (see `claim`). While one
 * owner is known it is kept alone (`only`: its own lists say which client ids and
 * connections are its); from the second, one map holds both directions: a Yjs
 * client id (≥ 0) → its owner, and a writing connection (`writerSlot`, < 0) → the
 * owner it writes as. (A Map is ~180 bytes, and most rooms have one writer.) By
 * key (another connection of the same subject) an owner is found only at a
 * connection's first write, by a scan.
 */
class LiveClientIds implements ClientIds {
  private only: Owner | undefined;
  private owners: Map<number, Owner> | undefined;

  claim(
    ends: ReadonlyMap<number, number>,
    { known, presenceOwner, writer, writerPresence, claims }: ClaimContext,
  ): void {
    let introduced: number[] | undefined;
    for (const [client, end] of ends) {
      if (end <= known(client)) continue; // nothing new under this id
      const owner = (client >= 0 ? this.find(client)?.key : undefined) ?? presenceOwner(client);
      if (owner !== undefined && owner === writer?.key) continue;
      if (owner !== undefined)
        throw new StateweaveError(
          'CLIENT_ID_TAKEN',
          `client id ${client} belongs to another connection`,
        );
      if (
        claims &&
        (writerPresence === undefined ||
          writerPresence.length === 0 ||
          writerPresence.includes(client))
      ) {
        if (introduced) introduced.push(client);
        else introduced = [client];
      }
    }
    if (writer === undefined) return;
    // A writer is a member of its key from its first write, so its key's ids
    // stay owned while any of its connections lives.
    const alone = writer.key === connectionKey(writer.connId);
    const slot = writerSlot(writer.connId);
    let entry = this.find(slot) ?? (alone ? undefined : this.ownerByKey(writer.key));
    // A connection alone under its key that introduced nothing has nothing to
    // keep owned: no entry (idle memory; every stock client's first sync step 2
    // comes here).
    if (!entry && introduced === undefined && alone) return;
    if (!entry) entry = { key: writer.key, ids: undefined, connections: [writer.connId] };
    else if (!entry.connections.includes(writer.connId)) entry.connections.push(writer.connId);
    this.index(entry, slot);
    // Claimed only once the whole update passed: a refused update claims nothing.
    for (const client of introduced ?? []) {
      if (entry.ids) entry.ids.push(client);
      else entry.ids = [client];
      this.index(entry, client);
    }
  }

  release(connId: ConnectionId): void {
    const entry = this.find(writerSlot(connId));
    if (!entry) return;
    entry.connections.splice(entry.connections.indexOf(connId), 1);
    const { owners } = this;
    if (!owners) {
      if (entry.connections.length === 0) this.only = undefined;
      return;
    }
    owners.delete(writerSlot(connId));
    if (entry.connections.length > 0) return;
    for (const client of entry.ids ?? []) if (owners.get(client) === entry) owners.delete(client);
  }

  /** The owner under `key` (a client id, or a `writerSlot`). */
  private find(key: number): Owner | undefined {
    if (this.owners) return this.owners.get(key);
    const owner = this.only;
    if (!owner) return undefined;
    const listed = key >= 0 ? owner.ids?.includes(key) : owner.connections.includes(-1 - key);
    return listed ? owner : undefined;
  }

  /** `owner` is found under `key` from now on (it already lists it). */
  private index(owner: Owner, key: number): void {
    if (!this.owners) {
      if (this.only === undefined || this.only === owner) {
        this.only = owner;
        return;
      }
      // A second owner: from now on, the map.
      const first = this.only;
      const owners = new Map<number, Owner>();
      for (const connId of first.connections) owners.set(writerSlot(connId), first);
      for (const client of first.ids ?? []) owners.set(client, first);
      this.owners = owners;
      this.only = undefined;
    }
    this.owners.set(key, owner);
  }

  /** The owner other connections of `key` write as (none for a connection's own key). */
  private ownerByKey(key: string): Owner | undefined {
    if (!this.owners) return this.only?.key === key ? this.only : undefined;
    for (const [slot, owner] of this.owners) if (slot < 0 && owner.key === key) return owner;
    return undefined;
  }
}

export const createClientIds = (): ClientIds => new LiveClientIds();
