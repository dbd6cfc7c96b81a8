export * from './authorizer.js'
export * from './challenge.js'
export * from './credentials.js'
