import type { SubmittedEvent } from '../executor/executor.js';
import { PatchbayError } from '../diag/errors.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { evaluateMapping, type CompiledMapping, type MappingLimits } from '../mapping/evaluate.js';
import type { ProviderConnection } from '../providers/connection.js';
import { readPath } from '../providers/paths.js';
import type { AcceptedEvent } from '../store/state-store.js';
import type { PollTrigger } from '../types/integration.generated.js';
import { compareCursorValues, isCursorValue, serializeTriggerState, type TriggerState } from './trigger-state.js';

/**
 * One poll of a listing operation: list from the stored cursor, follow the pages, submit one
 * event per item (its id is the event key, so an item seen twice runs once), and after each page
 * is committed, persist how far the listing got. The order — events first, then the cursor — is
 * what makes a crash safe: a page whose events were accepted but whose cursor was not saved is
 * listed again and deduplicated; a cursor never moves past items that were not accepted.
 *
 * The cursor stays at the listing's starting value until the listing finishes, with the greatest
 * value seen and the next page's position saved beside it; only a finished listing moves it. That
 * holds for listings in any order: a newest-first listing interrupted after page 1 must not skip
 * the older items of page 2 on the next poll.
 */

/** What a poller needs to know about its integration. */
export interface PollTarget {
  readonly integration: string;
  readonly trigger: PollTrigger;
  readonly connection: ProviderConnection;
  /** `trigger.with`, compiled; evaluated over `{ vars }` at every poll. */
  readonly inputs: CompiledMapping;
  readonly vars: Readonly<Record<string, unknown>>;
}

export interface PollOptions {
  readonly target: PollTarget;
  /** The stored state at the start of the poll (see `TriggerState`). */
  readonly state: TriggerState;
  /** The tick this poll is for (ms). */
  readonly tickMs: number;
  /**
   * Persists the trigger's state (the store's `setCursor` for this integration, and whatever the
   * caller must check first: the scheduler renews its lease there). Called after each page's
   * events are committed.
   */
  readonly saveState: (state: string, now: number) => Promise<void>;
  readonly submit: (events: readonly SubmittedEvent[]) => Promise<readonly AcceptedEvent[]>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Aborts the request in flight (shutdown). */
  readonly signal?: AbortSignal;
  /** Pages read at most in one poll; the next poll resumes after them. @default 100 */
  readonly maxPages?: number;
  readonly mappingLimits?: MappingLimits;
}

/** What one poll did. */
export interface PollOutcome {
  readonly pages: number;
  /** Items listed. */
  readonly items: number;
  /** Events accepted (new runs). */
  readonly accepted: number;
  /** Items whose id had been accepted before. */
  readonly duplicates: number;
  /** Items skipped because their cursor field is older than the cursor. */
  readonly older: number;
  /** Items skipped because they have no usable id. */
  readonly withoutId: number;
  /** True when the listing reached its last page. */
  readonly finished: boolean;
  /** The state as last persisted. */
  readonly state: TriggerState;
  /** Why the poll stopped early; the state then is what the pages before the failure saved. */
  readonly error: PatchbayError | undefined;
}

/**
 * Runs one poll (see the module comment). Never rejects: a failure (the provider's or network's
 * PB_HTTP_* / PB_PROVIDER_* errors, PB_POLL_NOT_A_LIST, mapping errors, the store's errors) is
 * returned in `error` with what the pages before it achieved. A resumed listing whose saved page
 * position the provider now refuses (a 4xx, an expired cursor) drops that position, so the next
 * poll lists again from the cursor instead of failing forever.
 */
