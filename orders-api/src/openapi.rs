//! The OpenAPI 3.1 document. Routes document themselves (`#[utoipa::path]` next to each
//! handler, collected by utoipa-axum as the router is built, so a route cannot exist
//! undocumented); this module adds what they share: the problem schema, the reusable error
//! responses, the bearer security scheme, and the RFC 9728 metadata route that entra-auth serves.

use std::borrow::Cow;

use entra_auth::hop::HOP_HEADER;
use entra_auth::metadata::{ProtectedResourceMetadata, WELL_KNOWN};
use url::Url;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, PartialSchema, ToResponse, ToSchema};

/// The security scheme name operations refer to.
pub const BEARER: &str = "entra";
pub const ORDERS_TAG: &str = "orders";
pub const OPERATIONS_TAG: &str = "operations";

pub const HOP_HEADER_DESCRIPTION: &str = "This hop's record for the hop trace: base64url (no padding) of a JSON `Hop` \
     (service, token summary, how the token arrived, decision, elapsed_ms). Present whenever the bearer token was \
     valid, including on refusals after that (403, 404, 409, ...); never contains the token itself.";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Orders API",
        description = "The orders REST API at the end of the Orders Copilot identity chain. Every call needs an Entra \
            access token for this API (v1, audience `api://<tenant id>/orders-api-<suffix>`); a user sees and changes only their \
            own orders, unless they hold the `Orders.Admin` app role. Errors are RFC 9457 problem+json, with `type` \
            `urn:orders-copilot:problem:<slug>`."
    ),
    tags(
        (name = ORDERS_TAG, description = "A signed-in user's orders."),
        (name = OPERATIONS_TAG, description = "Health, readiness and this documentation.")
    ),
    components(
        schemas(ProblemSchema),
        responses(
            BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType,
            Unprocessable, Unavailable
        )
    ),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        http.description = Some(
            "An Entra ID access token for this API (RS256). The scopes listed on each operation are delegated scopes \
             (`scp`); delete also needs the `Orders.Admin` app role (`roles`)."
                .into(),
        );
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(BEARER, SecurityScheme::Http(http));
        }
    }
}

/// Completes the document once every route is in it: the hop header on the answers of the
/// routes that take a token; then what depends on the deployment, the server URL and the
/// RFC 9728 metadata route(s) for it, as [`ProtectedResourceMetadata::router`] serves them.
pub fn finish(mut openapi: OpenApi, public_url: &Url) -> OpenApi {
    add_hop_header(&mut openapi);
    openapi.servers = Some(vec![Server::new(public_url.as_str().trim_end_matches('/'))]);
    let specific = ProtectedResourceMetadata::url_for(public_url).path().to_string();
    let mut paths = vec![specific.clone()];
    if specific != WELL_KNOWN {
        paths.push(WELL_KNOWN.to_string());
    }
    let ok = ResponseBuilder::new()
        .description("Where and how to get a token for this API (RFC 9728 §3.2).")
        .content("application/json", ContentBuilder::new().schema(Some(metadata_schema())).build())
        .build();
    for path in paths {
        let operation = OperationBuilder::new()
            .tag(OPERATIONS_TAG)
            .operation_id(Some(if path == WELL_KNOWN {
                "protected_resource_metadata"
            } else {
                "protected_resource_metadata_for_path"
            }))
            .summary(Some("OAuth 2.0 Protected Resource Metadata (RFC 9728)"))
            .response("200", ok.clone())
            .build();
        openapi.paths.add_path_operation(path, vec![HttpMethod::Get], operation);
    }
    openapi
}

/// Every answer of an operation that takes a token carries this hop's record, so it is stated
/// here rather than on each handler. The shared error responses (components) say for themselves
/// whether they carry it: a `401` had no valid token, so it has no hop.
fn add_hop_header(openapi: &mut OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten().filter(|o| o.security.is_some()) {
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response.headers.entry(HOP_HEADER.to_string()).or_insert_with(hop_header);
                }
            }
        }
    }
}

fn string_array() -> ArrayBuilder {
    ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String))
}

fn metadata_schema() -> Schema {
    ObjectBuilder::new()
        .property(
            "resource",
            ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::Custom("uri".into()))),
        )
        .required("resource")
        .property("authorization_servers", string_array())
        .required("authorization_servers")
        .property("scopes_supported", string_array())
        .required("scopes_supported")
        .property("bearer_methods_supported", string_array())
        .required("bearer_methods_supported")
        .property("resource_name", ObjectBuilder::new().schema_type(Type::String))
        .property("resource_documentation", ObjectBuilder::new().schema_type(Type::String))
        .into()
}

