/** A non-2xx answer of the API: its status and one-line message (naming the field for 400s). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    /** The field at fault (400), e.g. `options.window` or `q`. */
    readonly field?: string,
  ) {
    super(message);
  }
}

/** Throws ApiError for a response that is not ok, with the body's message when it has one. */
export async function ensureOk(response: Response): Promise<Response> {
  if (response.ok) return response;
  const text = await response.text();
  let body: { message?: string; field?: string } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {}
  throw new ApiError(response.status, body.message ?? (text.split('\n')[0] || response.statusText), body.field);
}
