// Child process: MSAL Node's On-Behalf-Of against the local IdP over TLS, for the third
// column (cache hits and fan-out). Started with NODE_EXTRA_CA_CERTS naming the IdP's
// self-signed certificate. MSAL is given the discovery document (authorityMetadata): with
// a non-Microsoft authority it would otherwise look under /v2.0.
// node benchmark/msal.mjs <tlsIssuer> <controlUrl>

import { ConfidentialClientApplication } from '@azure/msal-node'
import { CREDENTIALS } from './impls.mjs'
import { getJson, hitsSequential, hitsConcurrent, fanOut } from './measure.mjs'

const [issuer, control] = process.argv.slice(2)

/** A fresh MSAL application (its own empty token cache), behind the bench's call shape. */
async function msalExchange() {
  const authorityMetadata = JSON.stringify(await getJson(`${issuer}/.well-known/openid-configuration`))
  const app = new ConfidentialClientApplication({
    auth: { ...CREDENTIALS, authority: issuer, knownAuthorities: [new URL(issuer).host], protocolMode: 'OIDC', authorityMetadata },
  })
  return (_user, assertion, scopes) => app.acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [scopes] })
}

const mint = async () => (await getJson(`${control}/mint?n=1&tls=1`))[0]
const obo = () => getJson(`${issuer}/__test/counters`).then((c) => c.obo)
const figures = {
  hitSequential: await hitsSequential(await msalExchange(), await mint()),
  hitConcurrent: await hitsConcurrent(await msalExchange(), await mint()),
  fanOutIdp: await fanOut(await msalExchange(), await mint(), obo),
}
console.log(JSON.stringify(figures))
