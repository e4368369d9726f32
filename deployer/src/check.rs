//! Preflight checks: `deployer check`, and the first thing every `up` does (its `--dry-run`
//! shows them too). Each check passes, warns or fails, and a failure says how to fix it. The
//! verdicts are pure functions of what was gathered ([`gather`] does the I/O), so each rule is
//! tested without a host.
//!
//! May not import: `execute` (checks change nothing); from `plan`, only the names of what a
//! service owns.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::config::DeployConfig;
use crate::engine::Engine;
use crate::host::Host;

/// Certificates expiring within this many days warn.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// How to fix it (failures and warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            verdict: Verdict::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            verdict: Verdict::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            verdict: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.verdict {
            Verdict::Pass => "pass",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        };
        write!(f, "{mark}  {:<12} {}", self.name, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n      fix: {fix}")?;
        }
        Ok(())
    }
}

/// Every check, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(f, "{check}")?;
        }
        Ok(())
    }
}

/// A file as read from the host: `Ok(None)` missing, `Err` unreadable (permissions).
pub type Read<'a> = Result<Option<&'a [u8]>, String>;

/// The certificate pair in `ssl_dir`: present, parseable, matching, valid at `now` (Unix
/// seconds), and not about to expire. A key this user may not read (nginx reads it as root) is
/// a warning: the match is then not checked.
pub fn certificate(dir: &Path, cert: Read<'_>, key: Read<'_>, now: i64) -> Check {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    const NAME: &str = "certificate";
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    let make =
        "scripts/gen-self-signed.sh makes a local pair; in production put the CA-issued pair there";
    let cert = match cert {
        Ok(Some(c)) => c,
        Ok(None) => return Check::fail(NAME, format!("{} is missing", cert_path.display()), make),
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{} cannot be read: {e}", cert_path.display()),
                "let the deploying user read it (a certificate is not secret)",
            )
        }
    };
    let key = match key {
        Ok(Some(k)) => Ok(k),
        Ok(None) => return Check::fail(NAME, format!("{} is missing", key_path.display()), make),
        Err(e) => Err(e),
    };
    let Some(Ok(der)) = CertificateDer::pem_slice_iter(cert).next() else {
        return Check::fail(
            NAME,
            format!("{} holds no PEM certificate", cert_path.display()),
            make,
        );
    };
    if let Ok(key) = key {
        let Ok(private) = PrivateKeyDer::from_pem_slice(key) else {
            return Check::fail(
                NAME,
                format!("{} holds no PEM private key", key_path.display()),
                make,
            );
        };
        let signing = match rustls::crypto::ring::sign::any_supported_type(&private) {
            Ok(s) => s,
            Err(e) => {
                return Check::fail(
                    NAME,
                    format!("{}: {e}", key_path.display()),
                    "use an RSA, ECDSA or Ed25519 key",
                )
            }
        };
        let certified = rustls::sign::CertifiedKey::new(vec![der.clone()], signing);
        if certified.keys_match().is_err() {
            return Check::fail(
                NAME,
                format!(
                    "{} does not belong to the certificate in {}",
                    key_path.display(),
                    cert_path.display()
                ),
                "put the key the certificate was issued for beside it (or issue a new pair)",
            );
        }
    }
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(&der) else {
        return Check::fail(
            NAME,
            format!("{} does not parse", cert_path.display()),
            make,
        );
    };
    let (from, until) = (
        parsed.validity().not_before.timestamp(),
        parsed.validity().not_after.timestamp(),
    );
    let date = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    };
    let renew = "renew the certificate (and key) and put them in ssl_dir";
    if until <= now {
        return Check::fail(NAME, format!("expired on {}", date(until)), renew);
    }
    if from > now {
        return Check::fail(
            NAME,
            format!("not valid before {}", date(from)),
            "check this machine's clock, or use a certificate valid now",
        );
    }
    let days = (until - now) / 86_400;
    if days < EXPIRY_WARNING_DAYS {
        return Check::warn(
            NAME,
            format!("expires in {days} days ({})", date(until)),
            renew,
        );
    }
    if let Err(e) = key {
        return Check::warn(
            NAME,
            format!(
                "valid until {}; {} is not readable by this user ({e}), so its match with the certificate was not checked",
                date(until),
                key_path.display()
            ),
            "nginx reads it as root, so this is fine if the pair is right; to have it checked, let the deploying user read it",
        );
    }
    Check::pass(
        NAME,
        format!("matches its key, valid until {}", date(until)),
    )
}

