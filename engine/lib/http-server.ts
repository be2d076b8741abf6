import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * What the daemon's request handlers (webhook ingress, admin API, sandbox) share: reading a body
 * under a size limit, and answering JSON.
 */

/** How reading a request body ended. */
export type BodyRead =
  | { readonly kind: 'body'; readonly body: Buffer }
  /** Over the limit: reading stopped, nothing more is buffered, and the answer must close the connection. */
  | { readonly kind: 'tooLarge' }
  /** The connection failed or the sender hung up before the body was complete. */
  | { readonly kind: 'aborted'; readonly cause?: Error | undefined };

/**
 * Reads `req`'s body up to `maxBytes`. A declared `Content-Length` over the limit is refused
 * before anything is read. Past the limit the stream is paused, not destroyed, so the caller can
 * still answer 413; it sets `Connection: close` on `res` so the rest is never read. Never rejects.
 */
export function readBodyWithin(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<BodyRead> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.setHeader('connection', 'close');
    return Promise.resolve({ kind: 'tooLarge' });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: BodyRead): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        req.pause();
        res.setHeader('connection', 'close');
        finish({ kind: 'tooLarge' });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => finish({ kind: 'body', body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size) });
    const onError = (error: Error): void => finish({ kind: 'aborted', cause: error });
    const onAborted = (): void => finish({ kind: 'aborted' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/** Answers `value` as JSON with its length, never cached, never sniffed as another type. */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(text);
}
