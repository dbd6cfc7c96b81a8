// Preload (node --import) that makes any attempt to reach the network fatal: exit 99 with a
// message on stderr. e2e tests run `aibox verify` under it to prove verification is offline.
import dns from 'node:dns'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import tls from 'node:tls'

const trip = (what) =>
  function () {
    process.stderr.write(`NETWORK ACCESS: ${what}\n`)
    process.exit(99)
  }
net.Socket.prototype.connect = trip('net.Socket.connect')
net.connect = trip('net.connect')
net.createConnection = trip('net.createConnection')
tls.connect = trip('tls.connect')
http.request = trip('http.request')
http.get = trip('http.get')
https.request = trip('https.request')
https.get = trip('https.get')
dns.lookup = trip('dns.lookup')
dns.resolve = trip('dns.resolve')
dns.promises.lookup = trip('dns.promises.lookup')
globalThis.fetch = trip('fetch')
