// A real OpenID provider (npm `oidc-provider`) for dsar's token tests. Never used in production.
//
//   node provider.mjs PORT
//
// Listens on 127.0.0.1:PORT with issuer http://127.0.0.1:PORT and prints "ready <issuer>" once up.
// Access tokens for our API are RFC 9068 JWTs (typ at+jwt, ES256), like a production provider's.
//
// Test-only conveniences, which a real provider must never have:
// - Logins finish headlessly: the interaction route reads `login_hint` as `sub|acr|seconds-ago`
//   (for example `alice|urn:dsar:acr:strong|0`, or `alice|urn:dsar:acr:weak|7200` for a weak,
//   stale login), and every grant is given silently (`loadExistingGrant`).
// - `POST /__test/rotate` adds a new ES256 signing key, makes it the current one and keeps the old
//   ones published, as a provider does when it rotates keys. The JWKS changes without a restart:
//   the provider object is rebuilt with the new key set and swapped in; its in-memory storage
//   (sessions, grants) lives in the module and survives the swap.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const issuer = `http://127.0.0.1:${port}`;
export const AUDIENCE = process.env.DSAR_TEST_AUDIENCE ?? 'https://dsar.test/api';
const OTHER_AUDIENCE = 'https://other.test/api';
const RESOURCE_SCOPES = 'dsar:self portability:pull support:read';
const REDIRECT_URI = 'http://127.0.0.1/callback';
const COOKIE_KEYS = [randomUUID()];

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' };
}

const clients = [
  {
    // The customer's "my data" page: authorization code + PKCE, public client.
    client_id: 'dsar-account',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
    scope: 'openid dsar:self',
    id_token_signed_response_alg: 'ES256',
  },
  {
    // The account page (api/account/), a backend-for-frontend: a confidential client with
    // authorization code + PKCE. Native, so that its loopback redirect URIs match on any port
    // (RFC 8252 section 7.3): the tests serve the page on a free port.
    client_id: 'dsar-account-page',
    client_secret: 'dsar-account-page-secret',
    application_type: 'native',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/account/callback'],
    post_logout_redirect_uris: ['http://127.0.0.1/account/signed-out'],
    scope: 'openid dsar:self',
    id_token_signed_response_alg: 'ES256',
  },
  // Partner controllers: client credentials only (partner-three: tests/auth/test_issuer_roles.py alone).
  ...['partner-one', 'partner-two', 'partner-three'].map((id) => ({
    client_id: id,
    client_secret: `${id}-secret`,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'portability:pull',
  })),
  {
    // A support agent's console: client credentials, so `sub` is the client id `agent-1`.
    client_id: 'agent-1',
    client_secret: 'agent-1-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'support:read',
  },
];

async function grantEverything(idp, clientId, accountId, scope, resourceServers) {
  // Our scopes are both in `scopes` (so clients may ask for them) and resource scopes.
  const requested = String(scope ?? '').split(' ').filter(Boolean).join(' ');
  const grant = new idp.Grant({ clientId, accountId });
  grant.addOIDCScope(requested);
  for (const indicator of Object.keys(resourceServers ?? {})) {
    grant.addResourceScope(indicator, requested);
  }
  await grant.save();
  return grant;
}

function configuration(keys) {
  return {
    clients,
    scopes: ['openid', ...RESOURCE_SCOPES.split(' ')],
    jwks: { keys },
    cookies: { keys: COOKIE_KEYS },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    pkce: { required: (_ctx, client) => ['dsar-account', 'dsar-account-page'].includes(client.clientId) },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? AUDIENCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator !== AUDIENCE && resourceIndicator !== OTHER_AUDIENCE) {
            throw new errors.InvalidTarget();
          }
          return {
            audience: resourceIndicator,
            scope: RESOURCE_SCOPES,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    // RFC 9068 section 2.2.1: acr and auth_time come from the authentication event.
    extraTokenClaims: async (ctx, token) => {
      const code = ctx.oidc.entities.AuthorizationCode;
      if (token.kind !== 'AccessToken' || !code) return undefined;
      return { acr: code.acr, auth_time: code.authTime };
    },
    // Grant whatever was asked for, without a consent screen.
    loadExistingGrant: async (ctx) => {
      const { client, session, params, resourceServers } = ctx.oidc;
      return grantEverything(ctx.oidc.provider, client.clientId, session.accountId, params.scope, resourceServers);
    },
  };
}

let keys = [newSigningKey()];
let provider = new Provider(issuer, configuration(keys));
let handler = provider.callback();

async function finishInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === 'consent') {
    // Native clients are always asked for consent; give it, for what was asked.
    const { client_id: clientId, scope, resource } = details.params;
    const servers = Object.fromEntries([resource ?? AUDIENCE].flat().map((r) => [r, true]));
    const grant = await grantEverything(provider, clientId, details.session.accountId, scope, servers);
    await provider.interactionFinished(req, res, { consent: { grantId: grant.jti } }, { mergeWithLastSubmission: true });
    return;
  }
  const [sub, hintAcr, ago] = String(details.params.login_hint ?? '').split('|');
  // A hint without an acr (the account page's step-up sends only the sub) gets the strongest
  // one the client asked for in `acr_values`, as a person completing a second factor would.
  const acr = hintAcr || String(details.params.acr_values ?? '').split(' ')[0];
  if (!sub) {
    res.writeHead(400).end('login_hint "sub|acr|seconds-ago" is required');
    return;
  }
  const ts = Math.floor(Date.now() / 1000) - Number(ago || 0);
  const login = { accountId: sub, ts, ...(acr ? { acr } : {}) };
  await provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
}

const server = createServer((req, res) => {
  const path = new URL(req.url, issuer).pathname;
  if (req.method === 'POST' && path === '/__test/rotate') {
    keys = [newSigningKey(), ...keys];
    provider = new Provider(issuer, configuration(keys));
    handler = provider.callback();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kid: keys[0].kid }));
    return;
  }
  if (req.method === 'GET' && path.startsWith('/interaction/')) {
    finishInteraction(req, res).catch((err) => {
      res.writeHead(500).end(String(err));
    });
    return;
  }
  handler(req, res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
