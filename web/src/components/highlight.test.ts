import { describe, expect, it } from 'vitest'
import { highlight, splitTags } from './highlight'

describe('search snippets', () => {
  it('marks the matches and escapes the rest', () => {
    expect(highlight('客户嫌【报价】高，<b>先</b>问【预算】')).toBe(
      '客户嫌<mark>报价</mark>高，&lt;b&gt;先&lt;/b&gt;问<mark>预算</mark>')
    expect(highlight('<img src=x onerror=alert(1)>【x】')).not.toContain('<img')
  })

  it('splits tags typed with Chinese or English separators', () => {
    expect(splitTags('价格, 谈判，回款、价格')).toEqual(['价格', '谈判', '回款'])
  })
})
