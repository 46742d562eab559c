//! The Entra ID client-credentials token endpoints (management-api.md §4): v1
//! `POST /{tenant}/oauth2/token` (numbers as strings) and v2 `POST /{tenant}/oauth2/v2.0/token`,
//! credentials in the form body or HTTP Basic, errors in Entra's exact shape, JWT-shaped tokens.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA};
use http::{HeaderMap, HeaderValue, StatusCode};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use url::form_urlencoded;

use super::control::{IssuedToken, SimControl};
use super::faults::chance;
use super::tenant::{Stream, guid, seeded};
use super::{SimSpec, json_response};

/// `POST /{tenant}/oauth2/token` (v1) and `POST /{tenant}/oauth2/v2.0/token` (v2).
pub(super) fn routes() -> Router<Arc<SimControl>> {
    Router::new()
        .route("/{tenant}/oauth2/token", post(token_v1))
        .route("/{tenant}/oauth2/v2.0/token", post(token_v2))
}

/// The stable parts of the tokens this tenant's Entra signs.
pub(super) struct Signer {
    /// The signing certificate thumbprint, as `x5t` and `kid`.
    key_id: String,
    /// The service principal's object id, as `oid` and `sub`.
    principal_id: String,
}

impl Signer {
    /// The key id and principal derived from `seed` (its own identity stream).
    pub(super) fn new(seed: u64) -> Self {
        let mut rng = seeded(seed, Stream::Identity, 1, 0);
        Self {
            key_id: URL_SAFE_NO_PAD.encode(rng.random::<[u8; 20]>()),
            principal_id: guid(&mut rng),
        }
    }
}

/// An Entra client secret value, 40 characters: three letters or digits, a digit, `Q~`, then 34
/// characters of `[A-Za-z0-9._~-]` (e.g. `abc8Q~…`).
pub(super) fn client_secret(rng: &mut StdRng) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";
    let mut draw = |set: &[u8], n: usize| -> String {
        (0..n)
            .map(|_| char::from(set[rng.random_range(0..set.len())]))
            .collect()
    };
    let prefix = draw(ALNUM, 3);
    let digit = draw(b"0123456789", 1);
    format!("{prefix}{digit}Q~{}", draw(SECRET, 34))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    V1,
    V2,
}

async fn token_v1(
    State(sim): State<Arc<SimControl>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let trickle = sim.state().faults.trickle_tokens;
    super::faults::token_answer(token(&sim, Flavor::V1, &tenant, &headers, &body), trickle).await
}

async fn token_v2(
    State(sim): State<Arc<SimControl>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let trickle = sim.state().faults.trickle_tokens;
    super::faults::token_answer(token(&sim, Flavor::V2, &tenant, &headers, &body), trickle).await
}

fn token(
    sim: &SimControl,
    flavor: Flavor,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let now = sim.now();
    let mut guard = sim.state();
    let state = &mut *guard;
    state.stats.token_requests += 1;
    if chance(&mut state.rng, state.faults.token_error_rate) {
        let status = if state.rng.random_bool(0.5) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let error = EntraError::new(
            status,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.".into(),
        );
        return error.render(now, &mut state.rng);
    }
    if let Some(huge) = &state.faults.huge_token {
        return super::faults::huge_body(huge, b'{', b'}');
    }
    if chance(&mut state.rng, state.faults.token_echo) {
        let error = EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!(
                "The request could not be processed. Request body: {}",
                String::from_utf8_lossy(body)
            ),
        );
        return error.render(now, &mut state.rng);
    }
    let request = TokenRequest::parse(body, headers);
    let resource = match check(
        sim.spec(),
        sim.base(),
        state.secret_expired,
        flavor,
        tenant,
        &request,
    ) {
        Ok(_) if state.faults.no_service_principal => {
            return no_service_principal(sim.spec()).render(now, &mut state.rng);
        }
        Ok(resource) => resource,
        Err(error) => return error.render(now, &mut state.rng),
    };

    let spec = sim.spec();
    let (audience, roles) = audience_and_roles(sim, state, &resource);
    let lifetime = spec.token_lifetime.as_secs();
    let expires = TimeDelta::from_std(spec.token_lifetime)
        .ok()
        .and_then(|lifetime| now.checked_add_signed(lifetime))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let not_before = now.timestamp() - 300;
    let issuer = format!("https://sts.windows.net/{}/", spec.tenant_id);
    let header =
        json!({"typ": "JWT", "alg": "RS256", "x5t": sim.signer.key_id, "kid": sim.signer.key_id});
    let claims = json!({
        "aud": audience,
        "iss": issuer,
        "iat": not_before,
        "nbf": not_before,
        "exp": expires.timestamp(),
        "appid": spec.client_id,
        "appidacr": "1",
        "idp": issuer,
        "oid": sim.signer.principal_id,
        "roles": roles,
        "sub": sim.signer.principal_id,
        "tid": spec.tenant_id,
        "ver": "1.0",
    });
    let access_token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(state.rng.random::<[u8; 32]>())
    );
    let issued = IssuedToken {
        tenant: spec.tenant_id.clone(),
        roles,
        audience,
        expires,
    };
    state.tokens.insert(access_token.clone(), issued);
    state.stats.issued_tokens.push(access_token.clone());

    let mut body = match flavor {
        Flavor::V1 => json!({
            "token_type": "Bearer",
            "expires_in": lifetime.to_string(),
            "ext_expires_in": lifetime.to_string(),
            "expires_on": expires.timestamp().to_string(),
            "not_before": not_before.to_string(),
            "resource": resource,
            "access_token": access_token,
        }),
        Flavor::V2 => json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }),
    };
    if let Some(v) = &state.faults.token_expires_in {
        body["expires_in"] = v.clone();
    }
    entra_response(StatusCode::OK, &body)
}

