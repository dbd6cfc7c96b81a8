/**
 * Distinct-key thresholds as a bipartite matching: each role needs `n` slots, each key can fill
 * at most one slot of a role it holds (one key fills one role per digest; evaluate.ts prefixes roles
 * with their statement kind so that holds across signatures and approvals), and we want the
 * largest assignment (Kuhn's augmenting paths; sizes are tiny). This is what makes "2 security +
 * 1 approver" need three different keys even when one key holds both roles.
 */
export interface Candidate {
  id: string
  roles: string[]
}

export function maxAssignment(thresholds: Record<string, number>, candidates: Candidate[]): {assigned: Map<string, string[]>; total: number} {
  const slots: string[] = []
  for (const [role, n] of Object.entries(thresholds)) for (let i = 0; i < n; i++) slots.push(role)
  const sorted = [...candidates].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const slotOwner = new Array<number>(slots.length).fill(-1)
  const tryKey = (k: number, seen: boolean[]): boolean => {
    for (let s = 0; s < slots.length; s++) {
      if (seen[s] || !sorted[k].roles.includes(slots[s])) continue
      seen[s] = true
      if (slotOwner[s] === -1 || tryKey(slotOwner[s], seen)) {
        slotOwner[s] = k
        return true
      }
    }
    return false
  }
  let total = 0
  for (let k = 0; k < sorted.length; k++) if (tryKey(k, new Array<boolean>(slots.length).fill(false))) total++
  const assigned = new Map<string, string[]>()
  slots.forEach((role, s) => {
    if (slotOwner[s] === -1) return
    assigned.set(role, [...(assigned.get(role) ?? []), sorted[slotOwner[s]].id])
  })
  for (const ids of assigned.values()) ids.sort()
  return {assigned, total}
}
