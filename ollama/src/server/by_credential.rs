//! One listener for many agents, each known by a credential: where the network cannot say
//! who is calling (a Kubernetes cluster, where source addresses and pod labels can be
//! forged), each request carries its agent's credential as `Authorization: Bearer`, which
//! picks that agent's router. A request without one, or with one no agent has, is refused
//! (401) before its body is read.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use sha2::{Digest, Sha256};
use tower::ServiceExt as _;

use super::{Caller, Gateway};

/// The shortest credential taken: 32 characters (a random one is 43 in base64url).
pub const MIN_CREDENTIAL_LEN: usize = 32;

/// An agent's credential, kept only as its SHA-256 (looked up by digest, so a guess learns
/// nothing from how long a comparison took).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credential([u8; 32]);

/// Why a credential was not taken.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("is {len} characters long; a credential needs at least {MIN_CREDENTIAL_LEN}")]
    TooShort { len: usize },
    #[error("has characters other than printable ASCII")]
    NotPrintable,
    #[error("is also agent {other:?}'s: every agent needs its own")]
    Shared { other: String },
}

impl Credential {
    /// A credential from its text (surrounding whitespace removed).
    pub fn new(text: &str) -> Result<Self, CredentialError> {
        let t = text.trim();
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CredentialError::NotPrintable);
        }
        if t.len() < MIN_CREDENTIAL_LEN {
            return Err(CredentialError::TooShort { len: t.len() });
        }
        Ok(Self(Sha256::digest(t.as_bytes()).into()))
    }

    fn of_request(req: &Request) -> Option<Self> {
        let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
        let token = v.strip_prefix("Bearer ")?;
        Self::new(token).ok()
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(..)")
    }
}

fn refused(why: &str) -> Response {
    let body = serde_json::json!({ "error": why }).to_string();
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::WWW_AUTHENTICATE, "Bearer"),
        ],
        body,
    )
        .into_response()
}

impl Gateway {
    /// The router of a listener shared by `callers`, each with its credential; an agent's
    /// requests are served (and billed) exactly as on its own socket. Two agents with the
    /// same credential are refused.
    pub fn credential_router(
        self: &Arc<Self>,
        callers: Vec<(Credential, Arc<Caller>)>,
    ) -> Result<Router, CredentialError> {
        let mut table: HashMap<Credential, (String, Router)> = HashMap::new();
        for (cred, caller) in callers {
            if let Some((other, _)) = table.get(&cred) {
                return Err(CredentialError::Shared {
                    other: other.clone(),
                });
            }
            let name = caller.agent.clone();
            table.insert(cred, (name, self.router(caller)));
        }
        let table = Arc::new(table);
        Ok(Router::new().fallback(move |mut req: Request<Body>| {
            let table = table.clone();
            async move {
                let Some(cred) = Credential::of_request(&req) else {
                    return refused(
                        "no agent credential: send Authorization: Bearer <the agent's credential>",
                    );
                };
                let Some((_, router)) = table.get(&cred) else {
                    return refused("this credential is no agent's");
                };
                // The credential goes no further than here.
                req.headers_mut().remove(header::AUTHORIZATION);
                match router.clone().oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_must_be_long_printable_and_is_kept_only_as_its_digest() {
        assert!(matches!(
            Credential::new("short"),
            Err(CredentialError::TooShort { len: 5 })
        ));
        assert!(matches!(
            Credential::new(&format!("{}\u{7f}", "a".repeat(40))),
            Err(CredentialError::NotPrintable)
        ));
        let c = Credential::new(&format!("  {}\n", "x".repeat(40))).unwrap();
        assert_eq!(
            c,
            Credential::new(&"x".repeat(40)).unwrap(),
            "whitespace trimmed"
        );
        assert_eq!(format!("{c:?}"), "Credential(..)");
    }
}
