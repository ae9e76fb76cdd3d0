// MSAL Node, unmodified, against the Entra emulator over HTTPS: the flows msal_flows.py runs
// with MSAL Python, each token used at the service it is for. Run by scripts/tests/clients.rs;
// prints "ok <flow>" for each flow, and the first failure ends the program with a non-zero code.

import {
  ConfidentialClientApplication,
  CryptoProvider,
  InteractionRequiredAuthError,
  PublicClientApplication,
} from "@azure/msal-node";

import { apiAnswer, check, env, mcpAccepts, signInThroughForm } from "./harness.mjs";

const REDIRECT = "http://localhost:8400";
const MCP_SCOPE = env.MCP_SCOPE;
const API_DEFAULT = env.API_DEFAULT;

/** MSAL's configuration for the emulator: its host is a known authority, so MSAL reads the
 * tenant's OpenID metadata from it instead of asking login.microsoftonline.com for instance
 * discovery (the same setting a B2C or custom-domain authority needs). */
function auth(clientId, clientSecret) {
  const host = new URL(env.AUTHORITY).host;
  return { auth: { clientId, clientSecret, authority: env.AUTHORITY, knownAuthorities: [host] } };
}

/** The error MSAL Node throws for a refused request (a ServerError with Entra's fields). */
async function refusal(attempt) {
  try {
    await attempt();
  } catch (error) {
    return error;
  }
  throw new Error("the request was not refused");
}

const pub = new PublicClientApplication(auth(env.PUBLIC_CLIENT_ID));

// Authorization code + PKCE, completed through the emulator's login form.
const pkce = await new CryptoProvider().generatePkceCodes();
const authUri = await pub.getAuthCodeUrl({
  scopes: [MCP_SCOPE],
  redirectUri: REDIRECT,
  codeChallenge: pkce.challenge,
  codeChallengeMethod: "S256",
});
check(authUri.startsWith(`${env.AUTHORITY}/oauth2/v2.0/authorize`), authUri);
const back = await signInThroughForm(authUri, "alice");
check(back.href.startsWith(REDIRECT), `redirected to ${back.href}`);
const signedIn = await pub.acquireTokenByCode({
  code: back.searchParams.get("code"),
  scopes: [MCP_SCOPE],
  redirectUri: REDIRECT,
  codeVerifier: pkce.verifier,
});
check(signedIn.account.username === "alice@contoso.example", signedIn.account);
await mcpAccepts(signedIn.accessToken);
console.log("ok authorization code + PKCE through the login form (orders-mcp accepts the token)");

// Refresh: MSAL's cache redeems the refresh token.
const accounts = await pub.getTokenCache().getAllAccounts();
check(accounts.length === 1, accounts);
const refreshed = await pub.acquireTokenSilent({ account: accounts[0], scopes: [MCP_SCOPE], forceRefresh: true });
check(refreshed.accessToken !== signedIn.accessToken, "a new access token");
await mcpAccepts(refreshed.accessToken);
console.log("ok refresh token (acquireTokenSilent, forceRefresh)");

// On-Behalf-Of: orders-mcp's registration exchanges the user's token for orders-api.
const middle = new ConfidentialClientApplication(auth(env.MCP_CLIENT_ID, env.MCP_CLIENT_SECRET));
const obo = await middle.acquireTokenOnBehalfOf({ oboAssertion: signedIn.accessToken, scopes: [API_DEFAULT] });
let answer = await apiAnswer(obo.accessToken);
check(answer.status === 200, `orders-api refused the OBO token: ${answer.status} ${answer.text.slice(0, 300)}`);
console.log("ok on-behalf-of (orders-api accepts the token and lists alice's orders)");

// Client credentials: an app-only token orders-api validates, then refuses as not a user.
const app = new ConfidentialClientApplication(auth(env.CHAT_CLIENT_ID, env.CHAT_CLIENT_SECRET));
const appOnly = await app.acquireTokenByClientCredential({ scopes: [API_DEFAULT] });
answer = await apiAnswer(appOnly.accessToken);
check(answer.status === 403 && answer.text.includes("insufficient-scope"), `app-only: ${answer.status} ${answer.text}`);
answer = await apiAnswer(`${appOnly.accessToken.slice(0, -4)}AAAA`);
check(answer.status === 401, `a tampered token: ${answer.status}`);
console.log("ok client credentials (orders-api validates it: 403 app-only, a tampered copy 401)");

// Device code: the user approves on the verification page while MSAL polls.
const device = await pub.acquireTokenByDeviceCode({
  scopes: [MCP_SCOPE],
  deviceCodeCallback: async ({ userCode, verificationUri }) => {
    const form = new URLSearchParams({ user_code: userCode, login: "carol", password: "carol", decision: "approve" });
    const done = await fetch(verificationUri, { method: "POST", body: form });
    const text = await done.text();
    check(text.includes("signed in"), text.slice(0, 300));
  },
});
check(device.account.username === "carol@contoso.example", device.account);
await mcpAccepts(device.accessToken);
console.log("ok device code");

// Refusals surface in MSAL Node as MSAL users know them: a ServerError whose errorCode is
// Entra's `error` and whose errorMessage carries the AADSTS code and description.
const wrong = new ConfidentialClientApplication(auth(env.CHAT_CLIENT_ID, "not-the-secret"));
let error = await refusal(() => wrong.acquireTokenByClientCredential({ scopes: [API_DEFAULT] }));
check(error.errorCode === "invalid_client" && error.errorMessage.includes("AADSTS7000215:"), `${error}`);
// The classic client-credentials mistake: a delegated scope instead of `<resource>/.default`.
error = await refusal(() => app.acquireTokenByClientCredential({ scopes: [API_DEFAULT.replace(".default", "Orders.Read")] }));
check(error.errorCode === "invalid_scope", `${error}`);
const unknownScope = `${API_DEFAULT.slice(0, API_DEFAULT.lastIndexOf("/"))}/No.Such.Scope`;
error = await refusal(() => middle.acquireTokenOnBehalfOf({ oboAssertion: signedIn.accessToken, scopes: [unknownScope] }));
check(error.errorCode === "invalid_scope" && error.errorMessage.includes("AADSTS70011:"), `${error}`);
// Consent: the Azure CLI is pre-authorized for orders-mcp only, so asking for an orders-api
// scope with the signed-in user's refresh token is what Entra refuses with AADSTS65001; MSAL
// Node says the user must sign in interactively. (Last: the emulator spends a refresh token
// even on a refused request.)
const notConsented = API_DEFAULT.replace(".default", "Orders.Read");
error = await refusal(() => pub.acquireTokenSilent({ account: accounts[0], scopes: [notConsented], forceRefresh: true }));
check(
  error instanceof InteractionRequiredAuthError && error.errorMessage.includes("AADSTS65001:"),
  `${error} ${error.subError}`,
);
console.log(
  "ok refusals: invalid_client AADSTS7000215, invalid_scope AADSTS1002012 and AADSTS70011, AADSTS65001 (InteractionRequiredAuthError)",
);
