use std::process::ExitCode;

use app::config::Settings;
use app::Application;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return app::healthcheck::run().await;
    }
    // The schema this release applies and runs on, as JSON (the deployer's `schema:` command).
    if std::env::args().nth(1).as_deref() == Some("schema") {
        let schema = app::store::schema_info();
        println!(
            "{}",
            serde_json::json!({"version": schema.version, "oldest_compatible": schema.oldest_compatible})
        );
        return ExitCode::SUCCESS;
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .with_env_filter(filter)
            .init();
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("app: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        return match app::migrate(settings).await {
            Ok(schema) => {
                println!(
                    "app migrate: the database is at schema {} (or newer)",
                    schema.version
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("app migrate: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    if std::env::args().nth(1).as_deref() == Some("users") {
        let args: Vec<String> = std::env::args().skip(2).collect();
        return match app::users(settings, &args).await {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("app users: {e:#}");
                ExitCode::from(if e.to_string().starts_with("usage:") {
                    2
                } else {
                    1
                })
            }
        };
    }
    if std::env::args().nth(1).as_deref() == Some("keys") {
        return match std::env::args().nth(2).as_deref() {
            Some("rotate") => match app::rotate_keys(settings).await {
                Ok(n) => {
                    println!("re-sealed the tokens of {n} portal(s) under the current key");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("app keys rotate: {e:#}");
                    ExitCode::from(1)
                }
            },
            _ => {
                eprintln!(
                    "usage: app keys rotate   (re-seal every token under TOKEN_ENCRYPTION_KEY)"
                );
                ExitCode::from(2)
            }
        };
    }
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("app: {e:#}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(addr = %app.local_addr(), "app listening");
    match app.run(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("app: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
