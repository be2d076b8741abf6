import type { ProviderDocument, ProviderOperation } from '../types/provider.generated.js';

/** A provider definition as loaded, with where it came from. */
export interface LoadedProvider {
  readonly name: string;
  readonly document: ProviderDocument;
  /**
   * Where the definition was read (the manifest layer's parsed document); absent for bundled
   * providers loaded from the build's catalogue snapshot.
   */
  readonly source?: { readonly file: string };
  /** `bundled` for the catalogue shipped with Patchbay, `user` for the user's own. */
  readonly origin: 'bundled' | 'user';
}

/**
 * The providers an engine knows, by name. A value, not a singleton: each validation run or
 * daemon builds its own, so tests can use isolated catalogues.
 */
export class ProviderRegistry {
  private readonly byName = new Map<string, LoadedProvider>();

  /** Adds or replaces a provider (a user's definition replaces a bundled one of the same name). */
  set(provider: LoadedProvider): void {
    this.byName.set(provider.name, provider);
  }

  get(name: string): LoadedProvider | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  values(): LoadedProvider[] {
    return [...this.byName.values()];
  }

  /** The operation `name` of provider `provider`, or undefined. */
  operation(provider: string, name: string): ProviderOperation | undefined {
    const operations = this.byName.get(provider)?.document.spec.operations ?? {};
    return Object.hasOwn(operations, name) ? operations[name] : undefined;
  }
}

/**
 * Splits `slack.chat.postMessage` into provider `slack` and operation `chat.postMessage`.
 * Provider names contain no dots, so the first dot separates them.
 */
export function splitCall(call: string): { provider: string; operation: string } {
  const dot = call.indexOf('.');
  if (dot < 0) return { provider: call, operation: '' };
  return { provider: call.slice(0, dot), operation: call.slice(dot + 1) };
}
