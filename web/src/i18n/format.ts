// Money, dates and times as a Chinese sales rep reads them: yuan with at most
// two decimals, dates as 2026-12-07, times as 14:30, in the user's own time
// zone (the server stores UTC; the user's setting says where he is).
import type { Locale } from './index'

export function formatMoney(yuan: number | null | undefined, locale: Locale): string {
  const value = Number(yuan ?? 0)
  return new Intl.NumberFormat(locale, {
    style: 'currency',
    currency: 'CNY',
    currencyDisplay: 'symbol',
    minimumFractionDigits: Number.isInteger(value) ? 0 : 2,
    maximumFractionDigits: 2,
  })
    .format(value)
    .replace('CN¥', '¥')
}

/** 49万 / ¥490K: for chart labels where the full figure does not fit. */
export function formatMoneyShort(yuan: number, locale: Locale): string {
  const text = new Intl.NumberFormat(locale, { notation: 'compact', maximumFractionDigits: 1 })
    .format(yuan)
  return locale === 'zh-CN' ? `${text}元` : `¥${text}`
}

type Parts = { year: string; month: string; day: string; hour: string; minute: string }

function partsIn(date: Date, timeZone: string): Parts {
  const out: Record<string, string> = {}
  for (const p of new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(date)) {
    out[p.type] = p.value
  }
  return out as Parts
}

/** "2026-12-07" in the given zone. */
export function formatDate(iso: string | null | undefined, timeZone: string): string {
  if (!iso) return ''
  const p = partsIn(new Date(iso), timeZone)
  return `${p.year}-${p.month}-${p.day}`
}

/** "2026-12-07 14:30" in the given zone. */
export function formatDateTime(iso: string | null | undefined, timeZone: string): string {
  if (!iso) return ''
  const p = partsIn(new Date(iso), timeZone)
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`
}

function offsetMinutes(utcMillis: number, timeZone: string): number {
  const p = partsIn(new Date(utcMillis), timeZone)
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute)
  return Math.round((asUtc - Math.floor(utcMillis / 60000) * 60000) / 60000)
}

function pad(n: number): string {
  return String(Math.abs(n)).padStart(2, '0')
}

/** A wall-clock time typed by the user ("2026-12-08 09:30", in his zone) as
 * ISO 8601 with that zone's offset at that moment ("...T09:30:00+08:00"). */
export function wallTimeToIso(wall: string, timeZone: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})/.exec(wall)
  if (!m) throw new Error(`not a date and time: ${wall}`)
  const [y, mo, d, h, mi] = m.slice(1).map(Number)
  const naive = Date.UTC(y, mo - 1, d, h, mi)
  // The offset at the guessed instant, then again at the corrected one: two
  // rounds settle on the right side of a daylight-saving change.
  let offset = offsetMinutes(naive, timeZone)
  offset = offsetMinutes(naive - offset * 60000, timeZone)
  const sign = offset >= 0 ? '+' : '-'
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:00${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`
}

/** An instant as the wall-clock "YYYY-MM-DD HH:mm" of the zone (for editing). */
export function isoToWallTime(iso: string, timeZone: string): string {
  return formatDateTime(iso, timeZone)
}

/** The first and the last instant of a calendar month in the zone. */
export function monthRange(year: number, month: number, timeZone: string): [string, string] {
  const first = wallTimeToIso(`${year}-${pad(month)}-01 00:00`, timeZone)
  const nextYear = month === 12 ? year + 1 : year
  const next = wallTimeToIso(`${nextYear}-${pad(month === 12 ? 1 : month + 1)}-01 00:00`, timeZone)
  return [first, next]
}

/** "3 分钟前" / "3 minutes ago", falling back to the date after a week. */
export function formatAgo(iso: string, now: Date, locale: Locale, timeZone: string): string {
  const seconds = Math.round((new Date(iso).getTime() - now.getTime()) / 1000)
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' })
  const abs = Math.abs(seconds)
  if (abs < 60) return rtf.format(0, 'second')
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), 'minute')
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), 'hour')
  if (abs < 7 * 86400) return rtf.format(Math.round(seconds / 86400), 'day')
  return formatDateTime(iso, timeZone)
}