/// Free space where the engine keeps images and volumes, against the threshold.
pub fn disk(dir: &str, free_bytes: Option<u64>, min_gb: u64) -> Check {
    const NAME: &str = "disk";
    let Some(free) = free_bytes else {
        return Check::warn(
            NAME,
            format!("free space in {dir} could not be read"),
            "check it by hand (df -h)",
        );
    };
    let gb = free as f64 / 1e9;
    if free < min_gb * 1_000_000_000 {
        return Check::fail(
            NAME,
            format!("{gb:.1} GB free in {dir}, below min_free_disk_gb ({min_gb} GB)"),
            "free space (deployer prune removes old images; docker system prune the rest) or lower min_free_disk_gb",
        );
    }
    Check::pass(NAME, format!("{gb:.1} GB free in {dir}"))
}

/// Every `required_env` key set somewhere the slots get their environment from.
pub fn required_env(required: &[String], available: &[String]) -> Check {
    const NAME: &str = "environment";
    let missing: Vec<&str> = required
        .iter()
        .filter(|k| !available.contains(k))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Check::pass(NAME, format!("{} required keys set", required.len()));
    }
    Check::fail(
        NAME,
        format!("not set: {}", missing.join(", ")),
        "add them to env_file (KEY=VALUE) or export them and list them in pass_env",
    )
}

/// One port the deploy needs: free, or already held by the container meant to hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortUse {
    pub port: u16,
    /// Where the setting is (`nginx.https_port`), for the fix.
    pub key: &'static str,
    /// The container of ours that holds it, when it runs.
    pub ours: Option<String>,
    /// Whether something answered "in use" when the port was tried.
    pub taken: bool,
}

/// The ports: each free, or held by its own container.
pub fn ports(uses: &[PortUse]) -> Check {
    const NAME: &str = "ports";
    let busy: Vec<&PortUse> = uses
        .iter()
        .filter(|u| u.taken && u.ours.is_none())
        .collect();
    if let Some(first) = busy.first() {
        let list: Vec<String> = busy
            .iter()
            .map(|u| format!("{} ({})", u.port, u.key))
            .collect();
        return Check::fail(
            NAME,
            format!("in use by something else: {}", list.join(", ")),
            format!(
                "stop what listens there (ss -ltnp 'sport = :{}'), or change {} in deploy.yml",
                first.port, first.key
            ),
        );
    }
    let list: Vec<String> = uses
        .iter()
        .map(|u| match &u.ours {
            Some(c) => format!("{} ({c})", u.port),
            None => format!("{} free", u.port),
        })
        .collect();
    Check::pass(NAME, list.join(", "))
}

/// Gathers what the checks need from the host and judges it. `engine` is the connection
/// attempt's result (a failed connection is a failed check, not an early exit).
pub async fn gather(
    config: &DeployConfig,
    host: &Host,
    engine: Result<&Engine, &anyhow::Error>,
    env_keys: Result<Vec<String>, String>,
) -> Report {
    let mut checks = Vec::new();
    if let Some(remote) = &config.remote {
        checks.push(Check::pass(
            "ssh",
            format!("connected to {}, host key known", remote.host),
        ));
    }
    // A connection that failed and an engine that does not answer are the same failure.
    let version = match engine {
        Ok(engine) => engine.version().await.map(|v| (engine, v)),
        Err(e) => Err(anyhow::anyhow!("{e:#}")),
    };
    let engine = match version {
        Ok((engine, version)) => {
            checks.push(Check::pass("engine", format!("Docker {version} reachable")));
            Some(engine)
        }
        Err(e) => {
            checks.push(Check::fail(
                "engine",
                format!("{e:#}"),
                "start the Docker engine, or give this user access to its socket",
            ));
            None
        }
    };
    if let Some(engine) = engine {
        let root = engine
            .root_dir()
            .await
            .unwrap_or_else(|_| "/var/lib/docker".into());
        checks.push(disk(
            &root,
            host.free_bytes(Path::new(&root)).await,
            config.min_free_disk_gb,
        ));
        match host {
            Host::Local => checks.push(ports(&port_uses(config, engine, None).await)),
            Host::Remote(_) => checks.push(match host.listening_ports().await {
                Some(listening) => ports(&port_uses(config, engine, Some(&listening)).await),
                None => Check::warn(
                    "ports",
                    format!("cannot list the listening ports on {host} (`ss -Htln` failed)"),
                    "install iproute2 there, or check the ports by hand",
                ),
            }),
        }
        let image = &config.nginx.image;
        checks.push(match engine.image_exists(image).await {
            Ok(true) => Check::pass("nginx image", format!("{image} present")),
            Ok(false) if config.images_shipped => Check::pass(
                "nginx image",
                format!("{image} is not there yet; the deployer ships it from this machine"),
            ),
            Ok(false) => Check::fail(
                "nginx image",
                format!("{image} is not on the host (nothing can be pulled)"),
                "build it: scripts/make-base-images.sh",
            ),
            Err(e) => Check::warn("nginx image", format!("{e:#}"), "check `docker image ls`"),
        });
    }
    let dir = &config.nginx.ssl_dir;
    let read = |name: &str| host.read(&dir.join(name)).map_err(|e| format!("{e:#}"));
    let (cert, key) = (read("cert.pem"), read("key.pem"));
    checks.push(certificate(
        dir,
        cert.as_ref().map(Option::as_deref).map_err(Clone::clone),
        key.as_ref().map(Option::as_deref).map_err(Clone::clone),
        chrono::Utc::now().timestamp(),
    ));
    checks.push(match env_keys {
        Ok(keys) => required_env(&config.required_env, &keys),
        Err(e) => Check::fail("environment", e, "fix env_file or pass_env"),
    });
    Report { checks }
}

