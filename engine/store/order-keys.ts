import type { OrderKeyAssignment } from './state-store.js';

/** A run whose ordering key is still pending, as a store reads it under its lock. */
export interface PendingRun {
  readonly id: string;
  readonly seq: number;
  readonly integration: string;
}

/** An assignment that may be applied now, with where its run sits. */
export interface ApplicableAssignment {
  readonly runId: string;
  readonly seq: number;
  readonly integration: string;
  readonly orderKey: string | null;
}

/**
 * The part of `assignments` that `StateStore.assignOrderKeys` may apply now, in `seq` order:
 * walking each integration's pending runs oldest first, an assignment is applicable while every
 * earlier pending run of its integration has one too; the first pending run without one stops its
 * integration (the later ones are postponed). `pending` must hold, in ascending `seq`, every run
 * still pending of the integrations concerned, at least up to the highest `seq` assigned, read
 * under the lock that keeps it from changing. Shared by both SQL stores so they cannot differ.
 */
export function applicableAssignments(pending: readonly PendingRun[], assignments: readonly OrderKeyAssignment[]): ApplicableAssignment[] {
  const wanted = new Map<string, string | null>();
  for (const assignment of assignments) wanted.set(assignment.runId, assignment.orderKey ?? null);
  const stopped = new Set<string>();
  const applicable: ApplicableAssignment[] = [];
  for (const run of pending) {
    if (stopped.has(run.integration)) continue;
    if (!wanted.has(run.id)) {
      stopped.add(run.integration);
      continue;
    }
    applicable.push({ runId: run.id, seq: run.seq, integration: run.integration, orderKey: wanted.get(run.id)! });
  }
  return applicable;
}
