/**
 * src/govern: who may change policy, cryptographically enforced (issue 7, README "Governance").
 *
 * - gate: the submit gate of `aibox push` (tighten-only against the tiers above, the bundle's own tests; drafts)
 * - push: governed publication (gate, drafts, emergency changes)
 * - approve: approvals with separation of duties and roles checked before attaching
 * - emergencies: emergency changes still lacking their retroactive approval (audit log, registry)
 * - report: who signed and approved each version, with its quorum status (`aibox discover`)
 *
 * Quorum and separation of duties at verification time live in src/trust (evaluateTrust), so that
 * pull, verify and start enforce them through verifyPolicyArtifact.
 */
export * from './approve.js'
export * from './emergencies.js'
export * from './gate.js'
export * from './push.js'
export * from './report.js'
