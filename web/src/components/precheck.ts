// The duplicate pre-check behind the new-customer form (the brief's "green
// tick"): as the rep types, the server is asked whether the company is
// already someone's. Only the answer to the latest input counts: a slow
// answer about what was typed before never overwrites a newer verdict.
import type { ApiError, Schemas } from '../api/client'

export type Match = Schemas['Match']
export type CheckFields = {
  company_name?: string
  phones?: string[]
  credit_code?: string
  emails?: string[]
}

export type Verdict =
  | { state: 'idle' }
  | { state: 'checking' }
  | { state: 'available'; similar: Match[] }
  | { state: 'taken'; matches: Match[]; similar: Match[] }
  | { state: 'failed'; error: ApiError }

export type CheckFn = (fields: CheckFields, signal: AbortSignal) => Promise<Schemas['CheckOut']>

export interface PrecheckOptions {
  check: CheckFn
  onChange: (verdict: Verdict) => void
  /** milliseconds of quiet typing before the server is asked */
  delay?: number
}

/** Only what is worth asking about: trimmed, non-empty. */
export function cleanFields(fields: CheckFields): CheckFields {
  const out: CheckFields = {}
  const name = fields.company_name?.trim()
  if (name) out.company_name = name
  const phones = (fields.phones ?? []).map((p) => p.trim()).filter(Boolean)
  if (phones.length) out.phones = phones
  const code = fields.credit_code?.trim()
  if (code) out.credit_code = code
  const emails = (fields.emails ?? []).map((e) => e.trim()).filter(Boolean)
  if (emails.length) out.emails = emails
  return out
}

/** A field the server called invalid (a phone still being typed) is left out
 * of the question rather than turning the whole verdict into an error. */
function withoutInvalid(fields: CheckFields, invalid: Record<string, string>): CheckFields {
  const names = new Set(Object.keys(invalid).map((k) => k.split('.')[0]))
  const out: CheckFields = {}
  for (const [k, v] of Object.entries(fields)) {
    if (!names.has(k)) (out as Record<string, unknown>)[k] = v
  }
  return out
}

export class Precheck {
  private seq = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private inflight: AbortController | null = null
  private lastAsked = ''
  private verdict: Verdict = { state: 'idle' }

  constructor(private readonly opts: PrecheckOptions) {}

  get current(): Verdict {
    return this.verdict
  }

  private set(verdict: Verdict) {
    this.verdict = verdict
    this.opts.onChange(verdict)
  }

  /** The form changed: ask again once the typing pauses. */
  input(raw: CheckFields) {
    const fields = cleanFields(raw)
    const key = JSON.stringify(fields)
    if (key === this.lastAsked && this.verdict.state !== 'failed') return
    this.cancel()
    this.lastAsked = key
    if (!Object.keys(fields).length) {
      this.set({ state: 'idle' })
      return
    }
    this.set({ state: 'checking' })
    const seq = ++this.seq
    this.timer = setTimeout(() => {
      this.timer = null
      void this.ask(fields, seq)
    }, this.opts.delay ?? 200)
  }

  /** The save itself lost the race (409): show the winner as the check would. */
  refuse(matches: Match[]) {
    this.cancel()
    this.seq++
    const similar = this.verdict.state === 'available' || this.verdict.state === 'taken'
      ? this.verdict.similar
      : []
    this.set({ state: 'taken', matches, similar })
  }

  dispose() {
    this.cancel()
    this.seq++
  }

  private cancel() {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.inflight?.abort()
    this.inflight = null
  }

  private async ask(fields: CheckFields, seq: number): Promise<void> {
    const controller = new AbortController()
    this.inflight = controller
    try {
      const out = await this.opts.check(fields, controller.signal)
      if (seq !== this.seq) return
      this.set(out.matches.length
        ? { state: 'taken', matches: out.matches, similar: out.similar }
        : { state: 'available', similar: out.similar })
    } catch (exc) {
      if (seq !== this.seq) return
      const error = exc as ApiError
      if (error?.name === 'AbortError') return
      if (error?.status === 422 && Object.keys(error.fields ?? {}).length) {
        const rest = withoutInvalid(fields, error.fields)
        if (Object.keys(rest).length && Object.keys(rest).length < Object.keys(fields).length) {
          return this.ask(rest, seq)
        }
        this.set({ state: 'idle' })
        return
      }
      this.set({ state: 'failed', error })
    } finally {
      if (this.inflight === controller) this.inflight = null
    }
  }
}
