//! heketi's authentication scheme: a JWT signed with HS256 in the
//! `Authorization: Bearer` header. `iss` names the role (`admin` or
//! `user`, each with its own key), `qsh` is the hex SHA-256 of
//! `METHOD&PATH`, `exp` is required, and `iat` may be at most a leeway in
//! the future (clocks differ). Pure: no I/O, the time is passed in.
//!
//! Times are whole seconds, and a token is valid through the second its
//! `exp` names (`now <= exp`), as heketi's JWT library has it: heketi's
//! clients sign `exp = iat + 1`, so a request that crosses into the next
//! second on its way is still accepted.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Who a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Volume operations, and polling its own operations.
    User,
}

impl Role {
    /// The `iss` claim of the role.
    pub fn issuer(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

/// The secrets of both roles.
#[derive(Clone)]
pub struct Keys {
    /// The admin key.
    pub admin: Vec<u8>,
    /// The user key.
    pub user: Vec<u8>,
    /// How far in the future `iat` may be, in seconds (heketi: 120).
    pub iat_leeway: u64,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("admin", &"<secret>")
            .field("user", &"<secret>")
            .field("iat_leeway", &self.iat_leeway)
            .finish()
    }
}

/// Why a request is not authenticated; the text is what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header, or an empty one.
    #[error("Required authorization token not found")]
    Missing,
    /// The header is not `Bearer <token>` (heketi answers this one `400`,
    /// every other `401`).
    #[error("Authorization header format must be Bearer {{token}}")]
    BadHeader,
    /// The token is not a well-formed JWT.
    #[error("Invalid JWT token: {0}")]
    Malformed(String),
    /// Not HS256.
    #[error("Invalid JWT token: unexpected signing method {0}")]
    Algorithm(String),
    /// `iss` is missing or names no role.
    #[error("Invalid JWT token: {0}")]
    Issuer(String),
    /// The signature does not match the role's key.
    #[error("Invalid JWT token: signature is invalid (client and server secrets may not match)")]
    Signature,
    /// `exp` is missing or past.
    #[error("Invalid JWT token: {0}")]
    Expired(String),
    /// `iat` is too far in the future.
    #[error("Invalid JWT token: Token used before issued (client and server clocks may differ)")]
    IssuedInFuture,
    /// `nbf` is in the future.
    #[error("Invalid JWT token: token is not valid yet")]
    NotYetValid,
    /// `qsh` does not match the request.
    #[error("Invalid qsh claim in token")]
    Qsh,
}

/// The claims aplo reads.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
struct Claims {
    iss: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    nbf: Option<i64>,
    qsh: Option<String>,
}

/// The `qsh` claim for a request: hex SHA-256 of `METHOD&PATH` (the path
/// without the query string).
pub fn qsh(method: &str, path: &str) -> String {
    hex::encode(Sha256::digest(format!("{method}&{path}").as_bytes()))
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length")
}