/// The `Problem` schema: [`service_kit::problem::Problem`] as JSON.
pub struct ProblemSchema;

impl PartialSchema for ProblemSchema {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        ObjectBuilder::new()
            .description(Some("An RFC 9457 problem."))
            .property(
                "type",
                string()
                    .description(Some("`urn:orders-copilot:problem:<slug>`, stable for clients to match on."))
                    .pattern(Some("^urn:orders-copilot:problem:[a-z0-9-]+$")),
            )
            .required("type")
            .property("title", string().description(Some("The HTTP status text.")))
            .required("title")
            .property("status", ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(400)).maximum(Some(599)))
            .required("status")
            .property("detail", string().description(Some("What went wrong, for a person; never contains a token.")))
            .required("detail")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl ToSchema for ProblemSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Problem")
    }
}

fn hop_header() -> Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[A-Za-z0-9_-]+$")))
        .description(Some(HOP_HEADER_DESCRIPTION))
        .build()
}

fn challenge_header() -> Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some("RFC 6750 challenge: `Bearer error=\"...\", resource_metadata=\"<RFC 9728 metadata URL>\"`."))
        .build()
}

fn problem(description: &str, challenge: bool, hop: bool) -> Response {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(ProblemSchema::name()))).build();
    let mut response =
        ResponseBuilder::new().description(description).content(service_kit::problem::CONTENT_TYPE, content);
    if challenge {
        response = response.header("WWW-Authenticate", challenge_header());
    }
    if hop {
        response = response.header(HOP_HEADER, hop_header());
    }
    response.build()
}

/// Declares a reusable problem response component.
macro_rules! problem_response {
    ($name:ident, $description:expr, challenge = $challenge:expr, hop = $hop:expr) => {
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), RefOr::T(problem($description, $challenge, $hop)))
            }
        }
    };
}

problem_response!(
    BadRequest,
    "Malformed request (slug `bad-request`): JSON syntax, order id format, query parameters or Idempotency-Key header; or a malformed `Authorization` (slug `invalid-request`: two of them, a token in the query string, `Bearer` without a token; challenge `error=\"invalid_request\"`, RFC 6750 §3.1).",
    challenge = true,
    hop = true
);
problem_response!(
    Unauthorized,
    "No valid token (slugs `missing-token`, also for another scheme than Bearer, and `invalid-token`); or an agent's write under `ORDERS_API_AGENT_POLICY=approved-writes` without the user's step-up (slug `step-up-required`, a claims challenge: `error=\"insufficient_claims\"`, `claims` = base64 of the authentication context request).",
    challenge = true,
    hop = false
);
problem_response!(
    Forbidden,
    "Valid token without the required scope, or an app-only token (slug `insufficient-scope`, challenge with the scope's full value); or without the required app role (slug `missing-role`, no challenge: no other scope adds a role); or a user's token issued to an application other than orders-mcp (slug `client-refused`, no challenge); or an agent's token that `ORDERS_API_AGENT_POLICY` refuses (slug `agent-refused`, no challenge).",
    challenge = true,
    hop = true
);
problem_response!(
    NotFound,
    "No such order for this caller (slug `not-found`); another user's order answers the same.",
    challenge = false,
    hop = true
);
problem_response!(
    Conflict,
    "The order's status does not allow this (slug `conflict`): only pending or processing orders can be cancelled.",
    challenge = false,
    hop = true
);
problem_response!(PayloadTooLarge, "Body over 64 KiB (slug `payload-too-large`).", challenge = false, hop = true);
problem_response!(
    UnsupportedMediaType,
    "Body not sent as application/json (slug `unsupported-media-type`).",
    challenge = false,
    hop = true
);
problem_response!(
    Unprocessable,
    "Invalid content (slug `validation`: unknown field, wrong type, quantity outside 1..=1000, product empty or over \
     200 characters), or an Idempotency-Key reused with a different body (slug `idempotency-key-reused`).",
    challenge = false,
    hop = true
);
problem_response!(
    Unavailable,
    "The identity provider's keys cannot be loaded (slug `identity-provider-unavailable`, no challenge: the token \
     may be fine), or the order store cannot answer (slug `unavailable`).",
    challenge = false,
    hop = true
);
