//! The bad-token battery: every way of presenting a token that a protected resource must refuse.
//!
//! Each service's tests send every [`Case`] to every protected route and check the answer with
//! [`Case::check`]: the RFC 6750 answer (`401` with a bare challenge when there is no bearer
//! token, `400` `invalid_request` for a malformed request, `401` `invalid_token`, or `403`
//! `insufficient_scope` for a valid token that lacks the right scope or user), its challenge
//! well-formed and pointing at the resource metadata, and never the token echoed back. Tokens
//! are built from a valid baseline issued by the emulator, so each case differs from an
//! accepted token in exactly one way.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::keys::SigningKey;
use crate::state::Emulator;

/// What the resource must answer (RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `401` with a bare challenge, no error code: no credentials, or not a bearer token
    /// ("an unsupported authentication method").
    NoCredentials,
    /// `400` `invalid_request`: a malformed request (the token in two places, two headers, a
    /// header that is not ASCII, the scheme without a token).
    BadRequest,
    /// `401` `invalid_token` (a malformed or invalid token).
    Unauthorized,
    /// `403` with `error="insufficient_scope"` (a valid token without the right scope or user).
    Forbidden,
}

/// One bad request.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// `Authorization` header values to send: none, one, or several.
    pub authorization: Vec<Vec<u8>>,
    /// A query string to append (`access_token=...`).
    pub query: Option<String>,
    pub expect: Expect,
}

/// The resource under attack and a request it accepts.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Manifest name of the resource app (`orders-api`, `orders-mcp`).
    pub resource: &'a str,
    /// Manifest name of the client the valid token is issued to.
    pub client: &'a str,
    pub user: &'a str,
    /// Scopes that make the token pass the route's policy.
    pub scopes: &'a [&'a str],
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

impl Case {
    fn new(name: impl Into<String>, expect: Expect, authorization: Vec<Vec<u8>>) -> Self {
        Case { name: name.into(), authorization, query: None, expect }
    }

    fn token(name: impl Into<String>, token: &str) -> Self {
        Case::new(name, Expect::Unauthorized, vec![bearer(token)])
    }

    /// Checks a response to this case; `Err` says what was wrong.
    pub fn check(&self, status: u16, www_authenticate: Option<&str>, body: &str) -> Result<(), String> {
        let name = &self.name;
        let (expected, error) = match self.expect {
            Expect::NoCredentials => (401, None),
            Expect::BadRequest => (400, Some("invalid_request")),
            Expect::Unauthorized => (401, Some("invalid_token")),
            Expect::Forbidden => (403, Some("insufficient_scope")),
        };
        if status != expected {
            return Err(format!("{name}: expected {expected}, got {status} ({body})"));
        }
        let challenge = www_authenticate.ok_or_else(|| format!("{name}: no WWW-Authenticate header"))?;
        let params = challenge_params(challenge).map_err(|why| format!("{name}: {why}: {challenge}"))?;
        let param = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        if param("resource_metadata").is_none() {
            return Err(format!("{name}: challenge lacks resource_metadata: {challenge}"));
        }
        if param("error") != error {
            return Err(format!("{name}: expected error {error:?}: {challenge}"));
        }
        for value in &self.authorization {
            let text = String::from_utf8_lossy(value);
            let token = text.rsplit(' ').next().unwrap_or_default();
            if token.len() > 16 && (body.contains(token) || challenge.contains(token)) {
                return Err(format!("{name}: the response echoes the token"));
            }
        }
        Ok(())
    }
}

/// A `Bearer` challenge's parameters, each `name="value"` (RFC 7235 §4.1 with quoted values,
/// as RFC 6750 §3 writes them), with values only of the characters RFC 6750 §3 allows
/// (%x20-21 / %x23-5B / %x5D-7E): a `"` inside a value ends it early, and a strict client then
/// cannot read the challenge (nor find `resource_metadata` in it).
pub fn challenge_params(challenge: &str) -> Result<Vec<(String, String)>, String> {
    let mut rest = challenge.strip_prefix("Bearer ").ok_or("not a Bearer challenge")?;
    let mut params = Vec::new();
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").ok_or("a parameter that is not name=\"value\"")?;
        let (value, after) = after.split_once('"').ok_or("an unterminated quoted value")?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("a bad parameter name {name:?}"));
        }
        if !value.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)) {
            return Err(format!("a value RFC 6750 does not allow in {name}"));
        }
        params.push((name.to_string(), value.to_string()));
        rest = match after.strip_prefix(", ") {
            Some(next) => next,
            None if after.is_empty() => after,
            None => return Err(format!("{after:?} after the value of {name}")),
        };
    }
    Ok(params)
}

