export * from './auth/index.js'
export * from './client.js'
export * from './content.js'
export * from './copy.js'
export * from './errors.js'
export * from './manifest.js'
export * from './media.js'
export {LayoutDirStore, OCI_LAYOUT_BYTES, type LayoutDirOptions, type LayoutIndex} from './stores/layout-dir.js'
export {
  LayoutTarStore,
  writeLayoutTar,
  type LayoutTarOptions,
  type LayoutTarReport,
  type TarLimits,
  type WriteLayoutTarOptions,
  type WriteLayoutTarResult,
} from './stores/layout-tar.js'
export * from './stores/memory.js'
export {
  DEFAULT_RETRY,
  DEFAULT_TIMEOUTS,
  HttpTransport,
  type HttpMethod,
  type HttpRequest,
  type HttpResponse,
  type RetryPolicy,
  type Timeouts,
  type TransportOptions,
} from './http.js'
export * from './redact.js'
export * from './reference.js'
export {
  DEFAULT_MONOLITHIC_MAX,
  RemoteRepository,
  openRemote,
  type PushOptions,
  type ReferrersMode,
  type RemoteRepositoryOptions,
} from './stores/remote.js'
export * from './target.js'
