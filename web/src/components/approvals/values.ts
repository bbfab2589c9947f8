// How a customer field's value reads in a before/after diff.
import type { Schemas } from '../../api/client'
import { formatMoney } from '../../i18n/format'
import type { Locale } from '../../i18n'

type Contact = Schemas['Customer']['contacts'][number] | Schemas['Dispute']['contact']

export function contactText(c: Contact, level: (n: number) => string): string {
  return [c.name, c.title, 'phone' in c ? c.phone : null, level(c.decision_level)].filter(Boolean).join(' · ')
}

export function valueText(field: string, value: unknown, locale: Locale, level: (n: number) => string): string {
  if (value === null || value === undefined || value === '') return '—'
  if (field === 'expected_value' && typeof value === 'number') return formatMoney(value, locale)
  if (field === 'contacts' && Array.isArray(value)) {
    return value.length ? value.map((c) => contactText(c as Contact, level)).join('\n') : '—'
  }
  if (Array.isArray(value)) return value.length ? value.join('、') : '—'
  return String(value)
}
