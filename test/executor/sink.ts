import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the sink received. */
export interface Delivery {
  readonly method: string;
  readonly path: string;
  readonly key: string | undefined;
  readonly authorization: string | undefined;
  readonly body: string;
  /** `Date.now()` when the request's body had arrived. */
  readonly at: number;
}

/** What a scripted handler may answer instead of the default; `undefined` lets the sink apply the request. */
export type Scripted =
  | { readonly status: number; readonly headers?: Record<string, string>; readonly body?: string }
  | { readonly reset: true }
  | { readonly stallMs: number }
  /** Apply the request as usual, but answer only after this long. */
  | { readonly delayMs: number }
  | undefined;

/**
 * A provider on 127.0.0.1 that honours idempotency keys the way Stripe does: the first request
 * with a key is applied and its answer remembered; a later request with the same key gets the
 * remembered answer and is not applied again. It counts every raw delivery and every
 * application, so a test can tell "each key applied exactly once" from "each request sent once".
 */
export class Sink {
  readonly deliveries: Delivery[] = [];
  /** Applications per idempotency key (or per `method path body` for requests without one). */
  readonly applied = new Map<string, number>();
  private readonly answers = new Map<string, string>();
  private serverOrigin = '';
  private readonly server = createServer((req, res) => this.handle(req, res));
  private counter = 0;

  constructor(private readonly script: (delivery: Delivery, index: number) => Scripted | Promise<Scripted> = () => undefined) {}

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.serverOrigin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  get origin(): string {
    return this.serverOrigin;
  }

  get port(): number {
    return Number(new URL(this.serverOrigin).port);
  }

  /** Deliveries that carried the same key as an earlier one (retries after lost answers or crashes). */
  get redeliveries(): number {
    return this.deliveries.length - new Set(this.deliveries.map((delivery) => delivery.key ?? `${delivery.path} ${delivery.body}`)).size;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const header = req.headers['idempotency-key'];
      const delivery: Delivery = {
        method: req.method ?? '',
        path: req.url ?? '',
        key: typeof header === 'string' ? header : undefined,
        authorization: req.headers.authorization,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      const index = this.deliveries.push(delivery) - 1;
      void Promise.resolve(this.script(delivery, index)).then((scripted) => this.answer(req, res, delivery, scripted));
    });
  }

  private answer(req: IncomingMessage, res: ServerResponse, delivery: Delivery, scripted: Scripted): void {
    {
      if (scripted !== undefined && 'delayMs' in scripted) {
        setTimeout(() => this.answer(req, res, delivery, undefined), scripted.delayMs);
        return;
      }
      if (scripted !== undefined) {
        if ('reset' in scripted) {
          req.socket.destroy();
          return;
        }
        if ('stallMs' in scripted) {
          const timer = setTimeout(() => res.destroy(), scripted.stallMs);
          res.on('close', () => clearTimeout(timer));
          return;
        }
        res.writeHead(scripted.status, { 'content-type': 'application/json', ...scripted.headers });
        res.end(scripted.body ?? '{}');
        return;
      }
      const identity = delivery.key ?? `${delivery.method} ${delivery.path} ${delivery.body}`;
      let answer = this.answers.get(identity);
      if (answer === undefined) {
        this.counter += 1;
        answer = JSON.stringify({ id: `obj_${this.counter}`, path: delivery.path });
        this.answers.set(identity, answer);
        this.applied.set(identity, (this.applied.get(identity) ?? 0) + 1);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(answer);
    }
  }
}