/// Check the `Authorization` header of a request for `method` and `path`
/// at `now` (seconds since the epoch); the role on success.
pub fn verify(
    keys: &Keys,
    header: Option<&str>,
    method: &str,
    path: &str,
    now: i64,
) -> Result<Role, AuthError> {
    let header = header
        .filter(|h| !h.trim().is_empty())
        .ok_or(AuthError::Missing)?;
    // Exactly two words, the first `bearer` in any case, as heketi reads it.
    let mut words = header.split_whitespace();
    let (Some(scheme), Some(token), None) = (words.next(), words.next(), words.next()) else {
        return Err(AuthError::BadHeader);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::BadHeader);
    }
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed(
            "expected three dot-separated parts".into(),
        ));
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| AuthError::Malformed(format!("the {what} is not base64url")))
    };
    let header: serde_json::Value = serde_json::from_slice(&decode(head, "header")?)
        .map_err(|_| AuthError::Malformed("the header is not JSON".into()))?;
    let algorithm = header["alg"].as_str().unwrap_or("none");
    if algorithm != "HS256" {
        return Err(AuthError::Algorithm(algorithm.to_owned()));
    }
    let claims: Claims = serde_json::from_slice(&decode(body, "payload")?)
        .map_err(|e| AuthError::Malformed(format!("the claims are not valid: {e}")))?;
    let role = match claims.iss.as_deref() {
        Some("admin") => Role::Admin,
        Some("user") => Role::User,
        Some(other) => return Err(AuthError::Issuer(format!("Unknown user '{other}'"))),
        None => return Err(AuthError::Issuer("Token missing iss claim".into())),
    };
    let key = match role {
        Role::Admin => &keys.admin,
        Role::User => &keys.user,
    };
    let mut check = mac(key);
    check.update(format!("{head}.{body}").as_bytes());
    check
        .verify_slice(&decode(signature, "signature")?)
        .map_err(|_| AuthError::Signature)?;
    match claims.exp {
        None => return Err(AuthError::Expired("Token missing exp claim".into())),
        Some(exp) if now > exp => {
            return Err(AuthError::Expired(format!(
                "Token is expired by {}",
                go_duration(now.saturating_sub(exp))
            )));
        }
        Some(_) => {}
    }
    let leeway = i64::try_from(keys.iat_leeway).unwrap_or(i64::MAX);
    if claims
        .iat
        .is_some_and(|iat| now < iat.saturating_sub(leeway))
    {
        return Err(AuthError::IssuedInFuture);
    }
    if claims.nbf.is_some_and(|nbf| now < nbf) {
        return Err(AuthError::NotYetValid);
    }
    if claims.qsh.as_deref() != Some(qsh(method, path).as_str()) {
        return Err(AuthError::Qsh);
    }
    Ok(role)
}

