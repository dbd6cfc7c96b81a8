/** Media types and annotation keys we read and write (formats.md, cosign-formats.md). */
export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  policyBundle: 'application/vnd.aibox.policy.bundle.v1+json',
  policySource: 'application/vnd.aibox.policy.source.v1+yaml',
  seal: 'application/vnd.aibox.seal.v1+json',
  sigstoreBundleV03: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  cosignSimpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  dsseEnvelope: 'application/vnd.dsse.envelope.v1+json',
} as const

/** Every manifest media type we accept, for `Accept` headers (always sent: registry-notes.md §8.1). */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerManifestList]

export function isManifestMediaType(mt: string): boolean {
  return MANIFEST_MEDIA_TYPES.includes(mt)
}

/** The empty config blob `{}` (image-spec 1.1 "guidance for an empty descriptor"). */
export const EMPTY_JSON = Buffer.from('{}')
export const EMPTY_DESCRIPTOR = {
  mediaType: MT.ociEmpty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
} as const

export const ANNOTATION = {
  title: 'org.opencontainers.image.title',
  version: 'org.opencontainers.image.version',
  created: 'org.opencontainers.image.created',
  refName: 'org.opencontainers.image.ref.name',
  tier: 'dev.aibox.policy.tier',
  policyDigest: 'dev.aibox.policy.digest',
  /** The incident reference of an emergency change (README "Governance"); in the signed manifest. */
  emergency: 'dev.aibox.policy.emergency',
  /** The tenant of the policy (informational: the signed metadata.tenant decides; README "Tenants"). */
  tenant: 'dev.aibox.policy.tenant',
  bundleContent: 'dev.sigstore.bundle.content',
  bundlePredicateType: 'dev.sigstore.bundle.predicateType',
  cosignSignature: 'dev.cosignproject.cosign/signature',
} as const
