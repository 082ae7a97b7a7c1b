/**
 * Static files (`--static DIR`) that never leave DIR. express.static resolves
 * `..` but follows symlinks, so a link inside DIR (planted, or left by a build)
 * would serve any file the node can read. Each request's target, and a
 * directory's index.html, is resolved with realpath first; what lands outside
 * DIR's own real path is not served (404, as for a missing file).
 */
import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import express, { type RequestHandler } from 'express';

const INDEX = 'index.html';

/** The real path of `path`, or undefined when it does not exist (express.static then answers). */
const real = async (path: string): Promise<string | undefined> => {
  try {
    return await realpath(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
};

export const serveStaticFiles = (dir: string): RequestHandler => {
  const files = express.static(dir, { index: INDEX, fallthrough: true });
  const root = realpath(dir);
  const inside = (rootReal: string, path: string): boolean =>
    path === rootReal || path.startsWith(rootReal.endsWith(sep) ? rootReal : rootReal + sep);
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    let relative: string;
    try {
      relative = decodeURIComponent(req.path);
    } catch {
      return next(); // not valid percent-encoding: express.static refuses it
    }
    if (relative.includes('\0')) return next();
    void (async () => {
      const rootReal = await root;
      let target = await real(join(rootReal, relative));
      if (target !== undefined && (await stat(target)).isDirectory())
        target = (await real(join(target, INDEX))) ?? target;
      // Outside DIR: skip to the routes after it, which answer 404.
      if (target !== undefined && !inside(rootReal, target)) return next();
      files(req, res, next);
    })().catch(next);
  };
};
