import { describe, expect, it } from 'vitest'
import {
  formatAgo,
  formatDate,
  formatDateTime,
  formatMoney,
  formatMoneyShort,
  monthRange,
  wallTimeToIso,
} from './format'

describe('money', () => {
  it('shows yuan with grouping, decimals only when there are some', () => {
    expect(formatMoney(490000, 'zh-CN')).toBe('¥490,000')
    expect(formatMoney(1234.5, 'zh-CN')).toBe('¥1,234.50')
    expect(formatMoney(0.07, 'zh-CN')).toBe('¥0.07')
    expect(formatMoney(null, 'zh-CN')).toBe('¥0')
    expect(formatMoney(490000, 'en')).toBe('¥490,000')
  })

  it('shortens large figures the Chinese way (万)', () => {
    expect(formatMoneyShort(490000, 'zh-CN')).toBe('49万元')
    expect(formatMoneyShort(123456789, 'zh-CN')).toBe('1.2亿元')
    expect(formatMoneyShort(490000, 'en')).toBe('¥490K')
  })
})

describe('dates in the user time zone', () => {
  it('shows a UTC instant on the Shanghai calendar', () => {
    // 2026-12-31 17:30 UTC is already New Year's Day in Shanghai.
    expect(formatDateTime('2026-12-31T17:30:00Z', 'Asia/Shanghai')).toBe('2027-01-01 01:30')
    expect(formatDate('2026-12-31T17:30:00Z', 'Asia/Shanghai')).toBe('2027-01-01')
    expect(formatDate('2026-12-31T17:30:00Z', 'America/New_York')).toBe('2026-12-31')
    expect(formatDateTime('2026-12-07T06:05:00+00:00', 'UTC')).toBe('2026-12-07 06:05')
  })

  it('turns a wall time typed in a zone into an instant with its offset', () => {
    expect(wallTimeToIso('2026-12-08 09:30', 'Asia/Shanghai')).toBe('2026-12-08T09:30:00+08:00')
    expect(wallTimeToIso('2026-12-08 09:30', 'UTC')).toBe('2026-12-08T09:30:00+00:00')
    expect(wallTimeToIso('2026-12-08 09:30', 'Asia/Kolkata')).toBe('2026-12-08T09:30:00+05:30')
    // Either side of New York's switch to summer time.
    expect(wallTimeToIso('2026-03-07 12:00', 'America/New_York')).toBe('2026-03-07T12:00:00-05:00')
    expect(wallTimeToIso('2026-03-09 12:00', 'America/New_York')).toBe('2026-03-09T12:00:00-04:00')
    const back = wallTimeToIso('2026-12-08 09:30', 'Asia/Shanghai')
    expect(formatDateTime(back, 'Asia/Shanghai')).toBe('2026-12-08 09:30')
  })

  it('bounds a month on the user calendar', () => {
    expect(monthRange(2026, 12, 'Asia/Shanghai')).toEqual([
      '2026-12-01T00:00:00+08:00',
      '2027-01-01T00:00:00+08:00',
    ])
  })

  it('says how long ago, then the date', () => {
    const now = new Date('2026-12-07T12:00:00Z')
    expect(formatAgo('2026-12-07T11:57:00Z', now, 'zh-CN', 'Asia/Shanghai')).toBe('3分钟前')
    expect(formatAgo('2026-12-07T11:57:00Z', now, 'en', 'Asia/Shanghai')).toBe('3 minutes ago')
    expect(formatAgo('2026-11-01T00:00:00Z', now, 'zh-CN', 'Asia/Shanghai')).toBe('2026-11-01 08:00')
  })
})
