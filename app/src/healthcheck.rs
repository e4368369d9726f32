//! `app healthcheck`: asks the running service's `/health` on loopback and exits 0 when it
//! answers 200 within 2 s, 1 otherwise. The image is `FROM scratch` (no shell, no curl), so the
//! Docker `HEALTHCHECK` runs the binary itself.

use std::process::ExitCode;
use std::time::Duration;

/// The loopback URL of `/health` for a listen address like `0.0.0.0:3000`.
pub fn health_url(listen: &str) -> String {
    let port = listen
        .rsplit(':')
        .next()
        .filter(|p| p.parse::<u16>().is_ok())
        .unwrap_or("3000");
    format!("http://127.0.0.1:{port}/health")
}

pub async fn run() -> ExitCode {
    let listen = std::env::var("APP_LISTEN").unwrap_or_else(|_| "0.0.0.0:3000".into());
    let url = health_url(&listen);
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!("healthcheck: {url} answered {}", r.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("healthcheck: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_url_follows_the_listen_port() {
        assert_eq!(health_url("0.0.0.0:3001"), "http://127.0.0.1:3001/health");
        assert_eq!(health_url("[::]:8080"), "http://127.0.0.1:8080/health");
        assert_eq!(health_url("nonsense"), "http://127.0.0.1:3000/health");
    }
}
