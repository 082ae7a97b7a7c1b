/**
 * What a node answers when another node asks it something over the cluster's
 * request/response (backplane-rpc.ts), on the mesh and on a backplane alike:
 * run a forwarded `owner` call, send what a state vector lacks, take part in
 * another node's stored catch-up (stored-catch-up.ts: a state vector, an update
 * stored before the answer, the record of how far that node's catch-up got),
 * and — on the mesh, whose nodes keep the function registry among themselves —
 * answer the registry's questions (registry-sync.ts).
 */
import { assertNever } from '../assert-never.js';
import * as Y from 'yjs';
import { validateDocName } from '../doc-name.js';
import { StateweaveError } from '../errors.js';
import type { NodeId } from '../node-id.js';
import type { Hub } from '../hub/hub.js';
import type { ForwardRequest, ForwardResponse } from '../node-ports.js';
import type { Tombstone } from '../hub/tombstone.js';
import type { CatchUpCursor, RpcReply, RpcRequest, TombstoneCursor } from './rpc-codec.js';

/** A registry request, answered with JSON (registry-sync.ts). */
export type RegistryRequest = Extract<
  RpcRequest,
  { type: 'deployment-meta' | 'deployment-code' | 'deployment-push' }
>;

export interface NodeRequestsOptions {
  readonly hub: Hub;
  /** Runs an `owner` call another node forwarded here (authenticated with its authorization). */
  readonly runOwnerCall?: (from: NodeId, request: ForwardRequest) => Promise<ForwardResponse>;
  /** Answers the mesh registry's requests; absent on a backplane (deployments are a record there). */
  readonly answerRegistry?: (from: NodeId, request: RegistryRequest) => Promise<string>;
  /** Where other nodes' stored catch-ups to this node stand (kept in this node's store). */
  readonly cursors?: CatchUpCursors;
  /**
   * Deletes here the documents another node deleted (tombstones.ts); resolves
   * once stored, with this node's record of how far that node's tombstones reached it.
   */
  readonly receiveTombstones?: (
    from: NodeId,
    tombstones: readonly Tombstone[],
    cursor: TombstoneCursor | undefined,
  ) => Promise<CatchUpCursor | undefined>;
}

/** Per sending node, how far its stored changes are stored here too. */
export interface CatchUpCursors {
  get(nodeId: NodeId): Promise<CatchUpCursor | undefined>;
  put(nodeId: NodeId, cursor: CatchUpCursor): Promise<void>;
}

export const createNodeRequests =
  (options: NodeRequestsOptions) =>
  async (from: NodeId, request: RpcRequest): Promise<RpcReply> => {
    switch (request.type) {
      case 'invoke': {
        if (!options.runOwnerCall)
          throw new StateweaveError('NOT_FOUND', 'this node runs no functions');
        const { type: _, ...call } = request;
        return { type: 'invoked', ...(await options.runOwnerCall(from, call)) };
      }
      case 'diff': {
        const lease = await options.hub.open(validateDocName(request.doc));
        try {
          return { type: 'diff', update: lease.room.diffSince(request.stateVector) };
        } finally {
          lease.release();
        }
      }
      case 'state-vector': {
        const doc = validateDocName(request.doc);
        const stateVector = await options.hub.withRoom(doc, (room) =>
          Y.encodeStateVector(room.doc),
        );
        return { type: 'state-vector', stateVector };
      }
      case 'apply': {
        const doc = validateDocName(request.doc);
        // Answered once stored: the sender may then record the change as delivered.
        await options.hub.withRoom(doc, async (room) => {
          if (!room.containsUpdate(request.update))
            await room.applyUpdate(request.update, { kind: 'peer', nodeId: from });
        });
        return { type: 'done' };
      }
      case 'catch-up-cursor':
        return { type: 'cursor', cursor: await options.cursors?.get(from) };
      case 'catch-up-done': {
        if (!options.cursors) throw new StateweaveError('NOT_FOUND', 'this node keeps no cursors');
        await options.cursors.put(from, request.cursor);
        return { type: 'done' };
      }
      case 'tombstones': {
        if (!options.receiveTombstones)
          throw new StateweaveError('NOT_FOUND', 'this node keeps no tombstones');
        const cursor = await options.receiveTombstones(from, request.tombstones, request.cursor);
        return { type: 'cursor', cursor };
      }
      case 'deployment-meta':
      case 'deployment-code':
      case 'deployment-push': {
        if (!options.answerRegistry)
          throw new StateweaveError('NOT_FOUND', 'this node keeps no registry with its peers');
        return { type: 'deployment', json: await options.answerRegistry(from, request) };
      }
      default:
        return assertNever(request, 'rpc request');
    }
  };