/// The token's `aud` and `roles` for the resource asked: the Graph root's with the Graph roles,
/// else the API's (the base URL) with its roles.
fn audience_and_roles(
    sim: &SimControl,
    state: &super::control::State,
    resource: &str,
) -> (String, Vec<String>) {
    let graph_root = sim.graph_root();
    if resource
        .trim_end_matches('/')
        .eq_ignore_ascii_case(&graph_root)
    {
        (graph_root, state.graph_roles.clone())
    } else {
        (sim.base().to_owned(), state.roles.clone())
    }
}

/// AADSTS7000229: the app has no service principal in the tenant (consent was never granted
/// there; graph-audit-api.md, Permissions).
fn no_service_principal(spec: &SimSpec) -> EntraError {
    EntraError::new(
        StatusCode::BAD_REQUEST,
        "invalid_client",
        7000229,
        format!(
            "The client application {} is missing service principal in the tenant {}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
            spec.client_id, spec.tenant_id
        ),
    )
}

/// The form fields, plus client credentials from an HTTP Basic header.
struct TokenRequest {
    form: Vec<(String, String)>,
    basic: Option<(String, String)>,
}

impl TokenRequest {
    fn parse(body: &[u8], headers: &HeaderMap) -> Self {
        Self {
            form: form_urlencoded::parse(body).into_owned().collect(),
            basic: basic_credentials(headers),
        }
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    fn client_id(&self) -> Option<&str> {
        let basic = self.basic.as_ref().map(|(id, _)| id.as_str());
        self.param("client_id")
            .or(basic.filter(|id| !id.is_empty()))
    }

    fn client_secret(&self) -> Option<&str> {
        let basic = self.basic.as_ref().map(|(_, secret)| secret.as_str());
        self.param("client_secret")
            .or(basic.filter(|secret| !secret.is_empty()))
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let (scheme, encoded) = headers.get(AUTHORIZATION)?.to_str().ok()?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // Each part is one form-encoded value: decode it as the name of a one-field form.
    let form_decode = |s: &str| {
        form_urlencoded::parse(s.as_bytes())
            .next()
            .map(|(name, _)| name.into_owned())
    };
    Some((form_decode(id)?, form_decode(secret)?))
}

/// Validates a token request in Entra's order; `Ok` is the resource as requested.
fn check(
    spec: &SimSpec,
    base: &str,
    secret_expired: bool,
    flavor: Flavor,
    tenant: &str,
    request: &TokenRequest,
) -> Result<String, EntraError> {
    let bad_request =
        |error, code, text| EntraError::new(StatusCode::BAD_REQUEST, error, code, text);
    let missing = |name: &str| {
        let text = format!("The request body must contain the following parameter: '{name}'.");
        bad_request("invalid_request", 900144, text)
    };
    let invalid_client =
        |code, text| EntraError::new(StatusCode::UNAUTHORIZED, "invalid_client", code, text);

    if !tenant.eq_ignore_ascii_case(&spec.tenant_id) {
        return Err(bad_request(
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        ));
    }
    let grant_type = request
        .param("grant_type")
        .ok_or_else(|| missing("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(bad_request(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let client_id = request.client_id().ok_or_else(|| missing("client_id"))?;
    let resource = match flavor {
        Flavor::V1 => request
            .param("resource")
            .ok_or_else(|| missing("resource"))?,
        Flavor::V2 => {
            let scope = request.param("scope").ok_or_else(|| missing("scope"))?;
            scope.strip_suffix("/.default").ok_or_else(|| bad_request("invalid_scope", 1002012, format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            )))?
        }
    };
    if !client_id.eq_ignore_ascii_case(&spec.client_id) {
        return Err(bad_request(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        ));
    }
    let Some(secret) = request.client_secret() else {
        return Err(invalid_client(7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.".into()));
    };
    if secret != spec.client_secret {
        return Err(invalid_client(
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                spec.client_id
            ),
        ));
    }
    if secret_expired {
        return Err(invalid_client(
            7000222,
            format!(
                "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
                spec.client_id
            ),
        ));
    }
    let asked = resource.trim_end_matches('/');
    if !asked.eq_ignore_ascii_case(base) && !asked.eq_ignore_ascii_case(&format!("{base}/graph")) {
        return Err(bad_request(
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        ));
    }
    Ok(resource.to_owned())
}

struct EntraError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    text: String,
}

impl EntraError {
    fn new(status: StatusCode, error: &'static str, code: u32, text: String) -> Self {
        Self {
            status,
            error,
            code,
            text,
        }
    }

    fn render(self, now: DateTime<Utc>, rng: &mut StdRng) -> Response {
        let (trace_id, correlation_id) = (guid(rng), guid(rng));
        let timestamp = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
        let code = self.code;
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{code}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.text
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        });
        entra_response(self.status, &body)
    }
}

fn entra_response(status: StatusCode, body: &Value) -> Response {
    let mut response = json_response(status, body.to_string());
    let headers = response.headers_mut();
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
