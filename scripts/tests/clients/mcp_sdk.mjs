// The official MCP TypeScript SDK's client, with its own OAuth support, given nothing but
// orders-mcp's URL: it gets 401, follows the protected resource metadata to the authorization
// server's metadata, signs the user in with auth code + PKCE and calls a tool. Run by
// scripts/tests/clients.rs; prints "ok <step>" lines, and the first failure ends the program
// with a non-zero code.
//
// Entra offers no dynamic client registration, so the provider hands the SDK a pre-registered
// public client id: the one orders-mcp's registration pre-authorizes for `access_as_user`
// (VS Code's, the client VS Code's MCP support signs in with against Entra). This is how
// Entra-backed MCP servers are documented to work ("Secure a Model Context Protocol server with
// Microsoft Entra ID"; P. Fox, "Building MCP servers with Entra ID and pre-authorized clients",
// 2026: pre-registration is the only supported path). The issuer stamped on it binds it to the
// emulator's tenant, so the SDK never presents it to another authorization server.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

import { check, env, signInThroughForm } from "./harness.mjs";

const REDIRECT = "http://localhost:33418/";
const seen = [];

/** What the SDK asks of an application: where to send the user, and where to keep things. The
 * "browser" here signs alice in on the emulator's login form and keeps the code it returns. */
class PreRegisteredClient {
  code = undefined;
  #tokens = undefined;
  #verifier = undefined;
  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata() {
    return { client_name: "orders-copilot client test", redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" };
  }
  clientInformation() {
    return { client_id: env.VSCODE_CLIENT_ID, issuer: `${env.AUTHORITY}/v2.0` };
  }
  tokens() {
    return this.#tokens;
  }
  saveTokens(tokens) {
    this.#tokens = tokens;
  }
  saveCodeVerifier(verifier) {
    this.#verifier = verifier;
  }
  codeVerifier() {
    return this.#verifier;
  }
  async redirectToAuthorization(url) {
    seen.push(url);
    const back = await signInThroughForm(url.href, "alice");
    check(back.href.startsWith(REDIRECT), `redirected to ${back.href}`);
    check(!back.searchParams.has("error"), `${back.searchParams.get("error")}: ${back.searchParams.get("error_description")}`);
    this.code = back.searchParams.get("code");
  }
}

/** Every request the SDK makes, so the test can say it discovered everything by itself. */
const requests = [];
async function recordingFetch(input, init) {
  const response = await fetch(input, init);
  requests.push(`${init?.method ?? "GET"} ${input instanceof Request ? input.url : String(input)} ${response.status}`);
  return response;
}

const provider = new PreRegisteredClient();
const url = new URL(env.MCP_URL);
const client = new Client({ name: "orders-copilot-client-test", version: "1" });
try {
  await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: recordingFetch }));
  throw new Error("orders-mcp let an unauthenticated client in");
} catch (error) {
  if (!(error instanceof UnauthorizedError)) throw error;
}
check(requests[0].startsWith(`POST ${url.href} 401`), requests);
check(
  requests.some((r) => r.includes("/.well-known/oauth-protected-resource") && r.endsWith(" 200")),
  requests,
);
check(requests.some((r) => r.includes("/.well-known/openid-configuration") && r.endsWith(" 200")), requests);
console.log("ok 401, protected resource metadata, authorization server metadata");

check(seen.length === 1, seen);
const authorize = seen[0].searchParams;
check(seen[0].href.startsWith(`${env.AUTHORITY}/oauth2/v2.0/authorize`), seen[0].href);
check(authorize.get("client_id") === env.VSCODE_CLIENT_ID, authorize.toString());
check(authorize.get("code_challenge_method") === "S256", authorize.toString());
check(authorize.get("resource") === url.href, `the SDK sends RFC 8707 resource: ${authorize.toString()}`);
check(authorize.get("scope").split(" ").includes(env.MCP_SCOPE), authorize.toString());
check(!requests.some((r) => r.includes("/register")), `no dynamic client registration: ${requests}`);
console.log(`ok auth code + PKCE as the pre-authorized VS Code client (scope ${authorize.get("scope")})`);

const transport = new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: recordingFetch });
await transport.finishAuth(provider.code);
check(provider.tokens()?.access_token, "the SDK redeemed the code");
await client.connect(transport);
const { tools } = await client.listTools();
check(tools.some((t) => t.name === "list_orders"), tools.map((t) => t.name));
const result = await client.callTool({ name: "list_orders", arguments: {} });
check(!result.isError, result);
console.log(`ok tools/call list_orders as alice: ${JSON.stringify(result.structuredContent ?? result.content).slice(0, 200)}`);
await client.close();
