//! `app users …`: the command line's way to the users (the same rules and audit as
//! `/api/users`), for the first admin user and for ops without the API.

/// `app users …`: named users and their tokens, from the command line (the same rules and audit
/// as `/api/users`). Returns what to print.
pub async fn users(
    database_url: &str,
    keyring: Option<crate::crypto::Keyring>,
    flag_defaults: [bool; 5],
    args: &[String],
) -> anyhow::Result<String> {
    use super::audit::{About, Kind};
    use crate::domain::access::Role;
    let usage = "usage: app users add NAME --role admin|operator|support | app users token NAME | app users revoke NAME | app users list";
    let db = crate::store::Db::connect(database_url).await?;
    let super::Parts {
        access, auditor, ..
    } = super::Parts::new(&db, keyring, flag_defaults, None);
    let by = super::Caller {
        name: format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        ),
        role: Role::Admin,
    };
    let origin = super::Origin {
        ip: None,
        user_agent: Some("app users".into()),
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (action, name, outcome) = match args.as_slice() {
        ["add", name, "--role", role] | ["add", "--role", role, name] => {
            let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            let token = access.add_user(name, role, &by.name).await?;
            (
                "user add",
                *name,
                format!(
                    "added {name} as {role}; their token (shown once):\n{}",
                    token.expose()
                ),
            )
        }
        ["token", name] => {
            let token = access.add_token(name).await?;
            (
                "user token",
                *name,
                format!("a new token for {name} (shown once):\n{}", token.expose()),
            )
        }
        ["revoke", name] => {
            access.revoke(name).await?;
            (
                "user revoke",
                *name,
                format!("revoked {name} and every token of theirs"),
            )
        }
        ["list"] => {
            let lines: Vec<String> = access
                .users()
                .await?
                .iter()
                .map(|u| {
                    let state = if u.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    format!(
                        "{}\t{}\t{state}\t{} token(s)",
                        u.name, u.role, u.active_tokens
                    )
                })
                .collect();
            return Ok(lines.join("\n"));
        }
        _ => anyhow::bail!("{usage}"),
    };
    let first_line = outcome.lines().next().unwrap_or_default().to_string();
    auditor
        .record(
            &by,
            &origin,
            Kind::Always,
            action,
            About::thing(format!("user {name}")),
            &first_line,
        )
        .await;
    Ok(outcome)
}
