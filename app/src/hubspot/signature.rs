//! HubSpot's webhook signatures: v3 (HMAC-SHA256 over method, URI, body and timestamp, base64,
//! within [`MAX_AGE`]) and, when configured, v1/v2 (SHA-256 hex), checked against the public URI
//! HubSpot called (rebuilt from nginx's forwarded headers). Pure: the caller passes the time.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};

/// HubSpot's window for `X-HubSpot-Request-Timestamp`.
pub const MAX_AGE: Duration = Duration::from_secs(300);
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
    V3,
}

impl Version {
    pub fn parse_list(raw: &str) -> Option<Vec<Version>> {
        raw.split(',')
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "v1" => Some(Version::V1),
                "v2" => Some(Version::V2),
                "v3" => Some(Version::V3),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .filter(|v| !v.is_empty())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejected {
    #[error("missing signature: send X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp")]
    Missing,
    #[error("stale or invalid X-HubSpot-Request-Timestamp: requests older than 5 minutes are refused (is the sender's clock right?)")]
    Stale,
    #[error("signature does not match (check HUBSPOT_CLIENT_SECRET and that the proxy forwards Host and X-Forwarded-Proto)")]
    BadSignature,
    #[error("signature version {0} is not accepted here (WEBHOOK_SIGNATURE_VERSIONS)")]
    VersionNotAccepted(String),
}

/// The URI HubSpot signed: the public URL of this endpoint, rebuilt from the forwarded headers
/// nginx sets (scheme, host, port), plus the path and query as received.
pub fn public_uri(headers: &HeaderMap, uri: &Uri) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let scheme = header("x-forwarded-proto").unwrap_or("http");
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .unwrap_or("localhost");
    let port = header("x-forwarded-port").filter(|p| {
        !host.contains(':') && !matches!((scheme, *p), ("https", "443") | ("http", "80"))
    });
    let path = decode_signed(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    match port {
        Some(port) => format!("{scheme}://{host}:{port}{path}"),
        None => format!("{scheme}://{host}{path}"),
    }
}

/// HubSpot signs the URI with these escapes decoded (its v3 documentation lists them).
fn decode_signed(path: &str) -> String {
    const DECODED: [(&str, &str); 12] = [
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    let mut out = path.to_string();
    for (escaped, plain) in DECODED {
        out = out
            .replace(escaped, plain)
            .replace(&escaped.to_lowercase(), plain);
    }
    out
}

/// Verifies a delivery with the accepted versions; `now_ms` is the current Unix time in ms.
pub fn verify(
    secret: &str,
    accepted: &[Version],
    method: &Method,
    uri: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: i64,
) -> Result<Version, Rejected> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(signature) = header("x-hubspot-signature-v3") {
        if !accepted.contains(&Version::V3) {
            return Err(Rejected::VersionNotAccepted("v3".into()));
        }
        let timestamp = header("x-hubspot-request-timestamp").ok_or(Rejected::Stale)?;
        let ts: i64 = timestamp.trim().parse().map_err(|_| Rejected::Stale)?;
        if (now_ms - ts).unsigned_abs() > MAX_AGE.as_millis() as u64 {
            return Err(Rejected::Stale);
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(method.as_str().as_bytes());
        mac.update(uri.as_bytes());
        mac.update(body);
        mac.update(timestamp.trim().as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        return crate::secret::same(signature.trim(), &expected)
            .then_some(Version::V3)
            .ok_or(Rejected::BadSignature);
    }
    let signature = header("x-hubspot-signature").ok_or(Rejected::Missing)?;
    let version = match header("x-hubspot-signature-version").map(str::trim) {
        Some("v2") => Version::V2,
        Some("v1") | None => Version::V1,
        Some(other) => return Err(Rejected::VersionNotAccepted(other.to_string())),
    };
    if !accepted.contains(&version) {
        return Err(Rejected::VersionNotAccepted(
            format!("{version:?}").to_lowercase(),
        ));
    }
    let mut h = Sha256::new();
    h.update(secret.as_bytes());
    if version == Version::V2 {
        h.update(method.as_str().as_bytes());
        h.update(uri.as_bytes());
    }
    h.update(body);
    let expected = hex::encode(h.finalize());
    crate::secret::same(&signature.trim().to_ascii_lowercase(), &expected)
        .then_some(version)
        .ok_or(Rejected::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn v3(secret: &str, uri: &str, body: &[u8], ts: i64) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("POST{uri}").as_bytes());
        mac.update(body);
        mac.update(ts.to_string().as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        headers(&[
            ("x-hubspot-signature-v3", sig),
            ("x-hubspot-request-timestamp", ts.to_string()),
        ])
    }

    const URI: &str = "https://example.com/webhooks/hubspot";
    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn v3_accepts_a_good_signature_and_refuses_forgery_and_staleness() {
        let body = br#"[{"eventId":1}]"#;
        let ok = verify(
            "s3cret",
            &[Version::V3],
            &Method::POST,
            URI,
            &v3("s3cret", URI, body, NOW),
            body,
            NOW + 1000,
        );
        assert_eq!(ok, Ok(Version::V3));
        let forged = verify(
            "s3cret",
            &[Version::V3],
            &Method::POST,
            URI,
            &v3("guess", URI, body, NOW),
            body,
            NOW,
        );
        assert_eq!(forged, Err(Rejected::BadSignature));
        let tampered = verify(
            "s3cret",
            &[Version::V3],
            &Method::POST,
            URI,
            &v3("s3cret", URI, body, NOW),
            b"[]",
            NOW,
        );
        assert_eq!(tampered, Err(Rejected::BadSignature));
        let other_uri = verify(
            "s3cret",
            &[Version::V3],
            &Method::POST,
            "http://example.com/webhooks/hubspot",
            &v3("s3cret", URI, body, NOW),
            body,
            NOW,
        );
        assert_eq!(other_uri, Err(Rejected::BadSignature));
        let stale = verify(
            "s3cret",
            &[Version::V3],
            &Method::POST,
            URI,
            &v3("s3cret", URI, body, NOW),
            body,
            NOW + 301_000,
        );
        assert_eq!(stale, Err(Rejected::Stale));
        assert_eq!(
            verify(
                "s3cret",
                &[Version::V3],
                &Method::POST,
                URI,
                &HeaderMap::new(),
                body,
                NOW
            ),
            Err(Rejected::Missing)
        );
    }

    #[test]
    fn v1_and_v2_only_when_configured() {
        let body = b"[]";
        let v1 = hex::encode(Sha256::digest([b"s".as_slice(), body].concat()));
        let h = headers(&[
            ("x-hubspot-signature", v1),
            ("x-hubspot-signature-version", "v1".into()),
        ]);
        assert_eq!(
            verify("s", &[Version::V3], &Method::POST, URI, &h, body, NOW),
            Err(Rejected::VersionNotAccepted("v1".into()))
        );
        assert_eq!(
            verify(
                "s",
                &[Version::V1, Version::V3],
                &Method::POST,
                URI,
                &h,
                body,
                NOW
            ),
            Ok(Version::V1)
        );
        let v2 = hex::encode(Sha256::digest(format!("sPOST{URI}[]")));
        let h = headers(&[
            ("x-hubspot-signature", v2),
            ("x-hubspot-signature-version", "v2".into()),
        ]);
        assert_eq!(
            verify("s", &[Version::V2], &Method::POST, URI, &h, body, NOW),
            Ok(Version::V2)
        );
    }

    #[test]
    fn the_public_uri_comes_from_the_forwarded_headers() {
        let uri: Uri = "/webhooks/hubspot?x=1".parse().unwrap();
        let behind_nginx = headers(&[
            ("host", "internal:3000".into()),
            ("x-forwarded-proto", "https".into()),
            ("x-forwarded-host", "api.example.com".into()),
            ("x-forwarded-port", "443".into()),
        ]);
        assert_eq!(
            public_uri(&behind_nginx, &uri),
            "https://api.example.com/webhooks/hubspot?x=1"
        );
        let odd_port = headers(&[
            ("x-forwarded-proto", "https".into()),
            ("x-forwarded-host", "h".into()),
            ("x-forwarded-port", "8443".into()),
        ]);
        assert_eq!(
            public_uri(&odd_port, &uri),
            "https://h:8443/webhooks/hubspot?x=1"
        );
        let direct = headers(&[("host", "127.0.0.1:3000".into())]);
        assert_eq!(
            public_uri(&direct, &uri),
            "http://127.0.0.1:3000/webhooks/hubspot?x=1"
        );
    }
}
