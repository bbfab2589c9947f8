// What the server says, in the user's language: an error code names the
// message (the server's own English text is the fallback for a code this
// catalogue does not know yet); a field's reason is matched to a phrase.
import { ApiError } from '../api/client'
import { i18n } from './index'

type T = (key: string, params?: Record<string, unknown>) => string

const t: T = (key, params) => i18n.global.t(key, params ?? {})
const has = (key: string) => i18n.global.te(key, 'zh-CN')

export function errorText(error: unknown): string {
  if (!(error instanceof ApiError)) return t('errors.internal_error')
  if (error.code === 'too_many_attempts' && error.body.retry_after_seconds) {
    const seconds = Number(error.body.retry_after_seconds)
    return seconds >= 120
      ? t('login.tooManyMinutes', { minutes: Math.ceil(seconds / 60) })
      : t('login.tooMany', { seconds })
  }
  if (error.code === 'read_limit') {
    const seconds = Number(error.body.retry_after_seconds) || 3600
    return t('errors.read_limit', { minutes: Math.ceil(seconds / 60) })
  }
  if (has(`errors.${error.code}`)) return t(`errors.${error.code}`)
  if (error.code.startsWith('http_')) {
    return error.status >= 500 ? t('errors.service_unavailable') : t('errors.http', { status: error.status })
  }
  return error.message
}

const REASONS: [RegExp, string, (m: RegExpMatchArray) => Record<string, unknown>][] = [
  [/^(field required|is required)$/i, 'required', () => ({})],
  [/at most (\d+) characters?/i, 'tooLong', (m) => ({ n: m[1] })],
  [/is longer than (\d+) characters/i, 'tooLong', (m) => ({ n: m[1] })],
  [/at least (\d+) characters?/i, 'tooShort', (m) => ({ n: m[1] })],
  [/not a complete phone number/i, 'incompletePhone', () => ({})],
  [/landline needs its area code/i, 'landline', () => ({})],
  [/not a (valid )?phone number/i, 'notPhone', () => ({})],
  [/not a day of the year|should match pattern '\^\[0-9\]\{2\}-/i, 'notDay', () => ({})],
  [/must be 18 characters/i, 'creditLength', () => ({})],
  [/contains invalid characters/i, 'creditChars', () => ({})],
  [/must be an area code/i, 'creditArea', () => ({})],
  [/check character does not match/i, 'creditCheck', () => ({})],
  [/not an e-mail address/i, 'notEmail', () => ({})],
  [/invalid domain/i, 'emailDomain', () => ({})],
  [/is in the past/i, 'inPast', () => ({})],
  [/no such customer/i, 'noCustomer', () => ({})],
  [/control characters/i, 'control', () => ({})],
  [/is too large/i, 'tooLarge', () => ({})],
  [/must not be negative|greater than or equal to 0/i, 'negative', () => ({})],
  [/more than 2 decimals/i, 'decimals', () => ({})],
  [/is not a number|must be a (finite )?number|valid number|valid integer/i, 'notNumber', () => ({})],
  [/unknown field/i, 'unknownField', () => ({})],
  [/is not in the stage list/i, 'notInStages', () => ({})],
  [/nothing would change/i, 'nothing', () => ({})],
  [/a customer keeps a name/i, 'keepsName', () => ({})],
  [/must contain letters or digits/i, 'letters', () => ({})],
  [/unknown time zone/i, 'unknownZone', () => ({})],
  [/the (claimant|owner) wins: .*\(claimant (\d), owner (\d)\)/i, 'ruleWinner',
    (m) => ({ side: t(`fieldErrors.sides.${m[1]}`), claimant: m[2], owner: m[3] })],
  [/must be the claimant or the owner/i, 'claimantOrOwner', () => ({})],
  [/stage (\d+) is defined twice \(also item (\d+)\)/i, 'stageTwice', (m) => ({ n: m[1], row: Number(m[2]) + 1 })],
  [/label (.+) is used twice \(also item (\d+)\)/i, 'labelTwice', (m) => ({ label: m[1], row: Number(m[2]) + 1 })],
  [/^Input should be '|must be one of |names the rep who takes over/i, 'choose', () => ({})],
  [/must not contain the username/i, 'hasUsername', () => ({})],
  [/is too easy to guess/i, 'tooEasy', () => ({})],
]

/** One field's reason in the user's language; the server's text if unknown. */
export function fieldText(reason: string): string {
  const numbered = /^#(\d+) (.*)$/.exec(reason)
  if (numbered) return t('fieldErrors.number', { i: numbered[1], why: fieldText(numbered[2]) })
  for (const [pattern, key, params] of REASONS) {
    const m = reason.match(pattern)
    if (m) return t(`fieldErrors.${key}`, params(m))
  }
  return reason
}

/** The 422's fields by the form's own field names: "phones.0" and "phones"
 * both land on `phones`, "contacts.0.name" on `contacts`. */
export function fieldErrors(error: unknown, rename: Record<string, string> = {}): Record<string, string> {
  if (!(error instanceof ApiError) || error.status !== 422) return {}
  const out: Record<string, string> = {}
  for (const [loc, reason] of Object.entries(error.fields)) {
    const path = loc.replace(/^(changes|body)\./, '')
    const key = rename[path] ?? rename[path.split('.')[0]] ?? path.split('.')[0]
    out[key] ??= fieldText(reason)
  }
  return out
}
