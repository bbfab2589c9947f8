import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ApiError } from '../api/client'
import { type CheckFields, Precheck, type Verdict } from './precheck'

const owner = { id: 'u1', name: '张伟' }
const match = (name: string) => ({
  customer_id: 'c1', company_name: name, owner, status: 'active' as const,
  matched_on: ['company_name' as const], score: 1,
})

function deferred<T>() {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

describe('the duplicate pre-check', () => {
  let verdicts: Verdict[]
  let calls: { fields: CheckFields; signal: AbortSignal; answer: ReturnType<typeof deferred<any>> }[]
  let precheck: Precheck

  beforeEach(() => {
    vi.useFakeTimers()
    verdicts = []
    calls = []
    precheck = new Precheck({
      delay: 200,
      onChange: (v) => verdicts.push(v),
      check: (fields, signal) => {
        const answer = deferred<any>()
        calls.push({ fields, signal, answer })
        return answer.promise
      },
    })
  })
  afterEach(() => vi.useRealTimers())

  it('waits for the typing to pause, then asks once', async () => {
    precheck.input({ company_name: '深' })
    precheck.input({ company_name: '深圳' })
    precheck.input({ company_name: '深圳市腾讯' })
    expect(precheck.current.state).toBe('checking')
    await vi.advanceTimersByTimeAsync(199)
    expect(calls).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(calls.map((c) => c.fields)).toEqual([{ company_name: '深圳市腾讯' }])
    calls[0].answer.resolve({ available: true, matches: [], similar: [] })
    await vi.runAllTimersAsync()
    expect(precheck.current).toEqual({ state: 'available', similar: [] })
  })

  it('names the owner of an exact match', async () => {
    precheck.input({ company_name: '腾讯计算机系统（深圳）有限公司' })
    await vi.advanceTimersByTimeAsync(200)
    calls[0].answer.resolve({ available: false, matches: [match('深圳市腾讯计算机系统有限公司')], similar: [] })
    await vi.runAllTimersAsync()
    expect(precheck.current.state).toBe('taken')
    expect(precheck.current.state === 'taken' && precheck.current.matches[0].owner?.name).toBe('张伟')
  })

  it('ignores a late answer about what was typed before', async () => {
    precheck.input({ company_name: '小米' })
    await vi.advanceTimersByTimeAsync(200)
    precheck.input({ company_name: '小米科技' })
    expect(calls[0].signal.aborted).toBe(true)
    await vi.advanceTimersByTimeAsync(200)
    // The newer question is answered first, the older one arrives late.
    calls[1].answer.resolve({ available: true, matches: [], similar: [] })
    await vi.runAllTimersAsync()
    calls[0].answer.resolve({ available: false, matches: [match('小米')], similar: [] })
    await vi.runAllTimersAsync()
    expect(precheck.current).toEqual({ state: 'available', similar: [] })
    expect(verdicts.filter((v) => v.state === 'taken')).toHaveLength(0)
  })

  it('does not ask again for the same fields, and goes idle when they are emptied', async () => {
    precheck.input({ company_name: '华为', phones: [''] })
    await vi.advanceTimersByTimeAsync(200)
    calls[0].answer.resolve({ available: true, matches: [], similar: [] })
    await vi.runAllTimersAsync()
    precheck.input({ company_name: ' 华为 ', phones: [] })
    await vi.advanceTimersByTimeAsync(500)
    expect(calls).toHaveLength(1)
    precheck.input({ company_name: '  ' })
    expect(precheck.current).toEqual({ state: 'idle' })
  })

  it('leaves out a phone still being typed instead of failing the whole check', async () => {
    precheck.input({ company_name: '北京小米科技', phones: ['138'] })
    await vi.advanceTimersByTimeAsync(200)
    calls[0].answer.reject(new ApiError(422, 'invalid_fields', 'bad', { 'phones': '#1 is not a phone number' }))
    await vi.advanceTimersByTimeAsync(0)
    expect(calls[1].fields).toEqual({ company_name: '北京小米科技' })
    calls[1].answer.resolve({ available: true, matches: [], similar: [] })
    await vi.runAllTimersAsync()
    expect(precheck.current.state).toBe('available')
  })

  it('shows the winner of a lost race the same way', () => {
    precheck.refuse([match('上海恒通贸易有限公司')])
    expect(precheck.current.state).toBe('taken')
  })

  it('reports a server it cannot reach, and asks again on the next input', async () => {
    precheck.input({ company_name: '恒通' })
    await vi.advanceTimersByTimeAsync(200)
    calls[0].answer.reject(new ApiError(0, 'network', 'down'))
    await vi.runAllTimersAsync()
    expect(precheck.current.state).toBe('failed')
    precheck.input({ company_name: '恒通' })
    await vi.advanceTimersByTimeAsync(200)
    expect(calls).toHaveLength(2)
  })
})
