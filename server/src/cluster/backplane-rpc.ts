/**
 * Request/response to a named node over a backplane's directed messages
 * (`send` / `direct`), for any adapter: each request gets an id, the answer
 * (or the remote error, with its code) settles it, and it fails with
 * PRIMARY_UNREACHABLE when the node is not a live member, when the request
 * cannot leave, when the node goes away before answering, or after the timeout.
 * Whether a request that failed that way ran on the other node is unknown: the
 * caller retries with its idempotency key.
 */
import { assertNever } from '../assert-never.js';
import { ProtocolError } from '@stateweave/client/protocol';
import { ERRORS, StateweaveError, toStateweaveError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { NodeId } from '../node-id.js';
import type { Backplane } from './backplane.js';
import { decodeRpcFrame, encodeRpcFrame, type RpcReply, type RpcRequest } from './rpc-codec.js';

/** What request/response needs of a medium: directed frames to live nodes (a backplane, or the mesh's peer links). */
export type DirectedLink = Pick<Backplane, 'send' | 'isLive'>;

export interface BackplaneRpcOptions {
  readonly backplane: DirectedLink;
  /** Answers a request from `from`; a rejection goes back as its error code. */
  readonly serve: (from: NodeId, request: RpcRequest) => Promise<RpcReply>;
  readonly logger: Logger;
  /** @default 30000 */
  readonly timeoutMs?: number;
}

export interface BackplaneRpc {
  /** Sends `request` to `to` and resolves with its reply (see the module comment for failures). */
  request(to: NodeId, request: RpcRequest, timeoutMs?: number): Promise<RpcReply>;
  /** A directed frame for which isRpcFrame is true. */
  onFrame(from: NodeId, frame: Uint8Array): void;
  /** Fails the requests waiting for `nodeId` at once. */
  onMemberDown(nodeId: NodeId): void;
  /** Requests waiting for an answer. */
  readonly pending: number;
  close(): void;
}

interface Waiting {
  readonly to: NodeId;
  readonly resolve: (reply: RpcReply) => void;
  readonly reject: (err: StateweaveError) => void;
  readonly timer: NodeJS.Timeout;
}

const isCode = (code: string): code is ErrorCode => Object.hasOwn(ERRORS, code);

export const createBackplaneRpc = (options: BackplaneRpcOptions): BackplaneRpc => {
  const { backplane, logger } = options;
  const waiting = new Map<number, Waiting>();
  let nextId = 1;
  let closed = false;

  const unreachable = (to: NodeId, why: string): StateweaveError =>
    new StateweaveError('PRIMARY_UNREACHABLE', `node ${to} ${why}`);

  const settle = (id: number): Waiting | undefined => {
    const entry = waiting.get(id);
    if (!entry) return undefined; // answered after its timeout
    waiting.delete(id);
    clearTimeout(entry.timer);
    return entry;
  };

  const answer = (from: NodeId, id: number, request: RpcRequest): void => {
    options.serve(from, request).then(
      (reply) => backplane.send(from, encodeRpcFrame({ kind: 'reply', id, reply })),
      (err: unknown) => {
        const error = toStateweaveError(err);
        if (error.code === 'INTERNAL') logger.error({ err, from }, 'rpc request failed');
        backplane.send(
          from,
          encodeRpcFrame({ kind: 'error', id, code: error.code, message: error.message }),
        );
      },
    );
  };

  return {
    request(to, request, timeoutMs = options.timeoutMs ?? 30_000) {
      if (closed) return Promise.reject(new StateweaveError('SHUTTING_DOWN'));
      if (!backplane.isLive(to))
        return Promise.reject(unreachable(to, 'is not a live member of the cluster'));
      const id = nextId++;
      return new Promise<RpcReply>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (settle(id)) reject(unreachable(to, `did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(id, { to, resolve, reject, timer });
        if (!backplane.send(to, encodeRpcFrame({ kind: 'request', id, request }))) {
          settle(id);
          reject(unreachable(to, 'cannot be reached: the backplane is down'));
        }
      });
    },

    onFrame(from, bytes) {
      if (closed) return;
      let frame;
      try {
        frame = decodeRpcFrame(bytes);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        logger.warn({ peer: from, reason: err.message }, 'rpc frame refused');
        return;
      }
      switch (frame.kind) {
        case 'request':
          return answer(from, frame.id, frame.request);
        case 'reply': {
          if (waiting.get(frame.id)?.to !== from) return; // late, or not from whom we asked
          settle(frame.id)!.resolve(frame.reply);
          return;
        }
        case 'error': {
          if (waiting.get(frame.id)?.to !== from) return;
          const entry = settle(frame.id)!;
          entry.reject(
            isCode(frame.code)
              ? new StateweaveError(frame.code, frame.message)
              : new StateweaveError('INTERNAL', `node ${from}: ${frame.message}`),
          );
          return;
        }
        default:
          return assertNever(frame, 'rpc frame');
      }
    },

    onMemberDown(nodeId) {
      for (const [id, entry] of waiting)
        if (entry.to === nodeId && settle(id))
          entry.reject(unreachable(nodeId, 'left the cluster before answering'));
    },

    get pending() {
      return waiting.size;
    },

    close() {
      closed = true;
      for (const [id, entry] of waiting)
        if (settle(id)) entry.reject(new StateweaveError('SHUTTING_DOWN'));
    },
  };
};
