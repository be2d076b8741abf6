import type { MemoryLogger } from '../../engine/lib/log.js';

/**
 * Collects every secret a test file makes and every text it produces (error messages, stacks and
 * causes, log lines, anything else that could reach a person), and checks at the end that no
 * text holds a secret: raw, URL-encoded, form-encoded, or inside base64 / base64url (at any byte
 * alignment, so `base64("user:" + secret)` is caught too). Typical use:
 *
 *   const scan = new SecretScan();
 *   afterAll(() => scan.assertClean());
 *   const key = scan.secret(randomBytes(24).toString('hex'));
 *   const error = await scan.rejects(signer.sign(request));
 *   scan.logger(logger);
 *
 * Failures name the text's label and the secret's index, never the secret.
 */
export class SecretScan {
  private readonly secrets: string[] = [];
  private readonly texts: { label: string; text: string }[] = [];
  private readonly loggers: MemoryLogger[] = [];

  /** Registers a secret (ignored when shorter than 8 characters: too likely to match by chance) and returns it. */
  secret(value: string): string {
    if (value.length >= 8 && !this.secrets.includes(value)) this.secrets.push(value);
    return value;
  }

  /** Registers text produced during the test. */
  text(label: string, text: string): void {
    this.texts.push({ label, text });
  }

  /** Registers an error: its message, stack, code and every cause in its chain. */
  error(label: string, error: unknown): void {
    let current: unknown = error;
    for (let depth = 0; current !== undefined && current !== null && depth < 10; depth += 1) {
      if (current instanceof Error) {
        this.text(`${label} (cause depth ${depth})`, `${current.name}: ${current.message}\n${current.stack ?? ''}\n${JSON.stringify(current)}`);
        current = current.cause;
      } else {
        this.text(`${label} (cause depth ${depth})`, typeof current === 'string' ? current : JSON.stringify(current) ?? String(current));
        break;
      }
    }
  }

  /** Awaits a promise that must reject, registers the error and returns it. */
  async rejects(promise: Promise<unknown>, label = 'rejection'): Promise<Error> {
    try {
      await promise;
    } catch (error) {
      this.error(label, error);
      return error as Error;
    }
    throw new Error(`${label}: expected a rejection, the promise fulfilled`);
  }

  /** Registers a logger whose lines are read when `assertClean` runs. */
  logger(logger: MemoryLogger): MemoryLogger {
    this.loggers.push(logger);
    return logger;
  }

  /** Every form of every secret that must not appear. */
  private forms(): { index: number; form: string; kind: string }[] {
    const out: { index: number; form: string; kind: string }[] = [];
    this.secrets.forEach((secret, index) => {
      out.push({ index, form: secret, kind: 'raw' });
      out.push({ index, form: encodeURIComponent(secret), kind: 'URL-encoded' });
      out.push({ index, form: new URLSearchParams({ x: secret }).toString().slice(2), kind: 'form-encoded' });
      const bytes = Buffer.from(secret, 'utf8');
      for (let shift = 0; shift < 3; shift += 1) {
        const padded = Buffer.concat([Buffer.alloc(shift), bytes]);
        for (const encoding of ['base64', 'base64url'] as const) {
          const encoded = padded.toString(encoding).replace(/=+$/, '');
          // The first 4 characters may mix in whatever precedes the secret, the last 4 whatever
          // follows it; the middle is the same wherever the secret sits.
          const middle = encoded.slice(shift === 0 ? 0 : 4, -4);
          if (middle.length >= 8) out.push({ index, form: middle, kind: `${encoding} (alignment ${shift})` });
        }
      }
    });
    return out;
  }

  /** Throws when any registered text holds any form of any registered secret. */
  assertClean(): void {
    const texts = [...this.texts, ...this.loggers.map((logger, i) => ({ label: `logger ${i}`, text: logger.text() }))];
    const forms = this.forms();
    const leaks: string[] = [];
    for (const { label, text } of texts) {
      for (const { index, form, kind } of forms) {
        if (text.includes(form)) leaks.push(`${label}: secret #${index} (${kind})`);
      }
    }
    if (leaks.length > 0) throw new Error(`secrets leaked into texts:\n${[...new Set(leaks)].join('\n')}`);
  }

  /** How many secrets and texts were registered (to assert the scan is not vacuous). */
  counts(): { secrets: number; texts: number } {
    return { secrets: this.secrets.length, texts: this.texts.length + this.loggers.length };
  }
}
