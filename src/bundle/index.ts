/**
 * Policy-bundle authoring: parse, validate, canonicalize, digest, compose, tighten-check,
 * evaluate, diff and test (architecture.md, `src/bundle/`). The CLI's `aibox bundle …`
 * commands are thin wrappers over these functions.
 */
export {canonicalBytes, canonicalDocument, type CanonicalDocument, canonicalJson, contentDigest} from './canonical.js'
export {type Call, type CallDecision, type CallTier, decideCall} from './calls.js'
export {type ComposeConflict, type ComposedRule, type ComposeOptions, type ComposeResult, composeBundles, composedJson} from './compose.js'
export {type DiffItem, type DiffResult, type DiffSide, diffBundles} from './diff.js'
export {
  assertEffectivePolicy,
  compareEffective,
  type EffectiveComparison,
  effectiveDigest,
  effectivePolicy,
  type EffectivePolicyDocument,
  isWeakerPolicy,
  resolveEffective,
  type ResolvedEffective,
} from './effective.js'
export {type Decision, evaluateCall, evaluateCommand, type EvalTarget} from './evaluate.js'
export {scaffoldBundle, type Scaffold, toYaml} from './init.js'
export {compareCodePoints, isObject, type JsonObject, type JsonValue} from './json.js'
export {type Origin, tierLabel, type Violation, violationMessage} from './layers.js'
export {type ProfileSelection, profileNames, profileOverlay, profileProblems, selectProfile} from './profiles.js'
export {detectKind, loadBundle, loadBundleText, type LoadOptions} from './load.js'
export {argMatches, argvMatches, globMatches, hostCovers, joinCommand, normalizePath, pathCovers, splitCommand} from './match.js'
export * from './model.js'
export {detectFormat, type DocFormat, MAX_DOCUMENT_BYTES, MAX_YAML_BYTES, type ParsedDocument, parseDocument, type ParseOptions, parseStrict, readSource, type SourcePosition} from './parse.js'
export {SCHEMA_IDS, schemaDirectory, validateValue} from './schema.js'
export {MAX_JSON_DEPTH, scanJson, type JsonScanResult} from './strict-json.js'
export {MAX_ALIAS_NODES} from './strict-yaml.js'
export {analyzeStack, assignTiers, checkStack, type CheckResult, loosenedError, type StackAnalysis} from './tighten.js'
export {writeOutputFile, type WriteOptions} from './write.js'
export {type PolicyTestCase, type PolicyTestReport, type PolicyTestResult, loadPolicyTests, runPolicyTests} from './testing.js'
export {ANY_TOKEN} from './tools.js'
export {compareRational, parseDuration, parseQuantity, type Rational} from './units.js'
