export {
  AUDIT_EVENTS,
  AUDIT_EVENT_NAMES,
  type AuditEventFields,
  type AuditEventName,
  type AuditSubject,
  type EventSpec,
  type LoadSource,
  type PolicyTier,
  type TierLoad,
  isAuditEventName,
} from './events.js'
export {
  type AuditEntry,
  type AuditEntryBase,
  type AuditHead,
  GENESIS_PREV,
  MAX_LINE_BYTES,
  defaultActor,
  headPathFor,
  lineHash,
  serializeEntry,
} from './entry.js'
export {
  type AppendResult,
  type AuditEventInput,
  type AuditOptions,
  type TailRepair,
  appendAudit,
  appendAuditEvents,
  quarantinePathFor,
  validateAuditEvent,
} from './append.js'
export {type BreakReason, type BrokenAt, type VerifyOptions, type VerifyResult, verifyChain} from './verify.js'
export {
  type AuditFilter,
  type AuditReadResult,
  type ExportOptions,
  type ExportResult,
  eventMatcher,
  exportAudit,
  exportLine,
  filterEntries,
  parseSince,
  queryAudit,
  readAuditLog,
  unknownEventNames,
} from './query.js'
