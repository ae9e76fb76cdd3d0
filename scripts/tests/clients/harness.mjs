// What every Node client program shares: the stack's addresses from the environment (set by
// scripts/tests/clients.rs), a failing check, the emulator's login form driven as a browser
// submits it, and the services' verdict on a token. The emulator's CA is trusted the way a Node
// developer trusts it (NODE_EXTRA_CA_CERTS), never by turning verification off.

export const env = process.env;

export function check(condition, what) {
  if (!condition) {
    throw new Error(typeof what === "string" ? what : JSON.stringify(what));
  }
}

function unescape(text) {
  return text
    .replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");
}

/** A browser on the emulator's login page: the user's button submits a form, and the answer is
 * a redirect back to the client; returns that redirect's URL (with the code). */
export async function signInThroughForm(authUri, user) {
  const page = await fetch(authUri, { redirect: "manual" });
  const text = await page.text();
  check(page.status === 200, `login page: ${page.status} ${text.slice(0, 300)}`);
  const button = text.indexOf(`data-user="${user}"`);
  check(button >= 0, `no button for ${user} on the login page`);
  const form = text.slice(text.lastIndexOf("<form", button), button);
  const action = new URL(unescape(/action="([^"]*)"/.exec(form)[1]), page.url);
  const fields = new URLSearchParams();
  for (const [, name, value] of form.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)"/g)) {
    fields.append(unescape(name), unescape(value));
  }
  const answer = await fetch(action, { method: "POST", body: fields, redirect: "manual" });
  check([302, 303].includes(answer.status), `sign-in: ${answer.status} ${(await answer.text()).slice(0, 300)}`);
  return new URL(answer.headers.get("location"));
}

/** orders-mcp validates the token on an MCP initialize request. */
export async function mcpAccepts(token) {
  const answer = await fetch(env.MCP_URL, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      Accept: "application/json, text/event-stream",
      "Content-Type": "application/json",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "node-client-test", version: "1" } },
    }),
  });
  check(answer.status === 200, `orders-mcp refused the token: ${answer.status} ${(await answer.text()).slice(0, 300)}`);
}

/** orders-api's answer to listing orders with `token`. */
export async function apiAnswer(token) {
  const answer = await fetch(`${env.API_URL}/api/orders`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: answer.status, text: await answer.text() };
}