/// Each port the deploy needs (nginx's on all addresses, the slots' on loopback): tried by
/// binding it on this machine, or looked up in `listening` (a remote host's); a port held by its
/// own running container is ours.
async fn port_uses(
    config: &DeployConfig,
    engine: &Engine,
    listening: Option<&std::collections::BTreeSet<u16>>,
) -> Vec<PortUse> {
    let names = crate::plan::Names::of(config);
    let wanted = [
        (
            config.nginx.http_port,
            "nginx.http_port",
            "0.0.0.0",
            names.nginx.clone(),
        ),
        (
            config.nginx.https_port,
            "nginx.https_port",
            "0.0.0.0",
            names.nginx.clone(),
        ),
        (
            config.nginx.preview_port,
            "nginx.preview_port",
            "0.0.0.0",
            names.nginx.clone(),
        ),
        (
            config.slots.blue.port,
            "slots.blue.port",
            "127.0.0.1",
            names.blue.clone(),
        ),
        (
            config.slots.green.port,
            "slots.green.port",
            "127.0.0.1",
            names.green.clone(),
        ),
    ];
    let mut uses = Vec::new();
    for (port, key, addr, owner) in wanted {
        let running = matches!(engine.container(&owner).await, Ok(Some(c)) if c.running);
        let taken = !running
            && match listening {
                Some(listening) => listening.contains(&port),
                None => matches!(
                    std::net::TcpListener::bind((addr, port)),
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse
                ),
            };
        uses.push(PortUse {
            port,
            key,
            ours: running.then_some(owner),
            taken,
        });
    }
    uses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_fails_below_the_threshold_and_warns_when_unreadable() {
        assert_eq!(disk("/d", Some(6_000_000_000), 5).verdict, Verdict::Pass);
        let low = disk("/d", Some(4_200_000_000), 5);
        assert_eq!(low.verdict, Verdict::Fail);
        assert_eq!(
            low.detail,
            "4.2 GB free in /d, below min_free_disk_gb (5 GB)"
        );
        assert!(low.fix.unwrap().contains("deployer prune"));
        assert_eq!(disk("/d", None, 5).verdict, Verdict::Warn);
    }

    #[test]
    fn a_port_held_by_another_program_fails_and_names_its_key() {
        let port = |port, key, ours: Option<&str>, taken| PortUse {
            port,
            key,
            ours: ours.map(String::from),
            taken,
        };
        let fine = ports(&[
            port(443, "nginx.https_port", Some("app-nginx"), false),
            port(3000, "slots.blue.port", None, false),
        ]);
        assert_eq!(
            (fine.verdict, fine.detail.as_str()),
            (Verdict::Pass, "443 (app-nginx), 3000 free")
        );
        let busy = ports(&[port(8443, "nginx.https_port", None, true)]);
        assert_eq!(busy.verdict, Verdict::Fail);
        assert_eq!(
            busy.detail,
            "in use by something else: 8443 (nginx.https_port)"
        );
        assert!(busy.fix.unwrap().contains("change nginx.https_port"));
    }

    #[test]
    fn required_env_names_every_missing_key() {
        let have = ["A".to_string(), "B".to_string()];
        assert_eq!(required_env(&["A".into()], &have).verdict, Verdict::Pass);
        let c = required_env(&["A".into(), "C".into(), "D".into()], &have);
        assert_eq!(
            (c.verdict, c.detail.as_str()),
            (Verdict::Fail, "not set: C, D")
        );
    }

    #[test]
    fn a_missing_or_garbled_pair_fails_with_how_to_make_one() {
        let dir = Path::new("/ssl");
        let c = certificate(dir, Ok(None), Ok(Some(b"k")), 0);
        assert_eq!(
            (c.verdict, c.detail.as_str()),
            (Verdict::Fail, "/ssl/cert.pem is missing")
        );
        assert!(c.fix.unwrap().contains("gen-self-signed.sh"));
        let c = certificate(dir, Ok(Some(b"not pem")), Ok(Some(b"k")), 0);
        assert!(c.detail.contains("no PEM certificate"), "{c}");
        let c = certificate(dir, Ok(Some(b"c")), Ok(None), 0);
        assert_eq!(c.detail, "/ssl/key.pem is missing");
    }
}
