/** The search's snippet marks its matches with 【】: shown as <mark>, with
 * everything else escaped (the snippet is user text). */
export function highlight(snippet: string): string {
  const escaped = snippet
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
  return escaped.replace(/【([^【】]*)】/g, '<mark>$1</mark>')
}

/** "价格, 谈判，回款" → ["价格", "谈判", "回款"] */
export function splitTags(text: string): string[] {
  return [...new Set(text.split(/[,，、;；\s]+/).map((s) => s.trim()).filter(Boolean))]
}
