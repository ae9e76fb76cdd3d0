"""azure-identity's ManagedIdentityCredential against the managed-identity broker, as a container
on the developer's machine uses it (IDENTITY_ENDPOINT, IDENTITY_HEADER: the App Service shape).
Azure OpenAI's resource gets the developer's token; another resource (ARM) is refused."""

import os

from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential

credential = ManagedIdentityCredential()
token = credential.get_token("https://cognitiveservices.azure.com/.default").token
if token != os.environ["EXPECTED_TOKEN"]:
    raise AssertionError(f"unexpected token from the broker: {token[:12]}...")
print("ok Azure OpenAI token from the broker")

try:
    credential.get_token("https://management.azure.com/.default")
except ClientAuthenticationError as e:
    if "does not issue tokens" not in str(e):
        raise AssertionError(f"refused, but not by the allow-list: {e}") from e
    print("ok ARM refused")
else:
    raise AssertionError("the broker issued the developer's ARM token")
