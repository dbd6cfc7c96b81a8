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
export * from './target.js'
