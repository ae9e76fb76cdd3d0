"""MSAL Python and azure-identity, unmodified, against the Entra emulator over HTTPS.

Run by scripts/tests/clients.rs, which starts the emulator (--tls), orders-api and orders-mcp
and passes their addresses in the environment; the emulator's CA is trusted the way a Python
developer trusts it (REQUESTS_CA_BUNDLE / SSL_CERT_FILE), never by turning verification off.
Prints "ok <flow>" for each flow; the first failure raises, so the exit code is not 0.
"""

import html
import os
import re
import threading
import time
import urllib.parse

import msal
import requests
from azure.identity import ManagedIdentityCredential

E = os.environ
AUTHORITY = E["AUTHORITY"]  # https://127.0.0.1:<port>/<tenant id>
MCP_SCOPE = E["MCP_SCOPE"]  # orders-mcp's access_as_user
API_DEFAULT = E["API_DEFAULT"]  # orders-api's /.default
MCP_URL = E["MCP_URL"]
API_URL = E["API_URL"]
PUBLIC_CLIENT = E["PUBLIC_CLIENT_ID"]  # the Azure CLI, pre-authorized for orders-mcp
REDIRECT = "http://localhost:8400"


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def token_of(result, what):
    """MSAL answers a dict: the token, or Entra's error fields."""
    check("access_token" in result, f"{what}: {result.get('error')}: {result.get('error_description')}")
    return result["access_token"]


def sign_in_through_form(auth_uri, user):
    """A browser on the emulator's login page: the user's button submits a form, and the answer
    is a redirect back to the client with the code."""
    browser = requests.Session()
    page = browser.get(auth_uri, allow_redirects=False)
    check(page.status_code == 200, f"login page: {page.status_code} {page.text[:300]}")
    button = page.text.index(f'data-user="{user}"')
    form = page.text[page.text.rindex("<form", 0, button) : button]
    action = html.unescape(re.search(r'action="([^"]*)"', form).group(1))
    fields = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', form)
    }
    answer = browser.post(action, data=fields, allow_redirects=False)
    check(answer.status_code in (302, 303), f"sign-in: {answer.status_code} {answer.text[:300]}")
    location = urllib.parse.urlsplit(answer.headers["location"])
    check(location.geturl().startswith(REDIRECT), f"redirected to {location.geturl()}")
    return dict(urllib.parse.parse_qsl(location.query))


