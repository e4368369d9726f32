//! Renders the nginx configuration from the tera templates in `nginx/`. Pure: text in, text out,
//! so the plan (and `--dry-run`) knows whether the config changes before anything is touched.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// Where things are inside the nginx container.
pub const CONF_DIR: &str = "/etc/nginx/deployer";
pub const LIVE_DIR: &str = "/etc/nginx/deployer/live";
/// The candidate: `candidate/nginx.conf` includes `candidate/sites/*.conf`.
pub const CANDIDATE_DIR: &str = "/etc/nginx/deployer/candidate";
pub const CANDIDATE_SITES: &str = "/etc/nginx/deployer/candidate/sites";
pub const SSL_DIR: &str = "/etc/nginx/ssl";
/// Maintenance mode is this flag file being there (`deployer maintenance on` writes it into
/// `nginx.rendered_dir`): nginx checks for it on every request, so turning it on or off needs
/// no reload.
pub const MAINTENANCE_FLAG: &str = "maintenance.on";
/// The page nginx answers with in maintenance mode, beside the flag. Written before the flag and
/// never removed: a request that saw the flag just before `maintenance off` still finds its page
/// (removing the page itself made nginx answer such a request 404).
pub const MAINTENANCE_PAGE: &str = "maintenance.html";
/// The shared socket directory (a volume in nginx and both slots).
pub const SOCKET_DIR: &str = "/run/slots";
pub const LIVE_SOCKET: &str = "/run/slots/live.sock";
/// The live upstream's routes: `route/NN.sock`, each a symlink to `../live.sock` or, for a
/// canary's share, to the canary slot's socket. A client's key hashes to one route, so a share
/// is a count of routes and a client stays on its route.
pub const ROUTE_DIR: &str = "/run/slots/route";
pub const ROUTES: u8 = 100;
/// The cookie that carries a client's route key.
pub const ROUTE_COOKIE: &str = "deployer_route";
/// `deployer up --no-switch` points this at the new slot; nginx serves it on the preview port.
pub const PREVIEW_SOCKET: &str = "/run/slots/preview.sock";
/// The port nginx listens on for the preview, inside its container (published as
/// `nginx.preview_port`).
pub const PREVIEW_LISTEN: u16 = 8443;

/// A route's symlink name in [`ROUTE_DIR`].
pub fn route_file(route: u8) -> String {
    format!("{route}.sock")
}

/// What the templates may use.
#[derive(Debug, Clone, Serialize)]
pub struct Vars {
    pub service: String,
    pub server_name: String,
    pub https_port: u16,
    pub read_timeout_secs: u64,
}

/// One rendering: the base config (for a given site directory) and the site file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `nginx.conf` including [`LIVE_DIR`].
    pub main_live: String,
    /// `nginx.conf` including [`CANDIDATE_SITES`], for `nginx -t` before anything goes live.
    pub main_candidate: String,
    pub site: String,
}

/// Renders `base` and `site` templates (their text) with `vars`.
pub fn render(base: &str, site: &str, vars: &Vars) -> anyhow::Result<Rendered> {
    let mut tera = tera::Tera::default();
    tera.add_raw_template("base", base)
        .context("the base nginx template does not parse")?;
    tera.add_raw_template("site", site)
        .context("the site nginx template does not parse")?;
    let mut ctx = tera::Context::from_serialize(vars).context("template variables")?;
    ctx.insert("socket", LIVE_SOCKET);
    ctx.insert("ssl_dir", SSL_DIR);
    ctx.insert("conf_dir", CONF_DIR);
    ctx.insert("maintenance_flag", MAINTENANCE_FLAG);
    ctx.insert("maintenance_page", MAINTENANCE_PAGE);
    ctx.insert("routes", &ROUTES);
    ctx.insert("route_dir", ROUTE_DIR);
    ctx.insert("cookie", ROUTE_COOKIE);
    ctx.insert("preview_socket", PREVIEW_SOCKET);
    ctx.insert(
        "doors",
        &serde_json::json!([
            {"listen": 443, "upstream": "live"},
            {"listen": PREVIEW_LISTEN, "upstream": "preview"},
        ]),
    );
    let mut main = |dir: &str| {
        ctx.insert("site_dir", dir);
        tera.render("base", &ctx)
            .map_err(|e| anyhow::anyhow!("rendering the base nginx template: {}", chain(&e)))
    };
    let main_live = main(LIVE_DIR)?;
    let main_candidate = main(CANDIDATE_SITES)?;
    let site = tera
        .render("site", &ctx)
        .map_err(|e| anyhow::anyhow!("rendering the site nginx template: {}", chain(&e)))?;
    Ok(Rendered {
        main_live,
        main_candidate,
        site,
    })
}

