// An OpenID Provider for the API tests: node-oidc-provider (a certified implementation),
// minting JWT access tokens for the API's audience with the client credentials grant.
//
//   node provider.mjs serve   PORT, OIDC_KEYS (private JWKs, JSON array), OIDC_USERS
//                             ({clientId: {sub, email, email_verified, name, groups}}),
//                             OIDC_AUDIENCE, OIDC_TTL (seconds)
//   node provider.mjs keygen  ALG KID: prints {"jwk": <private JWK>, "der": <base64 DER>}
//                             (PKCS#1 for RSA, PKCS#8 for EC: what the tests sign with)
//
// Each test user is a client: its client_credentials token carries the user's `sub` and
// claims (a jwt format customizer), signed by the provider with the key of the client's
// algorithm (`es-…` clients: ES256, `ps-…`: PS256, others: RS256).
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const [mode = 'serve', ...args] = process.argv.slice(2);

if (mode === 'keygen') {
  const [alg = 'RS256', kid = crypto.randomUUID()] = args;
  const { privateKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  const der = privateKey
    .export({ format: 'der', type: alg === 'ES256' ? 'pkcs8' : 'pkcs1' })
    .toString('base64');
  process.stdout.write(JSON.stringify({ jwk, der }));
  process.exit(0);
}

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const audience = process.env.OIDC_AUDIENCE;
const ttl = Number(process.env.OIDC_TTL || 300);
const keys = JSON.parse(process.env.OIDC_KEYS);
const users = JSON.parse(process.env.OIDC_USERS);

const algOf = (clientId) => {
  if (clientId.startsWith('es-')) return 'ES256';
  if (clientId.startsWith('ps-')) return 'PS256';
  return 'RS256';
};

const provider = new Provider(issuer, {
  clients: Object.keys(users).map((clientId) => ({
    client_id: clientId,
    client_secret: `secret-${clientId}`,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_post',
  })),
  jwks: { keys },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: 'api',
        audience,
        accessTokenTTL: ttl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: algOf(client.clientId) } },
      }),
    },
  },
  formats: {
    customizers: {
      jwt(ctx, token, jwt) {
        const user = users[token.clientId];
        if (!user) return;
        jwt.payload.sub = user.sub;
        for (const claim of ['email', 'email_verified', 'name']) {
          if (user[claim] !== undefined) jwt.payload[claim] = user[claim];
        }
        if (user.groups) jwt.payload['cognito:groups'] = user.groups;
      },
    },
  },
});

provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on ${issuer}\n`);
});
