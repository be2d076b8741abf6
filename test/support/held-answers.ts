/**
 * A test server's answers, held back on demand so a test can see how many requests a client
 * keeps open at once (a bound on fetches in flight, a queue behind it).
 */
export class HeldAnswers {
  /** While true, answers wait for `release()`. */
  holding = false;
  /** Requests not answered yet. */
  open = 0;
  /** The most requests open at once since the last `reset()`. */
  maxOpen = 0;
  private readonly held: (() => void)[] = [];

  /** Counts a request as open and runs `answer` now, or at `release()` while holding. */
  answer(answer: () => void): void {
    this.open += 1;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    const respond = (): void => {
      this.open -= 1;
      answer();
    };
    if (this.holding) this.held.push(respond);
    else respond();
  }

  /** Stops holding and sends every held answer. */
  release(): void {
    this.holding = false;
    for (const respond of this.held.splice(0)) respond();
  }

  /** Releases and forgets the high-water mark (between tests). */
  reset(): void {
    this.release();
    this.maxOpen = 0;
  }
}

/** Waits (at most `timeoutMs`) until `condition` holds; rejects otherwise. */
export async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
