export * from './atomic.js'
export * from './fs-errors.js'
export * from './lock.js'