export async function pollListing(options: PollOptions): Promise<PollOutcome> {
  const { target, saveState, clock, logger } = options;
  const { trigger } = target;
  const cursor = trigger.cursor;
  let state = options.state;
  const counts = { pages: 0, items: 0, accepted: 0, duplicates: 0, older: 0, withoutId: 0 };
  const resumed = state.page !== undefined;
  const outcome = (finished: boolean, error: PatchbayError | undefined): PollOutcome => ({ ...counts, finished, state, error });
  try {
    const evaluated = await evaluateMapping(target.inputs, { vars: target.vars }, options.mappingLimits);
    if (evaluated === null || typeof evaluated !== 'object' || Array.isArray(evaluated)) {
      throw new PatchbayError('PB_MAPPING_ERROR', 'spec.trigger.poll.with did not evaluate to an object');
    }
    const first: Record<string, unknown> = { ...(evaluated as Record<string, unknown>) };
    if (cursor !== undefined && state.value !== undefined) first[cursor.param] = state.value;
    const base = state.value;
    let high = resumed ? state.high : undefined;
    const start = resumed ? { ...first, ...state.page } : first;
    let warnedWithoutId = false;
    for await (const page of target.connection.pages(trigger.operation, start, { maxPages: options.maxPages ?? 100, signal: options.signal })) {
      if (page.items === undefined) {
        throw new PatchbayError('PB_POLL_NOT_A_LIST', `${target.connection.provider.name}.${trigger.operation} answered without a list of items where its pagination says; nothing was submitted`);
      }
      counts.pages += 1;
      const events: SubmittedEvent[] = [];
      const seen = new Set<string>();
      for (const item of page.items) {
        counts.items += 1;
        const id = readPath(item, trigger.itemId);
        if (!(typeof id === 'string' && id !== '') && !(typeof id === 'number' && Number.isFinite(id))) {
          counts.withoutId += 1;
          continue;
        }
        if (cursor !== undefined) {
          const value = readPath(item, cursor.field);
          if (isCursorValue(value)) {
            if (base !== undefined && (compareCursorValues(value, base) ?? 0) < 0) {
              counts.older += 1;
              continue;
            }
            if (high === undefined || (compareCursorValues(value, high) ?? 0) > 0) high = value;
          }
        }
        const key = String(id);
        if (seen.has(key)) continue;
        seen.add(key);
        events.push({ integration: target.integration, eventKey: key, source: 'poll', payload: item, receivedAt: clock.now() });
      }
      if (counts.withoutId > 0 && !warnedWithoutId) {
        warnedWithoutId = true;
        logger.log('warn', 'polled items without an id were skipped', { integration: target.integration, code: 'PB_POLL_ITEM_WITHOUT_ID', itemId: trigger.itemId });
      }
      if (events.length > 0) {
        const accepted = await options.submit(events);
        for (const result of accepted) {
          if (result.accepted) counts.accepted += 1;
          else counts.duplicates += 1;
        }
      }
      // Only now, with the page's events committed, may the state say the page is done.
      if (page.last) {
        const value = greatest(base, high);
        state = { lastTickMs: options.tickMs, value };
      } else {
        const position = page.nextInputs === undefined ? undefined : changedInputs(first, page.nextInputs);
        state = { lastTickMs: options.tickMs, value: base, high: position === undefined ? undefined : high, page: position };
      }
      await saveState(serializeTriggerState(state), clock.now());
      if (page.last) return outcome(true, undefined);
    }
    // The page limit stopped the listing; the saved position continues it at the next poll.
    return outcome(false, undefined);
  } catch (error) {
    const failure = error instanceof PatchbayError ? error : new PatchbayError('PB_POLL_FAILED', `poll failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    if (resumed && counts.pages === 0 && isRefusal(failure)) {
      // The saved page position is refused (an expired provider cursor): list from the cursor
      // again next time. Items already accepted are deduplicated by id.
      state = { lastTickMs: state.lastTickMs, value: state.value };
      try {
        await saveState(serializeTriggerState(state), clock.now());
        logger.log('warn', 'the saved page position of an unfinished listing was refused; the next poll lists again from the cursor', { integration: target.integration, code: failure.code });
      } catch (storeError) {
        // The position stays; the same refusal drops it at the next poll.
        logger.log('error', 'could not drop a refused page position', { integration: target.integration, error: storeError instanceof Error ? storeError.message : String(storeError) });
      }
    }
    return outcome(false, failure);
  }
}

function greatest(a: string | number | undefined, b: string | number | undefined): string | number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return (compareCursorValues(b, a) ?? 0) > 0 ? b : a;
}

/** The inputs of `next` that differ from the listing's first page: the page position alone. */
function changedInputs(first: Readonly<Record<string, unknown>>, next: Readonly<Record<string, unknown>>): Record<string, unknown> | undefined {
  const changed: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(next)) {
    if (JSON.stringify(value) !== JSON.stringify(first[key])) changed[key] = value;
  }
  return Object.keys(changed).length > 0 ? changed : undefined;
}

/** A terminal refusal of the request itself (4xx other than rate limits, a page that cannot be followed). */
function isRefusal(error: PatchbayError): boolean {
  return error.code === 'PB_HTTP_CLIENT_ERROR' || error.code === 'PB_PROVIDER_BAD_PAGE' || error.code === 'PB_CALL_BAD_INPUT';
}