/// Whole seconds as Go prints a duration (`1s`, `2m5s`, `1h0m0s`), as in
/// heketi's messages.
fn go_duration(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

/// A token for one request, as heketi's clients make them: valid for
/// `ttl` seconds from `now`.
pub fn sign(role: Role, key: &[u8], method: &str, path: &str, now: i64, ttl: i64) -> String {
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = Claims {
        iss: Some(role.issuer().to_owned()),
        iat: Some(now),
        exp: Some(now + ttl),
        nbf: None,
        qsh: Some(qsh(method, path)),
    };
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize"));
    let mut signer = mac(key);
    signer.update(format!("{head}.{body}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(signer.finalize().into_bytes());
    format!("{head}.{body}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn keys() -> Keys {
        Keys {
            admin: b"admin-secret".to_vec(),
            user: b"user-secret".to_vec(),
            iat_leeway: 120,
        }
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    #[test]
    fn a_signed_token_names_its_role() {
        let token = sign(Role::Admin, b"admin-secret", "GET", "/clusters", NOW, 60);
        assert_eq!(
            verify(&keys(), Some(&bearer(&token)), "GET", "/clusters", NOW),
            Ok(Role::Admin)
        );
        let token = sign(Role::User, b"user-secret", "POST", "/volumes", NOW, 60);
        assert_eq!(
            verify(&keys(), Some(&bearer(&token)), "POST", "/volumes", NOW + 59),
            Ok(Role::User)
        );
    }

    #[test]
    fn the_qsh_is_sha256_of_method_and_path() {
        // sha256("GET&/hello")
        assert_eq!(
            qsh("GET", "/hello"),
            hex::encode(Sha256::digest(b"GET&/hello"))
        );
        assert_eq!(qsh("GET", "/hello").len(), 64);
    }

    #[test]
    fn every_bad_token_is_refused_with_its_reason() {
        let good = sign(Role::Admin, b"admin-secret", "GET", "/clusters", NOW, 60);
        let wrong_key = sign(Role::Admin, b"guess", "GET", "/clusters", NOW, 60);
        let user_as_admin = {
            // A user token re-labelled admin fails the admin key.
            let t = sign(Role::User, b"user-secret", "GET", "/clusters", NOW, 60);
            let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
            let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
            parts[1] = URL_SAFE_NO_PAD.encode(claims.replace("\"user\"", "\"admin\""));
            parts.join(".")
        };
        let future = sign(
            Role::Admin,
            b"admin-secret",
            "GET",
            "/clusters",
            NOW + 500,
            600,
        );
        let cases: Vec<(Option<String>, &str, AuthError)> = vec![
            (None, "/clusters", AuthError::Missing),
            (Some("Basic abc".into()), "/clusters", AuthError::BadHeader),
            (Some("Bearer".into()), "/clusters", AuthError::BadHeader),
            (
                Some(format!("Bearer {good} extra")),
                "/clusters",
                AuthError::BadHeader,
            ),
            (Some("   ".into()), "/clusters", AuthError::Missing),
            (
                Some(bearer("a.b")),
                "/clusters",
                AuthError::Malformed("expected three dot-separated parts".into()),
            ),
            (Some(bearer(&wrong_key)), "/clusters", AuthError::Signature),
            (
                Some(bearer(&user_as_admin)),
                "/clusters",
                AuthError::Signature,
            ),
            (Some(bearer(&good)), "/volumes", AuthError::Qsh),
            (
                Some(bearer(&future)),
                "/clusters",
                AuthError::IssuedInFuture,
            ),
        ];
        for (header, path, expected) in cases {
            assert_eq!(
                verify(&keys(), header.as_deref(), "GET", path, NOW),
                Err(expected),
                "{header:?}"
            );
        }
        let expired = verify(&keys(), Some(&bearer(&good)), "GET", "/clusters", NOW + 61);
        assert_eq!(
            expired,
            Err(AuthError::Expired("Token is expired by 1s".into()))
        );
        // A token within the iat leeway passes.
        let skewed = sign(
            Role::Admin,
            b"admin-secret",
            "GET",
            "/clusters",
            NOW + 100,
            600,
        );
        assert!(verify(&keys(), Some(&bearer(&skewed)), "GET", "/clusters", NOW).is_ok());
    }

    #[test]
    fn a_token_is_valid_through_the_second_its_exp_names() {
        // heketi's clients: exp = iat + 1.
        let token = sign(Role::Admin, b"admin-secret", "GET", "/clusters", NOW, 1);
        let at = |now| verify(&keys(), Some(&bearer(&token)), "GET", "/clusters", now);
        assert_eq!(at(NOW), Ok(Role::Admin));
        assert_eq!(at(NOW + 1), Ok(Role::Admin), "exp itself is accepted");
        assert_eq!(
            at(NOW + 2),
            Err(AuthError::Expired("Token is expired by 1s".into()))
        );
        assert_eq!(
            at(NOW + 1 + 3725),
            Err(AuthError::Expired("Token is expired by 1h2m5s".into()))
        );
        // A token signed with exp = iat passes in that second only.
        let now_only = sign(Role::Admin, b"admin-secret", "GET", "/clusters", NOW, 0);
        let at = |now| verify(&keys(), Some(&bearer(&now_only)), "GET", "/clusters", now);
        assert_eq!(at(NOW), Ok(Role::Admin));
        assert!(matches!(at(NOW + 1), Err(AuthError::Expired(_))));
    }

    #[test]
    fn durations_read_as_go_prints_them() {
        for (seconds, text) in [
            (0, "0s"),
            (1, "1s"),
            (59, "59s"),
            (60, "1m0s"),
            (125, "2m5s"),
            (3600, "1h0m0s"),
            (90061, "25h1m1s"),
        ] {
            assert_eq!(go_duration(seconds), text);
        }
    }

    #[test]
    fn unsigned_or_foreign_algorithms_are_refused() {
        let body = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"iss":"admin","exp":{},"qsh":"{}"}}"#,
            NOW + 60,
            qsh("GET", "/x")
        ));
        for alg in ["none", "RS256", "HS512"] {
            let head = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let token = format!("{head}.{body}.");
            assert_eq!(
                verify(&keys(), Some(&bearer(&token)), "GET", "/x", NOW),
                Err(AuthError::Algorithm(alg.into()))
            );
        }
    }
}