/// Builds the battery against `target`. Also returns a token the target accepts, so callers
/// can check the route works at all (a battery against a route that refuses everything proves
/// nothing).
pub fn cases(emulator: &Emulator, target: &Target) -> anyhow::Result<(String, Vec<Case>)> {
    let claims = emulator.user_claims(target.user, target.client, target.resource, target.scopes)?;
    let valid = emulator.sign(&claims)?;
    let kid = emulator.current_kid();
    let header = json!({ "typ": "JWT", "alg": "RS256", "kid": kid });
    let attacker = SigningKey::generate()?;
    let now = service_kit::clock::unix_now_i64();

    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| -> anyhow::Result<String> {
        let mut c = claims.clone();
        if let Some(map) = c.as_object_mut() {
            f(map);
        }
        emulator.sign(&c)
    };
    let with_header = |h: Value| emulator.sign_with_header(&h, &claims);
    let parts: Vec<&str> = valid.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);

    let mut cases = vec![
        Case::new("no Authorization header", Expect::NoCredentials, vec![]),
        // A header value's trailing space is not part of it (RFC 9110 §5.5): this is `Bearer` alone.
        Case::new("empty bearer token", Expect::BadRequest, vec![b"Bearer ".to_vec()]),
        Case::new("scheme without token", Expect::BadRequest, vec![b"Bearer".to_vec()]),
        Case::new("Basic scheme", Expect::NoCredentials, vec![b"Basic YWxpY2U6YWxpY2U=".to_vec()]),
        Case::new("token without scheme", Expect::NoCredentials, vec![valid.clone().into_bytes()]),
        Case::new("duplicate Authorization headers", Expect::BadRequest, vec![bearer(&valid), bearer(&valid)]),
        Case::new(
            "two schemes in one header",
            Expect::Unauthorized,
            vec![format!("Bearer {valid}, Bearer {valid}").into_bytes()],
        ),
        Case::new("double space before token", Expect::Unauthorized, vec![format!("Bearer  {valid}").into_bytes()]),
        Case::new("non-ASCII Authorization header", Expect::BadRequest, vec!["Bearer t\u{f6}ken".as_bytes().to_vec()]),
        Case {
            query: Some(format!("access_token={valid}")),
            ..Case::new("token only in the query string", Expect::BadRequest, vec![])
        },
        Case {
            query: Some(format!("access_token={valid}")),
            ..Case::new("token in query and header", Expect::BadRequest, vec![bearer(&valid)])
        },
        Case::token("alg none, no signature", &format!("{}.{p}.", b64(&json!({"alg": "none", "typ": "JWT"})))),
        Case::token(
            "alg none with the original signature",
            &format!("{}.{p}.{s}", b64(&json!({"alg": "none", "kid": kid}))),
        ),
        Case::token("alg None (capitalised)", &format!("{}.{p}.{s}", b64(&json!({"alg": "None", "kid": kid})))),
        Case::token("alg rs256 (lower case)", &format!("{}.{p}.{s}", b64(&json!({"alg": "rs256", "kid": kid})))),
        Case::token(
            "HS256 keyed with the public key",
            &hmac_token(&json!({"alg": "HS256", "typ": "JWT", "kid": kid}), &claims, emulator)?,
        ),
        Case::token(
            "HS512 keyed with the public key",
            &hmac_token(&json!({"alg": "HS512", "typ": "JWT", "kid": kid}), &claims, emulator)?,
        ),
        Case::token("ES256 header", &format!("{}.{p}.{s}", b64(&json!({"alg": "ES256", "kid": kid})))),
        Case::token("PS256 header", &with_header(json!({"alg": "PS256", "typ": "JWT", "kid": kid}))?),
        Case::token("RS384 header", &with_header(json!({"alg": "RS384", "typ": "JWT", "kid": kid}))?),
        Case::token("RS512 header", &with_header(json!({"alg": "RS512", "typ": "JWT", "kid": kid}))?),
        Case::token("unknown kid", &with_header(json!({"alg": "RS256", "typ": "JWT", "kid": "not-a-published-key"}))?),
        Case::token("missing kid", &with_header(json!({"alg": "RS256", "typ": "JWT"}))?),
        Case::token("empty kid", &with_header(json!({"alg": "RS256", "typ": "JWT", "kid": ""}))?),
        Case::token("kid as a number", &with_header(json!({"alg": "RS256", "typ": "JWT", "kid": 7}))?),
        Case::token("crit header", &with_header(json!({"alg": "RS256", "typ": "JWT", "kid": kid, "crit": ["exp"]}))?),
        Case::token("header is a JSON array", &format!("{}.{p}.{s}", b64(&json!(["RS256"])))),
        Case::token("signed by another key under the real kid", &attacker.sign_parts(&header, &claims)?),
        Case::token(
            "signed by another key under its own kid",
            &attacker.sign_parts(&json!({"alg": "RS256", "kid": attacker.kid}), &claims)?,
        ),
        Case::token(
            "jku header injection",
            &attacker
                .sign_parts(&json!({"alg": "RS256", "kid": attacker.kid, "jku": "http://127.0.0.1:9/keys"}), &claims)?,
        ),
        Case::token(
            "x5u header injection",
            &attacker.sign_parts(
                &json!({"alg": "RS256", "kid": attacker.kid, "x5u": "http://127.0.0.1:9/cert.pem"}),
                &claims,
            )?,
        ),
        Case::token(
            "jwk header injection",
            &attacker
                .sign_parts(&json!({"alg": "RS256", "kid": attacker.kid, "jwk": attacker.public_jwk()}), &claims)?,
        ),
        Case::token(
            "tampered payload",
            &format!("{h}.{}.{s}", b64(&tampered(&claims, "oid", json!("00000000-0000-0000-0000-000000000000")))),
        ),
        Case::token(
            "tampered header",
            &format!("{}.{p}.{s}", b64(&json!({"alg": "RS256", "typ": "JOSE", "kid": kid}))),
        ),
        Case::token("stripped signature", &format!("{h}.{p}.")),
        Case::token("truncated signature", &format!("{h}.{p}.{}", &s[..s.len() / 2])),
        Case::token(
            "signature of another token",
            &format!(
                "{h}.{p}.{}",
                emulator.sign(&tampered(&claims, "uti", json!("x")))?.rsplit('.').next().unwrap_or_default()
            ),
        ),
        Case::token("malformed base64 in the header", &format!("!!{h}.{p}.{s}")),
        Case::token("malformed base64 in the payload", &format!("{h}.{p}%%.{s}")),
        Case::token("payload is not JSON", &format!("{h}.{}.{s}", URL_SAFE_NO_PAD.encode(b"not json"))),
        Case::token("two segments", &format!("{h}.{p}")),
        Case::token("four segments", &format!("{h}.{p}.{s}.{s}")),
        Case::token("five segments (JWE shape)", &format!("{h}.{p}.{s}.{s}.{s}")),
        Case::token("oversize token", &format!("{h}.{}.{s}", "A".repeat(20 * 1024))),
        Case::token(
            "expired",
            &with(&|c| {
                c.insert("exp".into(), json!(now - 3600));
                c.insert("nbf".into(), json!(now - 7200));
                c.insert("iat".into(), json!(now - 7200));
            })?,
        ),
        Case::token(
            "not valid yet (nbf in the future)",
            &with(&|c| {
                c.insert("nbf".into(), json!(now + 3600));
            })?,
        ),
        Case::token(
            "missing exp",
            &with(&|c| {
                c.remove("exp");
            })?,
        ),
        Case::token(
            "missing nbf",
            &with(&|c| {
                c.remove("nbf");
            })?,
        ),
        Case::token(
            "exp as a string",
            &with(&|c| {
                c.insert("exp".into(), json!((now + 3600).to_string()));
            })?,
        ),
        Case::token(
            "wrong audience",
            &with(&|c| {
                c.insert("aud".into(), json!("api://some-other-api"));
            })?,
        ),
        Case::token(
            "audience as an array",
            &with(&|c| {
                let aud = c.get("aud").cloned().unwrap_or_default();
                c.insert("aud".into(), json!([aud, "api://some-other-api"]));
            })?,
        ),
        Case::token(
            "missing audience",
            &with(&|c| {
                c.remove("aud");
            })?,
        ),
        Case::token(
            "wrong issuer",
            &with(&|c| {
                c.insert("iss".into(), json!("https://sts.example.com/evil/"));
            })?,
        ),
        Case::token(
            "issuer of another tenant",
            &with(&|c| {
                let other = "00000000-1111-2222-3333-444444444444";
                let iss = c.get("iss").and_then(Value::as_str).unwrap_or_default().replace(emulator.tenant_id(), other);
                c.insert("iss".into(), json!(iss));
                c.insert("tid".into(), json!(other));
            })?,
        ),
        Case::token(
            "tid of another tenant",
            &with(&|c| {
                c.insert("tid".into(), json!("00000000-1111-2222-3333-444444444444"));
            })?,
        ),
        Case::token(
            "missing tid",
            &with(&|c| {
                c.remove("tid");
            })?,
        ),
        Case::token("token version this resource does not accept", &other_version(emulator, &claims)?),
        Case::token(
            "ver claim contradicts the issuer",
            &with(&|c| {
                let ver = if c.get("ver").and_then(Value::as_str) == Some("1.0") { "2.0" } else { "1.0" };
                c.insert("ver".into(), json!(ver));
            })?,
        ),
        Case::token(
            "missing oid",
            &with(&|c| {
                c.remove("oid");
            })?,
        ),
        Case::token(
            "missing client (azp/appid)",
            &with(&|c| {
                c.remove("azp");
                c.remove("appid");
            })?,
        ),
        Case::token(
            "ID token for another app",
            &emulator.sign(&json!({
                "aud": emulator.manifest().apps.get("chat-app").map(|a| a.client_id.clone()).unwrap_or_default(),
                "iss": emulator.issuers().v2, "iat": now, "nbf": now, "exp": now + 600, "tid": emulator.tenant_id(),
                "oid": claims["oid"], "sub": "x", "ver": "2.0", "nonce": "n",
            }))?,
        ),
        Case::new(
            "app-only token (no user)",
            Expect::Forbidden,
            vec![bearer(&emulator.sign(&app_only(emulator, target, &claims)?)?)],
        ),
        Case::new(
            "valid token without the required scope",
            Expect::Forbidden,
            vec![bearer(&with(&|c| {
                c.insert("scp".into(), json!("Unrelated.Scope"));
            })?)],
        ),
        Case::new(
            "scope named in roles, not scp",
            Expect::Forbidden,
            vec![bearer(&with(&|c| {
                c.insert("scp".into(), json!("Unrelated.Scope"));
                c.insert("roles".into(), json!(target.scopes));
            })?)],
        ),
    ];
    for case in &mut cases {
        case.name = format!("{} [{}]", case.name, target.resource);
    }
    Ok((valid, cases))
}

