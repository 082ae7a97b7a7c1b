import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout; `level` from the CLI, `silent` in tests. */
export const createLogger = (level: string = 'info'): Logger =>
  pino({ level, base: { service: 'stateweave' } });
