import { beforeEach, describe, expect, it } from 'vitest'
import { ApiError } from '../api/client'
import en from './en'
import { errorText, fieldErrors, fieldText } from './errors'
import { i18n, setLocale } from './index'
import zhCN from './zh-CN'

function keys(obj: object, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([k, v]) =>
    typeof v === 'object' ? keys(v, `${prefix}${k}.`) : [`${prefix}${k}`])
}

describe('the catalogues', () => {
  it('say the same things in both languages', () => {
    expect(keys(en).sort()).toEqual(keys(zhCN).sort())
  })

  it('compile every message (no stray @, | or braces)', () => {
    for (const locale of ['zh-CN', 'en'] as const) {
      setLocale(locale)
      for (const key of keys(zhCN)) {
        expect(() => i18n.global.t(key, { n: 1, owner: 'x', name: 'x', label: 'x', keys: 'x', score: 1, message: 'x', title: 'x', date: 'x', seconds: 1, status: 1, i: 1, why: 'x', min: 1, max: 2, value: 'x', method: 'x', at: 'x' })).not.toThrow()
      }
    }
  })
})

describe('server errors in the user language', () => {
  beforeEach(() => setLocale('zh-CN'))

  it('names a known code in Chinese and keeps the server text for an unknown one', () => {
    expect(errorText(new ApiError(409, 'alarm_required', 'raise an alarm'))).toBe(
      '放弃客户前需要先困难报警，并由经理同意放弃')
    expect(errorText(new ApiError(409, 'brand_new_rule', 'the server explains'))).toBe('the server explains')
    expect(errorText(new ApiError(502, 'http_502', 'Bad Gateway'))).toBe('服务暂时不可用，请稍后再试')
    setLocale('en')
    expect(errorText(new ApiError(409, 'alarm_required', 'x'))).toMatch(/^Raise a difficulty alarm/)
  })

  it('puts field reasons beside the form fields, in Chinese', () => {
    const error = new ApiError(422, 'invalid_fields', 'some fields are invalid', {
      'phones': '#2 is not a valid phone number (a landline needs its area code)',
      'credit_code': 'check character does not match',
      'contacts.0.name': 'String should have at least 1 character',
      'changes.birthday': 'is not a day of the year (MM-DD)',
    })
    expect(fieldErrors(error, { contacts: 'contact' })).toEqual({
      phones: '第 2 项：固定电话请加区号',
      credit_code: '统一社会信用代码校验位不正确',
      contact: '至少 1 个字',
      birthday: '请按“月-日”填写真实日期，例如 03-15',
    })
    expect(fieldText('a reason nobody catalogued')).toBe('a reason nobody catalogued')
  })

  it('says why a password is refused', () => {
    const error = new ApiError(422, 'invalid_fields', 'the password is not acceptable', {
      password: 'is too easy to guess (a common or leaked password, or a simple pattern): This is a top-100 common password.',
    })
    expect(fieldErrors(error).password).toMatch(/^密码太容易被猜到/)
    expect(fieldText('must not contain the username')).toBe('密码不能包含登录名')
    expect(fieldText('must be at least 10 characters')).toBe('至少 10 个字')
  })

  it('tells how long to wait after too many attempts, in minutes when long', () => {
    const wait = (s: number) => new ApiError(429, 'too_many_attempts', 'x', {}, { retry_after_seconds: s })
    expect(errorText(wait(8))).toBe('尝试次数过多，请 8 秒后再试')
    expect(errorText(wait(900))).toBe('尝试次数过多，请 15 分钟后再试')
    setLocale('en')
    expect(errorText(wait(130))).toBe('Too many attempts; try again in 3 min')
  })
})