/// Reads both templates and renders them.
pub fn render_files(base: &Path, site: &Path, vars: &Vars) -> anyhow::Result<Rendered> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the nginx template {}", p.display()))
    };
    render(&read(base)?, &read(site)?, vars)
}

/// tera's errors nest their cause; show all of it.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The page nginx answers with in maintenance mode (the message HTML-escaped).
pub fn maintenance_page(message: &str) -> String {
    let escaped: String = message
        .chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Down for maintenance</title></head>\n<body style=\"font-family:sans-serif;max-width:36rem;margin:4rem auto\"><h1>Down for maintenance</h1><p>{escaped}</p></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(https_port: u16) -> Vars {
        Vars {
            service: "hubspot-app".into(),
            server_name: "_".into(),
            https_port,
            read_timeout_secs: 30,
        }
    }

    fn repo_templates() -> (String, String) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../nginx");
        (
            std::fs::read_to_string(dir.join("nginx.conf.tera")).unwrap(),
            std::fs::read_to_string(dir.join("site.conf.tera")).unwrap(),
        )
    }

    #[test]
    fn the_repository_templates_render_the_expected_blocks() {
        let (base, site) = repo_templates();
        let r = render(&base, &site, &vars(443)).unwrap();
        assert!(r
            .main_live
            .contains("include /etc/nginx/deployer/live/*.conf;"));
        assert!(r
            .main_candidate
            .contains("include /etc/nginx/deployer/candidate/sites/*.conf;"));
        let routes: String = (0..ROUTES)
            .map(|r| format!("    server unix:/run/slots/route/{r}.sock max_fails=0;\n"))
            .collect();
        let expected_upstream =
            format!("upstream hubspot-app_live {{\n    hash $deployer_key;\n{routes}");
        assert!(r.site.contains(&expected_upstream), "{}", r.site);
        assert!(r
            .site
            .contains("    keepalive 1024;\n    keepalive_time 1s;"));
        assert!(r
            .site
            .contains("upstream hubspot-app_preview {\n    server unix:/run/slots/preview.sock;"));
        // Two HTTPS doors with the same routes: the live one and the preview.
        assert!(r.site.contains("listen 443 ssl http2 default_server;"));
        assert!(r.site.contains("listen 8443 ssl http2 default_server;"));
        assert!(r
            .site
            .contains("location /api/ {\n        proxy_pass http://hubspot-app_preview;"));
        assert_eq!(r.site.matches("error_page 502 = @no_preview;").count(), 1);
        assert!(r.site.contains("return 301 https://$host$request_uri;"));
        assert!(r
            .site
            .contains("ssl_certificate     /etc/nginx/ssl/cert.pem;"));
        assert!(r
            .site
            .contains("location /api/ {\n        proxy_pass http://hubspot-app_live;"));
        assert!(r
            .site
            .contains("proxy_set_header X-Forwarded-Proto $scheme;"));
        assert!(!r.site.contains("{{") && !r.site.contains("{%"));
    }

    #[test]
    fn the_redirect_names_a_non_default_https_port() {
        let (base, site) = repo_templates();
        let r = render(&base, &site, &vars(8443)).unwrap();
        assert!(r
            .site
            .contains("return 301 https://$host:8443$request_uri;"));
    }

    #[test]
    fn the_rendering_does_not_depend_on_the_slot() {
        // Switching slots is a symlink swap: the text must be the same for blue and green, or
        // every deploy would reload nginx.
        let (base, site) = repo_templates();
        assert_eq!(
            render(&base, &site, &vars(443)).unwrap(),
            render(&base, &site, &vars(443)).unwrap()
        );
        assert!(!site.contains("{{ slot") && !site.contains("{{slot"));
    }

    #[test]
    fn a_broken_template_is_a_clear_error() {
        let err = render("{{ nope", "x", &vars(443)).unwrap_err();
        assert!(format!("{err:#}").contains("base nginx template does not parse"));
        let err = render("x", "{{ undefined_variable }}", &vars(443)).unwrap_err();
        assert!(format!("{err:#}").contains("undefined_variable"), "{err:#}");
    }
}
