/**
 * Yjs client ids belong to the live connection that introduced them. Yjs trusts
 * client ids: content written under someone else's id at the clocks they will
 * use next makes every replica drop the victim's own later edits as duplicates.
 * So a connection may not add content under an id another live connection owns:
 * one that speaks for it in presence (a stock y-websocket client announces its
 * `doc.clientID` as soon as it connects), or that already added content under it.
 *
 * Only *new* content counts (past the document's state vector): re-sending what
 * the document holds (sync step 2 after a reconnect, an offline merge that carries
 * other people's edits) claims and refuses nothing. Delete sets never count:
 * deleting other people's content is ordinary editing. A connection that speaks
 * for presence ids claims only those by writing; so a client that carries an
 * absent user's unsent edits does not lock that user out when they return.
 */
import { StateweaveError } from '../errors.js';

/** What `claim` needs to know about the document and the writer. */
export interface ClaimContext {
  /** The document's next clock for `client` (its state vector). */
  known(client: number): number;
  /** The connection that speaks for `client` in presence, if any. */
  presenceOwner(client: number): number | undefined;
  /** The writing connection; undefined for an HTTP write, which claims nothing. */
  readonly writer: number | undefined;
  /** Presence ids the writer speaks for. */
  readonly writerPresence: ReadonlySet<number> | undefined;
}

export interface ClientIds {
  /**
   * Throws CLIENT_ID_TAKEN when `ends` (per client id, the clock past the
   * update's last struct) adds content under an id another live connection owns;
   * otherwise the writer becomes the owner of the new ids it may claim.
   */
  claim(ends: ReadonlyMap<number, number>, context: ClaimContext): void;
  /** The connection left: the ids it owned are free. */
  release(writer: number): void;
}

export const createClientIds = (): ClientIds => {
  const owners = new Map<number, number>();
  const owned = new Map<number, number[]>();
  return {
    claim(ends, { known, presenceOwner, writer, writerPresence }) {
      let introduced: number[] | undefined;
      for (const [client, end] of ends) {
        if (end <= known(client)) continue; // nothing new under this id
        const owner = owners.get(client) ?? presenceOwner(client);
        if (owner === writer) continue;
        if (owner !== undefined)
          throw new StateweaveError(
            'CLIENT_ID_TAKEN',
            `client id ${client} belongs to another connection`,
          );
        if (writerPresence === undefined || writerPresence.size === 0 || writerPresence.has(client))
          (introduced ??= []).push(client);
      }
      // Claimed only once the whole update passed: a refused update claims nothing.
      if (introduced === undefined || writer === undefined) return;
      let list = owned.get(writer);
      if (!list) owned.set(writer, (list = []));
      for (const client of introduced) {
        owners.set(client, writer);
        list.push(client);
      }
    },
    release(writer) {
      for (const client of owned.get(writer) ?? [])
        if (owners.get(client) === writer) owners.delete(client);
      owned.delete(writer);
    },
  };
};
