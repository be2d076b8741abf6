// Types of spec-match.mjs (hand-written: the module is plain JavaScript so that
// scripts/check-input-coverage.mjs can import it under plain node). Keep the two in step.

/** A server entry of an OpenAPI 3 description or path item. */
export interface SpecServer {
  readonly url: string;
}

/** What the matcher reads of a description: Swagger 2 `basePath`, OpenAPI 3 `servers`, `paths`. */
export interface MatchableSpec {
  readonly swagger?: string;
  readonly basePath?: string;
  readonly servers?: readonly SpecServer[];
  readonly paths: Readonly<Record<string, object>>;
}

/** What the matcher reads of a path item: its own `servers`, and its methods as keys. */
export interface MatchablePathItem {
  readonly servers?: readonly SpecServer[];
}

/** What the matcher reads of a provider document. */
export interface MatchableProvider {
  readonly spec: { readonly baseUrl?: string };
}

/** What the matcher reads of one catalogue operation. */
export interface MatchableOperation {
  readonly method?: string;
  readonly baseUrl?: string;
  readonly path?: string;
}

/** A description path serving an operation. */
export interface SpecMatch<Spec> {
  /** The description file, as given in `specs`. */
  readonly file: string;
  readonly spec: Spec;
  /** The key in `spec.paths`. */
  readonly pathKey: string;
  /** The operation's method, lower case (`post` when it names none). */
  readonly method: string;
  /** The description's server path removed from the full path (`''` when none). */
  readonly prefix: string;
  /** The path of the operation's base URL (its own, else the provider's). */
  readonly base: string;
}

/** `{anything}` and `{anything+}` → `{}`, so templates compare by shape. */
export declare function shape(path: string): string;

/** The path of a base URL template, placeholders kept, no trailing `/`; `''` for `undefined`. */
export declare function basePath(template: string | undefined): string;

/** The server paths a description serves `item` under (Swagger 2 `basePath`, else `servers`); `['']` when none. */
export declare function serverPaths(spec: Omit<MatchableSpec, 'paths'>, item: MatchablePathItem): string[];

/** The first description path serving `operation` by method and full path shape, or `undefined`. */
export declare function findSpecPath<Spec extends MatchableSpec>(
  provider: MatchableProvider,
  operation: MatchableOperation,
  specs: readonly { readonly file: string; readonly spec: Spec }[],
): SpecMatch<Spec> | undefined;