def mcp_accepts(token):
    """orders-mcp validates the token on an MCP initialize request."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "msal-python-test", "version": "1"},
        },
    }
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    answer = requests.post(MCP_URL, json=body, headers=headers)
    check(answer.status_code == 200, f"orders-mcp refused the token: {answer.status_code} {answer.text[:300]}")


def api_status(token):
    answer = requests.get(f"{API_URL}/api/orders", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code, answer


def main():
    public = msal.PublicClientApplication(PUBLIC_CLIENT, authority=AUTHORITY, instance_discovery=False)

    # Authorization code + PKCE, completed through the emulator's login form.
    flow = public.initiate_auth_code_flow([MCP_SCOPE], redirect_uri=REDIRECT)
    check(flow["auth_uri"].startswith(AUTHORITY + "/oauth2/v2.0/authorize"), flow["auth_uri"])
    check("code_challenge=" in flow["auth_uri"], "MSAL sends PKCE")
    result = public.acquire_token_by_auth_code_flow(flow, sign_in_through_form(flow["auth_uri"], "alice"))
    user_token = token_of(result, "auth code")
    check(result["id_token_claims"]["preferred_username"] == "alice@contoso.example", result["id_token_claims"])
    mcp_accepts(user_token)
    print("ok authorization code + PKCE through the login form (orders-mcp accepts the token)")

    # Refresh: MSAL's cache redeems the refresh token.
    accounts = public.get_accounts()
    check(len(accounts) == 1 and accounts[0]["username"] == "alice@contoso.example", accounts)
    refreshed = public.acquire_token_silent([MCP_SCOPE], account=accounts[0], force_refresh=True)
    check(refreshed is not None, "a refresh token was cached")
    refreshed_token = token_of(refreshed, "refresh")
    check(refreshed_token != user_token, "a new access token")
    mcp_accepts(refreshed_token)
    print("ok refresh token (acquire_token_silent, force_refresh)")

    # On-Behalf-Of: orders-mcp's registration exchanges the user's token for orders-api.
    middle = msal.ConfidentialClientApplication(
        E["MCP_CLIENT_ID"], client_credential=E["MCP_CLIENT_SECRET"], authority=AUTHORITY, instance_discovery=False
    )
    obo = token_of(middle.acquire_token_on_behalf_of(user_token, [API_DEFAULT]), "on-behalf-of")
    status, answer = api_status(obo)
    check(status == 200, f"orders-api refused the OBO token: {status} {answer.text[:300]}")
    print("ok on-behalf-of (orders-api accepts the token and lists alice's orders)")

    # Client credentials: an app-only token orders-api validates, then refuses as not a user.
    app = msal.ConfidentialClientApplication(
        E["CHAT_CLIENT_ID"], client_credential=E["CHAT_CLIENT_SECRET"], authority=AUTHORITY, instance_discovery=False
    )
    app_token = token_of(app.acquire_token_for_client([API_DEFAULT]), "client credentials")
    status, answer = api_status(app_token)
    check(status == 403 and "insufficient-scope" in answer.text, f"app-only token: {status} {answer.text[:300]}")
    status, _ = api_status(app_token[:-4] + "AAAA")
    check(status == 401, f"a tampered token: {status}")
    print("ok client credentials (orders-api validates it: 403 app-only, a tampered copy 401)")

    # Device code: the user approves on the verification page while MSAL polls.
    device = public.initiate_device_flow([MCP_SCOPE])
    check("user_code" in device, device)

    def approve():
        time.sleep(1)
        form = {"user_code": device["user_code"], "login": "carol", "password": "carol", "decision": "approve"}
        done = requests.post(device["verification_uri"], data=form)
        check("signed in" in done.text, done.text[:300])

    approver = threading.Thread(target=approve)
    approver.start()
    device_token = token_of(public.acquire_token_by_device_flow(device), "device code")
    approver.join()
    mcp_accepts(device_token)
    print("ok device code")

    # Refusals surface in MSAL as MSAL users know them.
    wrong = msal.ConfidentialClientApplication(
        E["CHAT_CLIENT_ID"], client_credential="not-the-secret", authority=AUTHORITY, instance_discovery=False
    )
    refused = wrong.acquire_token_for_client([API_DEFAULT])
    check(refused.get("error") == "invalid_client", refused)
    check(refused["error_description"].startswith("AADSTS7000215"), refused["error_description"])
    unknown = public.initiate_device_flow([MCP_SCOPE.rsplit("/", 1)[0] + "/no_such_scope"])
    check(unknown.get("error") == "invalid_scope", unknown)
    consent = public.initiate_device_flow([API_DEFAULT.replace(".default", "Orders.Read")])
    check("AADSTS65001" in consent.get("error_description", ""), consent)
    print("ok refusals: invalid_client AADSTS7000215, invalid_scope, AADSTS65001 (consent)")

    # azure-identity: ManagedIdentityCredential finds the App Service endpoint
    # (IDENTITY_ENDPOINT, IDENTITY_HEADER) the emulator serves.
    credential = ManagedIdentityCredential(client_id=E["MANAGED_IDENTITY_CLIENT_ID"])
    mi_token = credential.get_token(API_DEFAULT).token
    status, answer = api_status(mi_token)
    check(status == 403 and "insufficient-scope" in answer.text, f"managed identity token: {status} {answer.text[:300]}")
    print("ok azure-identity ManagedIdentityCredential (App Service endpoint; orders-api validates the token)")


if __name__ == "__main__":
    main()
