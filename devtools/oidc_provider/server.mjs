// A real OpenID provider for the tests of directory sign-in: node-oidc-provider (an OpenID
// certified implementation) on loopback, started and stopped by devtools/localservices.py.
//
// What the tests get from it, besides the provider's own endpoints (discovery, JWKS, authorize,
// token, userinfo, end session, and dynamic client registration with an initial access token):
// - a directory they fill themselves: PUT /_test/accounts/<id> with a password, the claims the
//   directory releases (groups, roles, names...), the `amr`/`acr` its sign-in asserts and the life
//   of the ID tokens it issues to that account;
// - faults on the next token response, for what a real provider never does on demand: a token
//   tampered with on the way, a token it issued earlier (to us or to another client) handed back
//   again, or a back channel so slow that the token has expired when it arrives.
// Every /_test/ call needs the control token the provider was started with.
//
// Environment: OIDC_PORT (loopback port), OIDC_CONTROL_TOKEN.

import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';

import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const controlToken = process.env.OIDC_CONTROL_TOKEN;
if (!port || !controlToken) {
  console.error('OIDC_PORT and OIDC_CONTROL_TOKEN are required');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const accounts = new Map(); // id -> { password, claims, amr, acr, idTokenTtl }
let faults = []; // applied to the next token responses, one each, in order
const lastIdToken = new Map(); // client_id -> the last ID token issued to it

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: 'test-signing-key', alg: 'RS256', use: 'sig' };

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>${escape(title)}</title></head><body><h1>${escape(title)}</h1>${body}</body></html>`;

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // Released into the ID token itself (as Entra ID and Keycloak can be told to do), so the relying
  // party reads them from the signed token it has checked.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups', 'roles', 'employee_number'],
  },
  // The levels of authentication its sign-in may assert (Keycloak's step-up levels, say).
  acrValues: ['bronze', 'gold'],
  async findAccount(ctx, sub) {
    const account = accounts.get(sub);
    if (!account) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...account.claims }) };
  },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true, initialAccessToken: controlToken },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out of the test directory?', `${form}
<button id="op-logout-yes" type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button id="op-logout-no" type="submit" form="op.logoutForm">No, stay signed in</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out of the test directory', '');
      },
    },
  },
  pkce: { required: () => true },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    Grant: 3600,
    IdToken: (ctx, token) => accounts.get(token.available?.sub)?.idTokenTtl ?? 600,
    Interaction: 600,
    Session: 3600,
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Test directory error', `<pre id="op-error">${escape(JSON.stringify(out))}</pre>`);
  },
});
provider.proxy = false;

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function tampered(idToken) {
  // Claims changed after signing (another subject, an extra group), the signature left as it was.
  const [header, payload, signature] = idToken.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  claims.groups = [...(claims.groups || []), 'tampered-extra-group'];
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
}

// Faults on the token endpoint's answer, after the provider has made it.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || ctx.status !== 200 || !ctx.body?.id_token) return;
  const clientId = ctx.oidc?.client?.clientId;
  const issued = ctx.body.id_token;
  const fault = faults.shift();
  if (fault?.kind === 'tamper') {
    ctx.body = { ...ctx.body, id_token: tampered(issued) };
  } else if (fault?.kind === 'replay') {
    const earlier = lastIdToken.get(fault.from_client || clientId);
    if (earlier) ctx.body = { ...ctx.body, id_token: earlier };
  } else if (fault?.kind === 'delay') {
    await sleep(1000 * (fault.seconds || 2));
  }
  if (clientId) lastIdToken.set(clientId, issued);
});

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, page('Wrong interaction', ''));
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    if (req.method === 'POST' && action === 'login') {
      const form = new URLSearchParams(await readBody(req));
      const login = form.get('login') || '';
      const account = accounts.get(login);
      if (!account || account.password !== form.get('password')) {
        return send(res, 200, loginForm(uid, 'That user name or password is not right.'));
      }
      const result = { login: { accountId: login } };
      if (account.amr) result.login.amr = account.amr;
      if (account.acr) result.login.acr = account.acr;
      return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    }
    return send(res, 200, loginForm(uid, ''));
  }
  // Consent: this directory trusts the application, as a force's directory trusts its own
  // registered applications; grant what it asked for.
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

function loginForm(uid, error) {
  return page('Sign in to the test directory', `${error ? `<p id="op-error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" id="op-login-form">
<label for="op-login">User name</label> <input id="op-login" name="login" autocomplete="off">
<label for="op-password">Password</label> <input id="op-password" name="password" type="password">
<button type="submit" id="op-login-submit">Sign in</button></form>`);
}

async function control(req, res, path) {
  if (req.headers.authorization !== `Bearer ${controlToken}`) return send(res, 401, '', 'text/plain');
  const body = req.method === 'GET' ? '' : await readBody(req);
  const account = path.match(/^\/_test\/accounts\/([^/]+)$/);
  if (account && req.method === 'PUT') {
    const data = JSON.parse(body);
    accounts.set(decodeURIComponent(account[1]), {
      password: data.password,
      claims: data.claims || {},
      amr: data.amr,
      acr: data.acr,
      idTokenTtl: data.id_token_ttl,
    });
    return send(res, 204, '', 'text/plain');
  }
  if (path === '/_test/faults' && req.method === 'POST') {
    faults.push(JSON.parse(body));
    return send(res, 204, '', 'text/plain');
  }
  if (path === '/_test/faults' && req.method === 'DELETE') {
    faults = [];
    return send(res, 204, '', 'text/plain');
  }
  return send(res, 404, '', 'text/plain');
}

const callback = provider.callback();
const server = createServer(async (req, res) => {
  const { pathname } = new URL(req.url, issuer);
  try {
    if (pathname.startsWith('/_test/')) return await control(req, res, pathname);
    const step = pathname.match(/^\/interaction\/([^/]+)(?:\/(login))?$/);
    if (step) return await interaction(req, res, step[1], step[2]);
    return callback(req, res);
  } catch (err) {
    console.error(err);
    return send(res, 500, page('Test directory failure', `<pre>${escape(err.message)}</pre>`));
  }
});
server.listen(port, '127.0.0.1', () => console.log(`openid provider on ${issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