fn tampered(claims: &Value, key: &str, value: Value) -> Value {
    let mut c = claims.clone();
    if let Some(map) = c.as_object_mut() {
        map.insert(key.into(), value);
    }
    c
}

/// HMAC-signed with the public key's JWK as the secret: the classic algorithm-confusion attack.
fn hmac_token(header: &Value, claims: &Value, emulator: &Emulator) -> anyhow::Result<String> {
    let secret = emulator.0.keys.jwks(&emulator.issuers().v2).to_string();
    let algorithm = if header["alg"] == "HS512" { hmac::HMAC_SHA512 } else { hmac::HMAC_SHA256 };
    let key = hmac::Key::new(algorithm, secret.as_bytes());
    let message = format!("{}.{}", b64(header), b64(claims));
    let tag = hmac::sign(&key, message.as_bytes());
    Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())))
}

/// The same token in the other version's shape (v1 issuer for a v2 resource, and vice versa).
fn other_version(emulator: &Emulator, claims: &Value) -> anyhow::Result<String> {
    let v1 = claims["ver"] == "1.0";
    let mut c = claims.clone();
    if let Some(map) = c.as_object_mut() {
        let issuers = emulator.issuers();
        map.insert("iss".into(), json!(if v1 { &issuers.v2 } else { &issuers.v1 }));
        map.insert("ver".into(), json!(if v1 { "2.0" } else { "1.0" }));
        if let Some(client) = map.remove(if v1 { "appid" } else { "azp" }) {
            map.insert(if v1 { "azp".into() } else { "appid".into() }, client);
        }
    }
    emulator.sign(&c)
}

/// An app-only token for the target's resource: the client acting as itself.
fn app_only(emulator: &Emulator, target: &Target, user_claims: &Value) -> anyhow::Result<Value> {
    let client = if emulator.manifest().app(target.client).is_some() { target.client } else { target.resource };
    let mut c = emulator.app_claims(client, target.resource)?;
    // Keep the audience the user token had, so only "no user" differs.
    if let (Some(map), Some(aud)) = (c.as_object_mut(), user_claims.get("aud")) {
        map.insert("aud".into(), aud.clone());
    }
    Ok(c)
}
