// The one way the app talks to the gateway: typed by the generated `paths`
// (from /api/openapi.json), the token added to every call, and every error
// turned into an ApiError that carries the server's code, message and fields.
import createClient, { type Middleware } from 'openapi-fetch'
import type { components, paths } from './schema'

export type Schemas = components['schemas']

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string> = {},
    readonly body: Record<string, unknown> = {},
  ) {
    super(message)
  }
}

let token: string | null = null
let onUnauthorized: ((code: string) => void) | null = null

export function setToken(value: string | null) {
  token = value
}

export function getToken(): string | null {
  return token
}

/** Called when the server refuses the token (expired, revoked, signed by
 * another secret): the app goes back to the login page with a message. */
export function handleUnauthorized(handler: (code: string) => void) {
  onUnauthorized = handler
}

const auth: Middleware = {
  onRequest({ request }) {
    if (token) request.headers.set('Authorization', `Bearer ${token}`)
    return request
  },
}

export const api = createClient<paths>({ baseUrl: '' })
api.use(auth)

/** The parsed JSON of a failed call as an ApiError. A network failure or a
 * non-JSON answer (a proxy's 502 page) becomes code `network` / `http_<status>`. */
export async function toApiError(response: Response, body?: unknown): Promise<ApiError> {
  let data = body as Record<string, unknown> | undefined
  if (data === undefined) {
    try {
      data = (await response.clone().json()) as Record<string, unknown>
    } catch {
      data = undefined
    }
  }
  if (data && typeof data === 'object' && typeof data.error === 'string') {
    return new ApiError(
      response.status,
      data.error,
      String(data.message ?? data.error),
      (data.fields as Record<string, string>) ?? {},
      data,
    )
  }
  return new ApiError(response.status, `http_${response.status}`, response.statusText || 'error')
}

type Result<T> = { data?: T; error?: unknown; response: Response }

/** Await an openapi-fetch call and return its data, or throw an ApiError. */
export async function call<T>(pending: Promise<Result<T>>): Promise<T> {
  let result: Result<T>
  try {
    result = await pending
  } catch (exc) {
    if (exc instanceof DOMException && exc.name === 'AbortError') throw exc
    throw new ApiError(0, 'network', 'the server cannot be reached')
  }
  if (result.response.ok) return result.data as T
  const error = await toApiError(result.response, result.error)
  const isLogin = new URL(result.response.url, location.href).pathname === '/api/auth/login'
  if (error.status === 401 && !isLogin && onUnauthorized) onUnauthorized(error.code)
  throw error
}
