/** A small JSON client for end-to-end tests: status, parsed body and headers of each answer. */
export interface ApiAnswer<T = Record<string, unknown>> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

export interface ApiRequest {
  readonly body?: unknown;
  /** Sent as is, for malformed or oversized bodies. */
  readonly raw?: string;
  readonly token?: string;
  readonly headers?: Record<string, string>;
}

export function apiClient(baseUrl: () => string) {
  return async function api<T = Record<string, unknown>>(method: string, path: string, req: ApiRequest = {}): Promise<ApiAnswer<T>> {
    const headers: Record<string, string> = { ...req.headers };
    if (req.token !== undefined) headers.authorization = `Bearer ${req.token}`;
    let body: string | undefined;
    if (req.raw !== undefined || req.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = req.raw ?? JSON.stringify(req.body);
    }
    const res = await fetch(new URL(path, baseUrl()), { method, headers, body });
    const text = await res.text();
    return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as T, headers: res.headers };
  };
}

/** The error code of an error answer. */
export function codeOf(answer: ApiAnswer): string | undefined {
  return (answer.body as { error?: { code?: string } }).error?.code;
}
