/**
 * The request the engine sends, after the provider operation's inputs are mapped into it and
 * before or after an auth signer has added credentials. Signers return a new value; they never
 * mutate their argument, so a retry can re-sign the unsigned request.
 */
export const httpMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'] as const;
export type HttpMethod = (typeof httpMethods)[number];

export interface OutboundRequest {
  readonly method: HttpMethod;
  readonly url: URL;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  /** The encoded body; absent for no body. */
  readonly body?: Uint8Array | string;
}

/** A parsed response, as the client hands it back. */
export interface InboundResponse {
  readonly status: number;
  /** Header names in lower case; repeated headers joined with `, ` (set-cookie dropped). */
  readonly headers: Readonly<Record<string, string>>;
  /** The (decompressed) body bytes. */
  readonly body: Uint8Array;
  /** The URL finally answered, after any followed redirect. */
  readonly url: URL;
  /** Milliseconds from sending to the end of the body. */
  readonly durationMs: number;
}
