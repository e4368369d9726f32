//! `deployer` against the real Docker engine, a real nginx container and the real app image.
//! Each test owns a service name, ports and directories, so tests run side by side; each cleans
//! up what it created. Needs: a Docker engine, `local/nginx:bookworm`
//! (scripts/make-base-images.sh) and ssl/ (scripts/gen-self-signed.sh); .ci/run makes both.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

const IMAGE: &str = "hubspot-app-test";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The app image, built once per test run with the project's script.
fn app_image() -> String {
    static BUILT: OnceLock<String> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Command::new(root().join("scripts/build-app-image.sh"))
                .arg(IMAGE)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "image build failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            format!("{IMAGE}:latest")
        })
        .clone()
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Host {
    service: String,
    dir: PathBuf,
    https: u16,
    http: u16,
    blue: u16,
    preview: u16,
}

impl Host {
    /// A deploy target of its own: ports from `n`, directories under the temp dir.
    fn new(name: &str, n: u16) -> Self {
        let service = format!("dt-{name}");
        let dir = std::env::temp_dir().join(format!("deployer-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let base = 21000 + n * 10;
        let host = Self {
            service,
            dir,
            http: base,
            https: base + 1,
            blue: base + 2,
            preview: base + 4,
        };
        host.cleanup();
        host.write_config(&[]);
        host
    }

    /// Writes deploy.yml; `edits` replace text in the default one.
    fn write_config(&self, edits: &[(&str, &str)]) {
        let root = root();
        let mut yml = format!(
            "\
service: {service}
image: {service}-img
build:
  context: {root}
  dockerfile: app/Dockerfile
  pre: [scripts/build-app-binary.sh]
slots:
  blue: {{port: {blue}}}
  green: {{port: {green}}}
env:
  HUBSPOT_ENABLED: \"false\"
health:
  path: /ready
  interval: 1s
  timeout: 60s
  expect_status: 200
nginx:
  template: {root}/nginx/site.conf.tera
  base: {root}/nginx/nginx.conf.tera
  rendered_dir: {dir}/nginx
  container: {service}-nginx
  http_port: {http}
  https_port: {https}
  preview_port: {preview}
  ssl_dir: {root}/ssl
state_dir: {dir}/state
drain_timeout: 10s
",
            service = self.service,
            root = root.display(),
            dir = self.dir.display(),
            blue = self.blue,
            green = self.blue + 1,
            http = self.http,
            https = self.https,
            preview = self.preview,
        );
        for (from, to) in edits {
            assert!(yml.contains(from), "{from}");
            yml = yml.replace(from, to);
        }
        std::fs::write(self.dir.join("deploy.yml"), yml).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_deployer"));
        c.arg("-c").arg(self.dir.join("deploy.yml")).args(args);
        c
    }

    fn deployer(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs the deployer, which must exit with `code`; its stdout and stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.deployer(args);
        assert_eq!(out.status.code(), Some(code), "{}", text(&out));
        text(&out)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.deployer(args);
        assert!(
            out.status.success(),
            "deployer {args:?} failed: {}",
            text(&out)
        );
        text(&out)
    }

    fn up(&self) -> String {
        self.ok(&["up", "--image", &app_image()])
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).unwrap()
    }

    fn client() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    /// Which slot answers `/health` through nginx.
    fn serving(&self) -> String {
        let r = Self::client()
            .get(format!("https://127.0.0.1:{}/health", self.https))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().unwrap()["slot"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The slot that answers `/health` on `port` for a client whose route cookie is `key`.
    fn slot_for(client: &reqwest::blocking::Client, port: u16, key: &str) -> String {
        let r = client
            .get(format!("https://127.0.0.1:{port}/health"))
            .header("cookie", format!("deployer_route={key}"))
            .send()
            .unwrap();
        let status = r.status();
        assert_eq!(status, 200, "{key}: {}", r.text().unwrap_or_default());
        r.json::<Value>().unwrap()["slot"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The share of `clients` distinct clients (route cookies) that `slot` answers, through
    /// the live door.
    fn share_of(&self, slot: &str, clients: usize) -> f64 {
        let client = Self::client();
        let hits = (0..clients)
            .filter(|i| Self::slot_for(&client, self.https, &format!("client-{i}")) == slot)
            .count();
        hits as f64 / clients as f64
    }

    fn history(&self, n: usize) -> Value {
        serde_json::from_slice(
            &self
                .deployer(&["history", "--json", "-n", &n.to_string()])
                .stdout,
        )
        .unwrap()
    }

    fn container_state(&self, slot: &str) -> String {
        let out = docker(&[
            "inspect",
            "-f",
            "{{.State.Status}}",
            &format!("{}-{slot}", self.service),
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Everything of this service on the host, for before/after comparisons.
    fn snapshot(&self) -> String {
        let s = &self.service;
        let mut out = String::new();
        for args in [
            vec![
                "ps",
                "-a",
                "--filter",
                &format!("name={s}-") as &str,
                "--format",
                "{{.Names}} {{.Image}} {{.State}}",
            ],
            vec![
                "volume",
                "ls",
                "--filter",
                &format!("name={s}-") as &str,
                "--format",
                "{{.Name}}",
            ],
            vec![
                "network",
                "ls",
                "--filter",
                &format!("name={s}-") as &str,
                "--format",
                "{{.Name}}",
            ],
            vec![
                "images",
                &format!("{}-img", self.service),
                "--format",
                "{{.Repository}}:{{.Tag}} {{.ID}}",
            ],
        ] {
            let mut lines: Vec<String> = String::from_utf8_lossy(&docker(&args).stdout)
                .lines()
                .map(str::to_string)
                .collect();
            lines.sort();
            out.push_str(&lines.join("\n"));
            out.push('\n');
        }
        for f in [
            "nginx/nginx.conf",
            "nginx/live/site.conf",
            "state/history.jsonl",
            "state/lock.json",
        ] {
            out.push_str(&format!(
                "{f}: {:?}\n",
                std::fs::read_to_string(self.dir.join(f)).ok()
            ));
        }
        out
    }

    fn cleanup(&self) {
        let s = &self.service;
        for c in ["blue", "green", "nginx"] {
            docker(&["rm", "-f", &format!("{s}-{c}")]);
        }
        docker(&[
            "volume",
            "rm",
            "-f",
            &format!("{s}-data"),
            &format!("{s}-sockets"),
        ]);
        docker(&["network", "rm", &format!("{s}-net")]);
        // Images this service built or tagged (each test uses its own repository name), removed
        // by name, never by id: a tag of the shared test image has that image's id, and
        // `rmi -f ID` would delete the shared image under every other test still running.
        let refs = docker(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &format!("{s}-img"),
        ]);
        for reference in String::from_utf8_lossy(&refs.stdout).split_whitespace() {
            docker(&["rmi", reference]);
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.cleanup();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Requests through nginx on keep-alive connections until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    /// Which slot answered each `/health`.
    slots: Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>,
    threads: Vec<std::thread::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(https: u16, threads: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let slots = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
        let threads = (0..threads)
            .map(|i| {
                let (stop, ok, slots) = (stop.clone(), ok.clone(), slots.clone());
                std::thread::spawn(move || {
                    let client = Host::client();
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let url = if i % 2 == 0 {
                            "health"
                        } else {
                            "api/hubspot/test"
                        };
                        match client
                            .get(format!("https://127.0.0.1:{https}/{url}"))
                            .send()
                        {
                            // /api/hubspot/test answers 503 "disabled" from a slot without
                            // HubSpot: an answer from the app, which is what counts here.
                            Ok(r) if r.status() == 200 || r.status() == 503 && i % 2 == 1 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                if i % 2 == 0 {
                                    let body: Value = r.json().unwrap_or_default();
                                    let slot = body["slot"].as_str().unwrap_or("?").to_string();
                                    *slots.lock().unwrap().entry(slot).or_default() += 1;
                                }
                            }
                            Ok(r) => failures.push(format!("status {}", r.status())),
                            Err(e) => failures.push(format!("{e:?}")),
                        }
                    }
                    failures
                })
            })
            .collect();
        Self {
            stop,
            ok,
            slots,
            threads,
        }
    }

    /// How many `/health` answers each slot gave so far.
    fn slots(&self) -> std::collections::BTreeMap<String, u64> {
        self.slots.lock().unwrap().clone()
    }

    /// Stops the load and asserts it ran (more than `min_ok` answers) and not one request
    /// failed.
    fn finish(self, min_ok: u64) {
        self.stop.store(true, Ordering::Relaxed);
        let failures: Vec<String> = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let ok = self.ok.load(Ordering::Relaxed);
        assert!(ok > min_ok, "the load ran ({ok} requests)");
        assert!(
            failures.is_empty(),
            "{} of {ok} requests failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
    }
}

#[test]
fn first_deploy_builds_then_second_deploy_and_rollback_switch_without_dropping_a_request() {
    let host = Host::new("flow", 0);
    app_image(); // the static binary is built; the deployer's own build reuses it

    // First deploy on a bare host: builds through the Docker API, creates everything, blue.
    let out = host.ok(&["up"]);
    assert!(out.contains("build image dt-flow-img:"), "{out}");
    assert!(out.contains("create network dt-flow-net"), "{out}");
    assert_eq!(host.serving(), "blue");
    let status = host.status();
    assert_eq!(status["live"], "blue");
    let built_version = status["slots"]["blue"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(built_version.len() >= 12, "{built_version}");
    let redirect = Host::client()
        .get(format!("http://127.0.0.1:{}/api/hubspot/test", host.http))
        .send()
        .unwrap();
    assert_eq!(redirect.status(), 301);
    assert_eq!(
        redirect.headers()["location"],
        format!("https://127.0.0.1:{}/api/hubspot/test", host.https).as_str()
    );

    // Under load: up (to green), rollback (to blue), up again: not one request may fail.
    let load = Load::start(host.https, 4);
    std::thread::sleep(Duration::from_millis(500));
    let out = host.up();
    assert!(
        out.contains("keep the live nginx config (unchanged: no reload)"),
        "{out}"
    );
    assert_eq!(host.serving(), "green");
    assert_eq!(
        host.container_state("blue"),
        "exited",
        "kept, stopped, for rollback"
    );
    host.ok(&["rollback"]);
    assert_eq!(host.serving(), "blue");
    assert_eq!(host.container_state("green"), "exited");
    host.up();
    assert_eq!(host.serving(), "green");
    std::thread::sleep(Duration::from_millis(500));
    load.finish(100);

    let status = host.status();
    assert_eq!(status["live"], "green");
    assert_eq!(status["slots"]["green"]["live"], true);
    assert_eq!(status["slots"]["green"]["state"], "running");
    assert_eq!(
        status["slots"]["blue"]["version"], built_version,
        "rollback target is the built version"
    );
    assert_eq!(status["last_deploy"]["command"], "up");
    assert_eq!(status["last_deploy"]["outcome"], "ok");
    let history = std::fs::read_to_string(host.dir.join("state/history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 4, "{history}");
    let plain = host.ok(&["status"]);
    assert!(
        plain.contains("live slot green") && plain.contains("<- live"),
        "{plain}"
    );
}

#[test]
fn an_unhealthy_green_is_stopped_with_its_logs_and_blue_keeps_serving() {
    let host = Host::new("unhealthy", 1);
    host.up();
    host.write_config(&[
        ("path: /ready", "path: /never-ready"),
        ("timeout: 60s", "timeout: 3s"),
    ]);
    let started = Instant::now();
    let err = host.fails(&["up", "--image", &app_image()], 1);
    assert!(
        err.contains("did not answer 200 at http://127.0.0.1:") && err.contains("within 3s"),
        "{err}"
    );
    assert!(err.contains("last answer: 404"), "{err}");
    assert!(
        err.contains("app listening"),
        "its last log lines are shown: {err}"
    );
    assert!(err.contains("traffic stayed on blue"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        host.container_state("green"),
        "exited",
        "the failed green is stopped"
    );
    assert_eq!(host.serving(), "blue");
    assert_eq!(host.status()["live"], "blue");
}

#[test]
fn a_crashing_green_fails_fast_not_after_the_health_timeout() {
    let host = Host::new("crash", 2);
    host.up();
    // A bad setting makes the app exit at start (exit code 2), under a 300 s health timeout.
    host.write_config(&[
        ("HUBSPOT_ENABLED: \"false\"", "HUBSPOT_ENABLED: \"maybe\""),
        ("timeout: 60s", "timeout: 300s"),
    ]);
    let started = Instant::now();
    let out = host.deployer(&["up", "--image", &app_image()]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = text(&out);
    assert!(
        err.contains("exited (exit code 2) before turning healthy"),
        "{err}"
    );
    assert!(
        err.contains("HUBSPOT_ENABLED"),
        "the app's own error is shown: {err}"
    );
    assert!(took < Duration::from_secs(20), "failed fast: {took:?}");
    assert_eq!(host.serving(), "blue");
}

#[test]
fn an_invalid_template_is_caught_by_nginx_t_and_the_live_config_stays() {
    let host = Host::new("template", 3);
    host.up();
    let live_before = std::fs::read_to_string(host.dir.join("nginx/live/site.conf")).unwrap();
    let bad = host.dir.join("bad-site.conf.tera");
    let good = std::fs::read_to_string(root().join("nginx/site.conf.tera")).unwrap();
    std::fs::write(
        &bad,
        good.replacen(
            "    proxy_connect_timeout",
            "    no_such_directive on;\n    proxy_connect_timeout",
            1,
        ),
    )
    .unwrap();
    assert!(
        std::fs::read_to_string(&bad)
            .unwrap()
            .contains("no_such_directive"),
        "the bad directive went into the template"
    );
    let bad = bad.display().to_string();
    let template = format!("{}/nginx/site.conf.tera", root().display());
    host.write_config(&[(template.as_str(), bad.as_str())]);
    let err = host.fails(&["up", "--image", &app_image()], 1);
    assert!(
        err.contains("unknown directive \"no_such_directive\""),
        "{err}"
    );
    assert!(err.contains("the live config stays"), "{err}");
    assert_eq!(
        std::fs::read_to_string(host.dir.join("nginx/live/site.conf")).unwrap(),
        live_before
    );
    assert_eq!(host.container_state("green"), "exited");
    assert_eq!(host.serving(), "blue");
}

#[test]
fn a_second_up_is_refused_while_one_holds_the_lock() {
    let host = Host::new("lock", 4);
    host.up();
    // A slow deploy: its pre-build step sleeps while it holds the lock.
    host.write_config(&[("pre: [scripts/build-app-binary.sh]", "pre: [\"sleep 4\"]")]);
    let mut first = host.command(&["up"]).spawn().unwrap();
    let lock = host.dir.join("state/lock.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lock.exists() {
        assert!(Instant::now() < deadline, "the first up took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = host.fails(&["up", "--image", &app_image()], 3);
    assert!(
        err.contains("another deploy holds the lock") && err.contains("deployer up"),
        "{err}"
    );
    assert!(host.ok(&["lock", "status"]).contains("held by"));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        host.ok(&["lock", "status"]).contains("stale"),
        "a killed holder's lock is stale"
    );
    assert!(host.ok(&["lock", "release"]).contains("released"));
    assert!(host.ok(&["lock", "status"]).contains("free"));
}

#[test]
fn a_deployer_killed_mid_deploy_converges_on_the_next_run() {
    let host = Host::new("killed", 5);
    host.up();
    // Kill -9 the deployer while it waits for green's health (green's /ready is slow to come:
    // the health path 404s, so the wait is long), then run `up` again with a good config.
    host.write_config(&[("path: /ready", "path: /not-yet")]);
    let mut child = host
        .command(&["up", "--image", &app_image()])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while host.container_state("green") != "running" {
        assert!(Instant::now() < deadline, "green started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL: no cleanup at all
    child.wait().unwrap();
    assert!(
        host.dir.join("state/lock.json").exists(),
        "the killed run left its lock"
    );
    assert_eq!(
        host.status()["live"],
        "blue",
        "status understands the state"
    );
    assert_eq!(host.serving(), "blue");

    host.write_config(&[]);
    let out = host.up();
    assert!(out.contains("taking over a stale lock"), "{out}");
    assert!(
        out.contains("drain and remove the old green container"),
        "{out}"
    );
    assert_eq!(host.serving(), "green");
    assert_eq!(host.status()["live"], "green");
    assert_eq!(host.container_state("blue"), "exited");
}

#[test]
fn dry_run_changes_nothing_and_prints_the_plan() {
    let host = Host::new("dryrun", 6);
    // On a bare host...
    let before = host.snapshot();
    let out = host.ok(&["up", "--dry-run", "--image", &app_image()]);
    assert!(out.contains("dry run: nothing was changed"), "{out}");
    assert!(
        out.contains("create network dt-dryrun-net") && out.contains("switch traffic to blue"),
        "{out}"
    );
    assert_eq!(host.snapshot(), before);
    // ...and on a deployed one, for up and for rollback.
    host.up();
    host.up();
    let before = host.snapshot();
    let out = host.ok(&["up", "--dry-run"]);
    assert!(out.contains("build image dt-dryrun-img:"), "{out}");
    assert!(out.contains("switch traffic green -> blue"), "{out}");
    let out = host.ok(&["rollback", "--dry-run"]);
    assert!(
        out.contains("start the kept blue container dt-dryrun-blue"),
        "{out}"
    );
    assert!(out.contains("switch traffic green -> blue"), "{out}");
    host.ok(&["prune", "--dry-run"]);
    assert_eq!(host.snapshot(), before, "nothing changed on the host");
}

#[test]
fn bad_config_and_nothing_to_roll_back_have_their_own_exit_codes() {
    let host = Host::new("codes", 7);
    host.write_config(&[("timeout: 60s", "timeout: forever")]);
    let out = host.deployer(&["up"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("deploy.yml:15: health.timeout"),
        "{}",
        text(&out)
    );
    host.write_config(&[]);
    let out = host.deployer(&["rollback"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("nothing to roll back to: no slot is live yet"),
        "{}",
        text(&out)
    );
}

/// The test sshd's files (scripts/ensure-sshd.sh, run by scripts/setup.sh).
fn ssh_dir() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("DEPLOYER_TEST_SSH_DIR").unwrap_or_else(|_| "/etc/deployer-test-ssh".into()),
    );
    assert!(
        dir.join("id_ed25519").is_file() && dir.join("known_hosts").is_file(),
        "no test sshd in {}: run scripts/ensure-sshd.sh (scripts/setup.sh does)",
        dir.display()
    );
    dir
}

const SSH_USER: &str = "deployer-ci";

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    assert!(
        out.status.success(),
        "no user {user}: run scripts/ensure-sshd.sh"
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn a_remote_host_over_ssh_builds_deploys_switches_and_rolls_back() {
    use std::os::unix::fs::MetadataExt;

    let host = Host::new("ssh", 8);
    let ssh = ssh_dir();
    let uid = uid_of(SSH_USER);
    // The host's side of the files belongs to the SSH user: only writes over SSH can land there.
    let remote = host.dir.join("remote");
    std::fs::create_dir_all(&remote).unwrap();
    std::os::unix::fs::chown(&remote, Some(uid), None).unwrap();
    let dir = host.dir.display().to_string();
    let remote_section = format!(
        "drain_timeout: 10s\nremote:\n  host: 127.0.0.1\n  port: 2222\n  user: {SSH_USER}\n  identity: {ssh}/id_ed25519\n  known_hosts: {ssh}/known_hosts\n",
        ssh = ssh.display()
    );
    let config = |extra: &[(&str, &str)]| {
        let mut edits = vec![
            (
                format!("rendered_dir: {dir}/nginx"),
                format!("rendered_dir: {dir}/remote/nginx"),
            ),
            (
                format!("state_dir: {dir}/state"),
                format!("state_dir: {dir}/remote/state"),
            ),
            ("drain_timeout: 10s\n".to_string(), remote_section.clone()),
        ];
        edits.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        let edits: Vec<(&str, &str)> = edits
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        host.write_config(&edits);
    };
    config(&[]);
    app_image(); // the static binary is built; the deployer's own build reuses it

    // The ports are checked on the host (`ss` over SSH): one taken by another program fails.
    let squatter = std::net::TcpListener::bind(("0.0.0.0", host.preview)).unwrap();
    let err = host.fails(&["check"], 6);
    assert!(
        err.lines().any(|l| l.contains("FAIL")
            && l.contains("ports")
            && l.contains(&format!("{} (nginx.preview_port)", host.preview))),
        "{err}"
    );
    drop(squatter);
    let out = host.ok(&["up", "--dry-run"]);
    assert!(
        out.contains(&format!(
            "nothing was changed on {SSH_USER}@127.0.0.1:2222 (over SSH)"
        )),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("pass") && l.contains("ports")),
        "{out}"
    );
    // First deploy: the build context goes through the tunnel to the engine, and so does all
    // the rest; the health check and the final check reach the host's ports through it.
    let out = host.ok(&["up"]);
    assert!(out.contains("build image dt-ssh-img:"), "{out}");
    assert_eq!(host.serving(), "blue");
    for f in [
        "state/history.jsonl",
        "nginx/nginx.conf",
        "nginx/live/site.conf",
    ] {
        let meta = std::fs::metadata(remote.join(f)).unwrap();
        assert_eq!(meta.uid(), uid, "{f} was written over SSH by {SSH_USER}");
    }

    // Under load, up to green and back: not one request may fail.
    let load = Load::start(host.https, 4);
    std::thread::sleep(Duration::from_millis(300));
    host.up();
    assert_eq!(host.serving(), "green");
    host.ok(&["rollback"]);
    assert_eq!(host.serving(), "blue");
    std::thread::sleep(Duration::from_millis(300));
    load.finish(50);
    let status = host.status();
    assert_eq!(status["live"], "blue");
    assert_eq!(status["host"], "deployer-ci@127.0.0.1:2222 (over SSH)");
    assert_eq!(status["last_deploy"]["command"], "rollback");
    assert!(host.ok(&["lock", "status"]).contains("free"));
    let history = std::fs::read_to_string(remote.join("state/history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 3, "{history}");

    // The lock lives on the host: a holder elsewhere refuses the deploy (exit 3) and
    // `lock release` frees it, both over SSH.
    let lock = remote.join("state/lock.json");
    std::fs::write(
        &lock,
        r#"{"user":"ops","host":"laptop-7","pid":4242,"since":"2026-11-23T10:00:00Z","command":"deployer up"}"#,
    )
    .unwrap();
    let out = host.deployer(&["up", "--image", &app_image()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("ops@laptop-7 (pid 4242)"),
        "{}",
        text(&out)
    );
    let out = host.ok(&["lock", "release"]);
    assert!(
        out.contains("released the lock held by ops@laptop-7"),
        "{out}"
    );
    assert!(!lock.exists());

    // Access problems are refused before anything happens, with the fix, exit code 4.
    let other = host.dir.join("other_key");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", text(&keygen));
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_key: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let cases = [
        // A host key that is not in known_hosts: never trusted on first use.
        ("", "is not in"),
        // A different key for the host: refused as a possible man in the middle.
        (
            &format!("[127.0.0.1]:2222 {}\n", other_key.join(" ")) as &str,
            "is NOT the one in",
        ),
    ];
    for (i, (known, expect)) in cases.iter().enumerate() {
        let file = host.dir.join(format!("known_hosts_{i}"));
        std::fs::write(&file, known).unwrap();
        config(&[(
            &format!("known_hosts: {}/known_hosts", ssh.display()),
            &format!("known_hosts: {}", file.display()),
        )]);
        let msg = host.fails(&["status"], 4);
        assert!(
            msg.contains(expect) && msg.contains("SHA256:"),
            "{expect}: {msg}"
        );
    }
    // A key the host does not accept.
    config(&[(
        &format!("identity: {}/id_ed25519", ssh.display()),
        &format!("identity: {}", other.display()),
    )]);
    let out = host.deployer(&["up", "--image", &app_image()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("authentication as {SSH_USER} failed")),
        "{}",
        text(&out)
    );
    assert_eq!(host.serving(), "blue", "nothing changed");
}

/// The simulator's image, built once per test run with the project's script.
fn sim_image() -> String {
    static BUILT: OnceLock<String> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Command::new(root().join("scripts/build-sim-image.sh"))
                .arg("deployer-test-sim:latest")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "sim image build failed: {}",
                text(&out)
            );
            "deployer-test-sim:latest".to_string()
        })
        .clone()
}

/// A container removed when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.0]);
    }
}

impl Host {
    /// The service's network, made before the first deploy so HubSpot can be on it.
    fn create_network(&self) {
        assert!(
            docker(&["network", "create", &format!("{}-net", self.service)])
                .status
                .success()
        );
    }

    /// The simulator as container `<service>-<name>` on the service's network, listening on
    /// 8090 there; `docker_options` go to `docker run`, `sim_args` to the simulator.
    fn run_sim(&self, name: &str, docker_options: &[&str], sim_args: &[&str]) -> Container {
        let sim = Container(format!("{}-{name}", self.service));
        let network = format!("{}-net", self.service);
        let image = sim_image();
        let mut args = vec!["run", "-d", "--name", &sim.0, "--network", &network];
        args.extend(docker_options);
        args.extend([image.as_str(), "--listen", "0.0.0.0:8090"]);
        args.extend(sim_args);
        let out = docker(&args);
        assert!(out.status.success(), "{}", text(&out));
        sim
    }
}

/// Everything the outside reaches goes through the real front door: the app deployed behind
/// nginx with HubSpot (the simulator, in a container on the service network) delivering signed
/// webhooks to nginx's HTTPS server, which must verify against the certificate's name; the
/// contact cache filled from those webhooks; the dashboard signed into over HTTPS; every public
/// route of the app's table proxied and every internal one refused; HSTS and the security
/// headers; 413 for a body over the limit.
#[test]
fn the_front_door_serves_hubspot_webhooks_the_dashboard_and_every_public_route() {
    let host = Host::new("front", 9);
    let s = host.service.clone();
    let nginx_name = format!("{s}-nginx");
    // A certificate for the name the simulator calls nginx by (and localhost for the test),
    // issued by a CA of the test's own that the simulator trusts (a self-signed certificate
    // marked CA is refused as a server's by rustls, like by browsers).
    let ssl = host.dir.join("ssl");
    std::fs::create_dir_all(&ssl).unwrap();
    std::fs::write(
        ssl.join("leaf.ext"),
        format!("subjectAltName=DNS:{nginx_name},DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(&ssl)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=front-door test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    for f in ["key.pem", "cert.pem", "ca.pem"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(ssl.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // Secrets through env_file, as in production.
    let secret = "front-door-client-secret";
    std::fs::write(
        host.dir.join("app.env"),
        format!("HUBSPOT_ACCESS_TOKEN=pat-front\nHUBSPOT_CLIENT_SECRET={secret}\nADMIN_TOKEN=admin-front\nTOKEN_ENCRYPTION_KEY=AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"),
    )
    .unwrap();
    host.write_config(&[
        (
            "  HUBSPOT_ENABLED: \"false\"\n",
            &format!("  HUBSPOT_BASE_URL: http://{s}-sim:8090\n  SYNC_SCHEDULE: \"off\"\n  SYNC_OBJECTS: contacts,companies,deals\nenv_file: {}/app.env\n", host.dir.display()),
        ),
        (&format!("ssl_dir: {}/ssl", root().display()), &format!("ssl_dir: {}", ssl.display())),
    ]);
    // HubSpot on the service network, delivering webhooks to nginx's public HTTPS server.
    host.create_network();
    let sim_port = 21000 + 9 * 10 + 5;
    let _sim = host.run_sim(
        "sim",
        &[
            "-p",
            &format!("127.0.0.1:{sim_port}:8090"),
            "-v",
            &format!("{}:/ssl:ro", ssl.display()),
        ],
        &[
            "--webhook-url",
            &format!("https://{nginx_name}/webhooks/hubspot"),
            "--webhook-secret",
            secret,
            "--webhook-ca",
            "/ssl/ca.pem",
            "--webhook-retry-delay",
            "300ms",
        ],
    );
    host.up();

    let front = format!("https://127.0.0.1:{}", host.https);
    let http = Host::client();
    // Every route of the app's table: public ones reach the app, internal ones get nginx's 404.
    for route in app::http::route_table() {
        let path = route.path.replace("{id}", "1");
        let r = http.get(format!("{front}{path}")).send().unwrap();
        let status = r.status().as_u16();
        let hsts = r.headers().get("strict-transport-security").is_some();
        let body = r.text().unwrap();
        let from_nginx = body.contains("no such route");
        match route.exposure {
            app::http::Exposure::Public => assert!(
                !from_nginx,
                "{path} is public but nginx refused it: {status} {body}"
            ),
            app::http::Exposure::Internal => assert!(
                status == 404 && from_nginx,
                "{path} is internal but nginx let it through: {status} {body}"
            ),
        }
        assert!(hsts, "{path}: no Strict-Transport-Security");
    }
    let r = http.get(format!("{front}/health")).send().unwrap();
    for h in [
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "content-security-policy",
    ] {
        assert!(r.headers().get(h).is_some(), "no {h}: {:?}", r.headers());
    }
    // Too big is 413, from the app (16 KiB) and from nginx (over 1100 KiB).
    let big = format!(
        r#"{{"email": "a@b.co", "firstname": "{}"}}"#,
        "x".repeat(20_000)
    );
    let r = http
        .post(format!("{front}/api/hubspot/test"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = http
        .post(format!("{front}/api/contacts"))
        .bearer_auth("admin-front")
        .header("content-type", "application/json")
        .body(vec![b' '; 1200 * 1024])
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().unwrap().contains("too_large"));

    // A contact written through the front door reaches HubSpot; HubSpot's signed webhook comes
    // back through nginx, and the app fills its cache from it.
    let r = http
        .post(format!("{front}/api/contacts"))
        .bearer_auth("admin-front")
        .json(&serde_json::json!({"email": "door@example.com", "firstname": "Door", "phone": "+14155550177"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let stats: Value = http
            .get(format!("{front}/api/stats"))
            .bearer_auth("admin-front")
            .send()
            .unwrap()
            .json()
            .unwrap();
        if stats["webhooks"]["processed"].as_u64() > Some(0)
            && stats["cache"]["entries"].as_u64() > Some(0)
        {
            break stats;
        }
        if std::time::Instant::now() > deadline {
            let deliveries = http
                .get(format!("http://127.0.0.1:{sim_port}/_sim/webhooks"))
                .send()
                .and_then(|r| r.text());
            panic!("no webhook processed: {stats}; HubSpot's deliveries: {deliveries:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(stats["webhooks"]["rejected"], 0, "{stats}");
    let deliveries: Value = http
        .get(format!("http://127.0.0.1:{sim_port}/_sim/webhooks"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let attempts = deliveries["attempts"].as_array().unwrap();
    assert!(
        !attempts.is_empty()
            && attempts
                .iter()
                .all(|a| a["status"] == 200 && a["delivered"] == true),
        "HubSpot's deliveries through nginx, each answered 200: {deliveries}"
    );
    let r: Value = http
        .get(format!("{front}/api/contacts/lookup?phone=%2B14155550177"))
        .bearer_auth("admin-front")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(r.to_string().contains("Door"), "{r}");

    // Users, roles, the audit, flags and privacy through the front door: a support user made
    // here looks the phone up (masked), may not read the audit; the admin's audit shows the
    // lookup from the client's address as nginx saw it; a flag switched here holds; the
    // person's export finds the cached contact.
    let r: Value = http
        .post(format!("{front}/api/users"))
        .bearer_auth("admin-front")
        .json(&serde_json::json!({"name": "door-support", "role": "support"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let support = r["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    let r = http
        .get(format!("{front}/api/contacts/lookup?phone=%2B14155550177"))
        .bearer_auth(&support)
        .header("user-agent", "front-door-test")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let masked = r.text().unwrap();
    assert!(
        masked.contains("Door") && !masked.contains("door@example.com"),
        "{masked}"
    );
    let r = http
        .get(format!("{front}/api/audit"))
        .bearer_auth(&support)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let audit: Value = http
        .get(format!(
            "{front}/api/audit?user=door-support&phone=%2B14155550177"
        ))
        .bearer_auth("admin-front")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let entry = &audit["entries"][0];
    assert_eq!(entry["user_agent"], "front-door-test", "{audit}");
    assert!(
        entry["ip"].as_str().is_some_and(|ip| !ip.is_empty()),
        "nginx's X-Real-IP: {audit}"
    );
    let r = http
        .put(format!("{front}/api/flags/HUBSPOT_OUTBOUND_SEARCH"))
        .bearer_auth("admin-front")
        .json(&serde_json::json!({"enabled": false}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{front}/api/contacts/search"))
        .bearer_auth(&support)
        .json(&serde_json::json!({"query": "door"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 503, "search off through the flag");
    let r = http
        .put(format!("{front}/api/flags/HUBSPOT_OUTBOUND_SEARCH"))
        .bearer_auth("admin-front")
        .json(&serde_json::json!({"enabled": true}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let export: Value = http
        .get(format!(
            "{front}/api/privacy/subjects?email=door@example.com"
        ))
        .bearer_auth("admin-front")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        export["cache"][0]["contact"]["firstname"], "Door",
        "{export}"
    );

    // A deal made in HubSpot with its company, synced on request and read back with its
    // association, all through the front door.
    let sim = format!("http://127.0.0.1:{sim_port}");
    let create = |object_type: &str, body: Value| -> String {
        let r: Value = http
            .post(format!("{sim}/crm/objects/2026-03/{object_type}"))
            .bearer_auth("pat-front")
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap();
        r["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_string()
    };
    let company = create(
        "companies",
        serde_json::json!({"properties": {"name": "Front Door Inc"}}),
    );
    let deal = create(
        "deals",
        serde_json::json!({"properties": {"dealname": "Through nginx", "amount": "42"},
            "associations": [{"to": {"id": company}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]}),
    );
    // The types this portal syncs, chosen through the front door (and read back).
    let r = http
        .put(format!("{front}/api/sync/objects"))
        .bearer_auth("admin-front")
        .json(&serde_json::json!({"objects": ["deals", "companies", "contacts"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let chosen: Value = http
        .get(format!("{front}/api/sync/objects"))
        .bearer_auth("admin-front")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        chosen["objects"],
        serde_json::json!(["deals", "companies", "contacts"]),
        "the portal's own order, not SYNC_OBJECTS'"
    );
    let r = http
        .post(format!("{front}/api/sync/run?object_type=deals"))
        .bearer_auth("admin-front")
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let r = http
            .get(format!("{front}/api/objects/deals/{deal}"))
            .bearer_auth("admin-front")
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().unwrap();
        // The run stores the deal, then reads its associations: wait for both.
        if status == 200 && body["associations_pending"] == false {
            break body;
        }
        assert!(
            (status == 404 || status == 200) && Instant::now() < deadline,
            "the synced deal through nginx: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(body["properties"]["dealname"], "Through nginx");
    assert_eq!(body["associations"]["companies"][0]["id"], company.as_str());
    assert_eq!(
        body["associations"]["companies"][0]["types"][0]["label"],
        "Primary"
    );

    // Two-way through the front door: an app-owned field mapped (checked against HubSpot's
    // definitions), changed here, and in HubSpot moments later.
    let r = http
        .post(format!("{sim}/crm/properties/2026-03/deals"))
        .bearer_auth("pat-front")
        .json(&serde_json::json!({"name": "commission_amount", "label": "Commission", "type": "number", "fieldType": "number"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    let r = http
        .put(format!("{front}/api/mappings/deals"))
        .bearer_auth("admin-front")
        .json(&serde_json::json!({"mappings": [{"field": "commission", "hubspot": "commission_amount", "owner": "app"}]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let r = http
        .patch(format!("{front}/api/objects/deals/{deal}"))
        .bearer_auth("admin-front")
        .json(&serde_json::json!({"fields": {"commission": "42.5"}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d: Value = http
            .get(format!(
                "{sim}/crm/objects/2026-03/deals/{deal}?properties=commission_amount"
            ))
            .bearer_auth("pat-front")
            .send()
            .unwrap()
            .json()
            .unwrap();
        if d["properties"]["commission_amount"] == "42.5" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change did not reach HubSpot: {d}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Lifecycle events through the front door: stored (202), delivered by the worker to
    // HubSpot, and shown with what they changed.
    let r = http
        .post(format!("{front}/api/events"))
        .bearer_auth("admin-front")
        .json(&serde_json::json!({"events": [
            {"event_id": "front-1", "type": "user_signup", "occurred_at": "2026-11-01T10:00:00Z",
             "subject": {"external_id": "front-user"}, "data": {"email": "front-user@example.com", "firstname": "Front"}},
            {"event_id": "front-2", "type": "nova_earned", "occurred_at": "2026-11-01T10:05:00Z",
             "subject": {"external_id": "front-user"}, "data": {"amount": 12}}]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let view = loop {
        let view: Value = http
            .get(format!("{front}/api/events/front-2"))
            .bearer_auth("admin-front")
            .send()
            .unwrap()
            .json()
            .unwrap();
        if view["delivery"]["state"] == "sent" {
            break view;
        }
        assert!(
            Instant::now() < deadline,
            "the event was not delivered: {view}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(view["changes"]["nova_balance"], "12", "{view}");
    let contact: Value = http
        .get(format!(
            "{sim}/crm/objects/2026-03/contacts/front-user?idProperty=product_user_id&properties=email,nova_balance"
        ))
        .bearer_auth("pat-front")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        contact["properties"]["email"], "front-user@example.com",
        "{contact}"
    );
    assert_eq!(contact["properties"]["nova_balance"], "12", "{contact}");

    // The dashboard, signed into over HTTPS with the admin token (a session cookie).
    let browser = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .cookie_store(true)
        .build()
        .unwrap();
    let login = browser.get(format!("{front}/dashboard")).send().unwrap();
    assert_eq!(login.status(), 401);
    let page = browser
        .post(format!("{front}/dashboard/login"))
        .form(&[("token", "admin-front")])
        .send()
        .unwrap();
    assert_eq!(page.status(), 200, "followed the redirect with the cookie");
    let html = page.text().unwrap();
    assert!(html.contains("outbox") || html.contains("Outbox"), "{html}");
    // Its charts, drawn from the history the app's sampler stores every 10 s, and that
    // history as JSON: the calls made above are in it (the sampler's next turn at the latest).
    assert!(
        html.contains("id=\"chart-hubspot\"") && html.contains("<svg"),
        "{html}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let history: Value = http
            .get(format!("{front}/api/stats/history?window=day"))
            .bearer_auth("admin-front")
            .send()
            .unwrap()
            .json()
            .unwrap();
        let calls: f64 = history["lines"]
            .as_array()
            .unwrap_or_else(|| panic!("{history}"))
            .iter()
            .find(|l| l["name"] == "hubspot_calls")
            .unwrap()["values"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_f64)
            .sum();
        if calls > 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no HubSpot calls in the history: {history}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `compose/docker-compose.yml` is accepted by the Compose this machine has (Debian's v1,
/// installed by scripts/setup.sh) and by v2 where it is installed too, and names exactly the
/// resources the deployer uses for `hubspot-app`.
#[test]
fn the_compose_file_is_valid_for_compose_v1_and_v2() {
    let file = root().join("compose/docker-compose.yml");
    let file = file.to_str().unwrap();
    let mut tools: Vec<Vec<&str>> = vec![vec!["docker-compose"]];
    if docker(&["compose", "version"]).status.success() {
        tools.push(vec!["docker", "compose"]);
    }
    for tool in tools {
        let out = Command::new(tool[0])
            .args(&tool[1..])
            .args(["-p", "hubspot-app", "-f", file, "config"])
            .output()
            .unwrap_or_else(|e| {
                panic!("{tool:?} not runnable ({e}): scripts/setup.sh installs it")
            });
        let config = text(&out);
        assert!(
            out.status.success(),
            "{tool:?} refuses the compose file: {config}"
        );
        for name in [
            "hubspot-nginx",
            "hubspot-app-net",
            "hubspot-app-data",
            "hubspot-app-sockets",
        ] {
            assert!(
                config.contains(name),
                "{tool:?}: {name} missing from {config}"
            );
        }
    }
}

/// The static parts brought up by Compose (v1, the machine's), then adopted by `deployer up`:
/// compose's nginx, network and volumes are used as they are (nginx starts in a restart loop,
/// having no config before the first deploy), and a later `compose up -d` leaves a deployed
/// host alone.
#[test]
fn compose_brings_up_the_static_parts_and_deployer_up_adopts_them() {
    let host = Host::new("compose", 11);
    let compose = |args: &[&str]| {
        let out = Command::new("docker-compose")
            .current_dir(root())
            .args(["-p", &host.service, "-f", "compose/docker-compose.yml"])
            .args(args)
            .env("DEPLOYER_SERVICE", &host.service)
            .env("NGINX_CONTAINER", format!("{}-nginx", host.service))
            .env("NGINX_HTTP_PORT", host.http.to_string())
            .env("NGINX_HTTPS_PORT", host.https.to_string())
            .env("NGINX_PREVIEW_PORT", host.preview.to_string())
            .env("NGINX_RENDERED_DIR", host.dir.join("nginx"))
            .env("NGINX_SSL_DIR", root().join("ssl"))
            .output()
            .expect("docker-compose runs (scripts/setup.sh installs it)");
        assert!(out.status.success(), "compose {args:?}: {}", text(&out));
        text(&out)
    };
    let nginx = format!("{}-nginx", host.service);
    let nginx_id = || {
        text(&docker(&["inspect", "-f", "{{.Id}}", &nginx]))
            .trim()
            .to_string()
    };

    compose(&["up", "-d"]);
    let made_by_compose = nginx_id();
    let project = text(&docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"com.docker.compose.project\"}}",
        &nginx,
    ]));
    assert_eq!(project.trim(), host.service, "compose made nginx");

    // The plan creates nothing compose made, and says what it adopts.
    let plan = host.ok(&["up", "--dry-run", "--image", &app_image()]);
    assert!(
        !plan.contains("create network") && !plan.contains("create volume"),
        "{plan}"
    );
    assert!(!plan.contains("start nginx container"), "{plan}");
    assert!(
        plan.contains("(re)start the existing nginx container"),
        "{plan}"
    );

    host.up();
    assert_eq!(
        nginx_id(),
        made_by_compose,
        "the deployer kept compose's nginx"
    );
    assert_eq!(host.serving(), "blue");

    // Compose again on a deployed host: nothing to change, nothing recreated.
    let again = compose(&["up", "-d"]);
    assert!(again.contains("up-to-date"), "{again}");
    assert_eq!(nginx_id(), made_by_compose);

    let load = Load::start(host.https, 2);
    host.up();
    assert_eq!(host.serving(), "green");
    load.finish(20);
    assert_eq!(nginx_id(), made_by_compose);
}

/// Smoke checks run against the new slot once it is healthy and before any traffic moves: one
/// that passes shows in the run, one that fails (the release cannot reach HubSpot: here it is
/// off, so `/api/hubspot/test` answers 503) stops the deploy with the slot's own answer; the
/// live slot keeps serving, and not one request of a steady load fails.
#[test]
fn a_failing_smoke_check_stops_the_deploy_before_traffic_moves() {
    let host = Host::new("smoke", 12);
    host.write_config(&[(
        "nginx:\n",
        "smoke:\n  - path: /ready\n    body_contains: '\"ready\"'\nnginx:\n",
    )]);
    let dry = host.ok(&["up", "--image", &app_image(), "--dry-run"]);
    assert!(
        dry.contains("smoke-check blue before traffic moves: GET http://127.0.0.1:")
            && dry.contains("/ready -> 200 containing"),
        "{dry}"
    );
    let out = host.ok(&["up", "--image", &app_image()]);
    assert!(out.contains("smoke GET http://127.0.0.1:"), "{out}");
    assert_eq!(host.serving(), "blue");

    host.write_config(&[(
        "nginx:\n",
        "smoke:\n  - path: /ready\n  - path: /api/hubspot/test\n    expect_status: 200\nnginx:\n",
    )]);
    let load = Load::start(host.https, 2);
    std::thread::sleep(Duration::from_millis(300));
    let err = host.fails(&["up", "--image", &app_image()], 1);
    assert!(
        err.contains("smoke check GET http://127.0.0.1:")
            && err.contains("/api/hubspot/test -> 200 on green failed: 503"),
        "{err}"
    );
    assert!(err.contains("disabled"), "the app's own reason: {err}");
    assert!(err.contains("traffic stays where it was"), "{err}");
    std::thread::sleep(Duration::from_millis(300));
    load.finish(50);
    assert_eq!(host.serving(), "blue");
    assert_eq!(
        host.container_state("green"),
        "exited",
        "the failed green is stopped"
    );
    assert_eq!(host.status()["live"], "blue");

    // The history says what happened and why; the success before it, what the switch cost.
    let history: Value =
        serde_json::from_slice(&host.deployer(&["history", "--json", "-n", "2"]).stdout).unwrap();
    let (ok, failed) = (&history[0], &history[1]);
    assert_eq!(ok["outcome"], "ok", "{history}");
    assert!(
        ok["figures"]["healthy_after_ms"].as_u64().is_some(),
        "{history}"
    );
    assert!(
        failed["outcome"]
            .as_str()
            .unwrap()
            .starts_with("failed at step"),
        "{history}"
    );
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("/api/hubspot/test -> 200 on green failed: 503"),
        "{history}"
    );
    let plain = host.ok(&["history"]);
    assert!(
        plain.lines().last().unwrap().contains("(smoke check GET"),
        "{plain}"
    );
    // Completions need no deploy.yml.
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["-c", "/nonexistent.yml", "completions", "bash"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && text(&out).contains("_deployer()"),
        "{}",
        text(&out)
    );
}

/// `deployer check`: everything in order passes (exit 0); then a missing certificate, an
/// expired one, a key that is not the certificate's, too little free disk and a missing
/// required key each fail with their fix (exit 6), and `up` refuses before changing anything.
#[test]
fn check_finds_what_would_break_a_deploy_before_anything_changes() {
    let host = Host::new("check", 13);
    let good_ssl = format!("ssl_dir: {}/ssl", root().display());
    let out = host.ok(&["check"]);
    for name in [
        "engine",
        "disk",
        "ports",
        "nginx image",
        "certificate",
        "environment",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("pass") && l.contains(name)),
            "{name}: {out}"
        );
    }
    let json: Value = serde_json::from_slice(&host.deployer(&["check", "--json"]).stdout).unwrap();
    assert!(json["checks"].as_array().unwrap().len() >= 5, "{json}");

    // A port nginx needs, taken by another program.
    {
        let _busy = std::net::TcpListener::bind(("0.0.0.0", host.https)).unwrap();
        let all = host.fails(&["check"], 6);
        assert!(
            all.contains("FAIL  ports")
                && all.contains(&format!("{} (nginx.https_port)", host.https)),
            "{all}"
        );
    }

    // Certificates made here: a good pair (a), another pair (b), and an expired one (c).
    let ssl = host.dir.join("ssl-cases");
    std::fs::create_dir_all(&ssl).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(&ssl)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    };
    for (name, days) in [("a", "30"), ("b", "30"), ("c", "1")] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-days",
            days,
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }
    // An expired certificate: issued for one day, ending yesterday.
    openssl(&[
        "x509",
        "-in",
        "c.pem",
        "-signkey",
        "c.key",
        "-days",
        "-1",
        "-out",
        "c-expired.pem",
    ]);
    let case = |cert: Option<&str>, key: Option<&str>| {
        let dir = ssl.join(format!(
            "{}-{}",
            cert.unwrap_or("none"),
            key.unwrap_or("none")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(c) = cert {
            std::fs::copy(ssl.join(c), dir.join("cert.pem")).unwrap();
        }
        if let Some(k) = key {
            std::fs::copy(ssl.join(k), dir.join("key.pem")).unwrap();
        }
        format!("ssl_dir: {}", dir.display())
    };
    let fails = |edits: &[(&str, &str)], says: &[&str]| {
        host.write_config(edits);
        let all = host.fails(&["check"], 6);
        for s in says {
            assert!(all.contains(s), "{s}: {all}");
        }
        assert!(all.contains("fix: "), "{all}");
    };
    let good = case(Some("a.pem"), Some("a.key"));
    host.write_config(&[(good_ssl.as_str(), good.as_str())]);
    host.ok(&["check"]);
    fails(
        &[(good_ssl.as_str(), &case(None, Some("a.key")))],
        &[
            "FAIL  certificate",
            "cert.pem is missing",
            "gen-self-signed.sh",
        ],
    );
    fails(
        &[(
            good_ssl.as_str(),
            &case(Some("c-expired.pem"), Some("c.key")),
        )],
        &["FAIL  certificate", "expired on"],
    );
    fails(
        &[(good_ssl.as_str(), &case(Some("a.pem"), Some("b.key")))],
        &["FAIL  certificate", "does not belong to the certificate"],
    );
    fails(
        &[(
            "drain_timeout: 10s",
            "drain_timeout: 10s\nmin_free_disk_gb: 100000",
        )],
        &[
            "FAIL  disk",
            "below min_free_disk_gb (100000 GB)",
            "deployer prune",
        ],
    );
    fails(
        &[(
            "drain_timeout: 10s",
            "drain_timeout: 10s\nrequired_env: [HUBSPOT_ACCESS_TOKEN]",
        )],
        &[
            "FAIL  environment",
            "not set: HUBSPOT_ACCESS_TOKEN",
            "env_file",
        ],
    );

    // `up` runs the same checks first: refused with exit 6, and nothing was created.
    let out = host.deployer(&["up", "--image", &app_image()]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        text(&out).contains("preflight check failed (environment); nothing was changed"),
        "{}",
        text(&out)
    );
    let net = docker(&["network", "inspect", &format!("{}-net", host.service)]);
    assert!(!net.status.success(), "no network was created");
    assert!(
        !host.dir.join("state/history.jsonl").exists(),
        "no deploy was recorded"
    );
}

/// Maintenance mode under a steady keep-alive load: every route but the probes answers 503
/// with Retry-After and the page (its message escaped), the probes keep answering, status says
/// so, and turning it off serves again; no reload, and not one probe request fails.
#[test]
fn maintenance_mode_answers_503_on_every_route_but_the_probes_without_a_reload() {
    let host = Host::new("maint", 14);
    host.ok(&["up", "--image", &app_image()]);
    let client = Host::client();
    let get = |path: &str| {
        client
            .get(format!("https://127.0.0.1:{}{path}", host.https))
            .send()
            .unwrap()
    };
    assert_eq!(get("/openapi.json").status(), 200);
    let load = Load::start(host.https, 4);
    std::thread::sleep(Duration::from_millis(300));
    let out = host.ok(&["maintenance", "on", "--message", "<b>Back at 10:00</b>"]);
    assert!(out.contains("maintenance mode on"), "{out}");
    for path in ["/openapi.json", "/dashboard", "/api/contacts?email=a@b.co"] {
        let r = get(path);
        assert_eq!(r.status(), 503, "{path}");
        assert_eq!(r.headers()["retry-after"], "60", "{path}");
        let page = r.text().unwrap();
        assert!(
            page.contains("&lt;b&gt;Back at 10:00&lt;/b&gt;"),
            "escaped: {page}"
        );
    }
    assert_eq!(get("/health").status(), 200);
    assert_eq!(get("/ready").status(), 200);
    assert_eq!(host.status()["maintenance"], true);
    assert!(host.ok(&["status"]).contains("MAINTENANCE MODE"));
    host.ok(&["maintenance", "off"]);
    assert_eq!(get("/openapi.json").status(), 200);
    assert_eq!(host.status()["maintenance"], false);
    // Flipping the mode under load, where a request that saw the mode on meets it turning off
    // (once, removing the page itself made such a request a 404): still not one failure.
    for _ in 0..12 {
        host.ok(&["maintenance", "on"]);
        host.ok(&["maintenance", "off"]);
    }
    assert_eq!(get("/openapi.json").status(), 200);
    std::thread::sleep(Duration::from_millis(300));
    load.finish(50);
    let history = host.ok(&["history", "-n", "2"]);
    assert!(
        history.contains("maintenance on") && history.contains("maintenance off"),
        "{history}"
    );
}

/// The release the issue describes: its HubSpot token is no longer accepted (the simulator, on
/// the service network, takes only the old one). Health is green, since a HubSpot outage
/// rightly leaves the app ready, but the smoke step asks `/api/hubspot/test`, gets the app's
/// own 502, and stops: blue keeps serving, not one request of a steady load fails, and the
/// history says why.
#[test]
fn a_release_whose_hubspot_token_is_refused_fails_at_the_smoke_step() {
    let host = Host::new("token", 15);
    let s = host.service.clone();
    let env = host.dir.join("app.env");
    let tokens = |token: &str| {
        std::fs::write(
            &env,
            format!("HUBSPOT_ACCESS_TOKEN={token}\nADMIN_TOKEN=admin-token\nTOKEN_ENCRYPTION_KEY=AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"),
        )
        .unwrap()
    };
    tokens("pat-current");
    host.write_config(&[
        (
            "  HUBSPOT_ENABLED: \"false\"\n",
            &format!(
                "  HUBSPOT_BASE_URL: http://{s}-sim:8090\n  SYNC_SCHEDULE: \"off\"\n  HUBSPOT_RATE_LIMIT: 100000/10s\nenv_file: {}\nrequired_env: [HUBSPOT_ACCESS_TOKEN]\n",
                env.display()
            ),
        ),
        ("nginx:\n", "smoke:\n  - path: /api/hubspot/test\nnginx:\n"),
    ]);
    host.create_network();
    // The load below asks /api/hubspot/test as fast as it can: not a test of HubSpot's budget,
    // so neither side holds it back.
    let _sim = host.run_sim(
        "sim",
        &[],
        &["--token", "pat-current", "--rate-limit", "100000/10s"],
    );
    let out = host.ok(&["up", "--image", &app_image()]);
    assert!(out.contains("/api/hubspot/test -> 200: 200"), "{out}");
    // The release's record holds its preflight verdicts and its smoke results.
    let first = &host.history(1)[0];
    let lines = |key: &str| -> Vec<String> {
        first[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {first}"))
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        lines("checks")
            .iter()
            .any(|l| l.contains("pass") && l.contains("engine")),
        "{first}"
    );
    assert!(
        lines("smoke")[0].contains("/api/hubspot/test -> 200: 200 in"),
        "{first}"
    );

    tokens("pat-expired");
    let load = Load::start(host.https, 2);
    std::thread::sleep(Duration::from_millis(300));
    let err = host.fails(&["up", "--image", &app_image()], 1);
    assert!(
        err.contains("/api/hubspot/test -> 200 on green failed: 502"),
        "{err}"
    );
    assert!(err.contains("traffic stays where it was"), "{err}");
    std::thread::sleep(Duration::from_millis(300));
    load.finish(50);
    assert_eq!(host.serving(), "blue");
    let answer: Value = Host::client()
        .get(format!("https://127.0.0.1:{}/api/hubspot/test", host.https))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        answer["hubspot"]["authenticated"], true,
        "blue still has the good token: {answer}"
    );
    let history: Value =
        serde_json::from_slice(&host.deployer(&["history", "--json", "-n", "1"]).stdout).unwrap();
    assert!(
        history[0]["reason"]
            .as_str()
            .unwrap()
            .contains("failed: 502"),
        "{history}"
    );
    assert!(
        history[0]["smoke"][0]
            .as_str()
            .unwrap()
            .contains("FAILED, 502"),
        "{history}"
    );
}

/// Preview → promote and preview → abort under steady keep-alive load: the preview answers on
/// its own port while the live door stays on the old slot, `up` is refused while a release is
/// on trial, and not one request fails.
#[test]
fn a_preview_is_promoted_or_aborted_without_a_failed_request() {
    let host = Host::new("preview", 16);
    host.up();
    let load = Load::start(host.https, 4);
    std::thread::sleep(Duration::from_millis(300));

    let out = host.ok(&["up", "--no-switch", "--image", &app_image()]);
    assert!(
        out.contains("green (version latest) in preview; blue is live"),
        "{out}"
    );
    let client = Host::client();
    assert_eq!(Host::slot_for(&client, host.preview, "anyone"), "green");
    assert_eq!(host.serving(), "blue", "the live door did not move");
    assert_eq!(host.status()["preview"], "green");
    let err = host.fails(&["up", "--image", &app_image()], 7);
    assert!(
        err.contains("green (latest) is in preview: `deployer promote` puts it live"),
        "{err}"
    );

    let out = host.ok(&["promote"]);
    assert!(out.contains("promote: green is live"), "{out}");
    assert_eq!(host.serving(), "green");
    assert_eq!(host.container_state("blue"), "exited", "kept for rollback");
    let status = host.status();
    assert!(
        status["preview"].is_null() && status["canary"].is_null(),
        "{status}"
    );
    let nothing = client
        .get(format!("https://127.0.0.1:{}/health", host.preview))
        .send()
        .unwrap();
    assert_eq!(nothing.status(), 503);
    assert!(nothing.text().unwrap().contains("no release is in preview"));

    host.ok(&["up", "--no-switch", "--image", &app_image()]);
    assert_eq!(Host::slot_for(&client, host.preview, "anyone"), "blue");
    let out = host.ok(&["abort"]);
    assert!(
        out.contains("abort: blue (version latest) withdrawn and drained; green is live"),
        "{out}"
    );
    assert_eq!(host.container_state("blue"), "exited");
    assert_eq!(host.serving(), "green");
    std::thread::sleep(Duration::from_millis(300));
    let slots = load.slots();
    load.finish(100);
    assert!(
        slots.get("blue").is_some_and(|n| *n > 0) && slots.get("green").is_some_and(|n| *n > 0),
        "{slots:?}"
    );

    let history = host.history(4);
    let commands: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        ["up --no-switch", "promote", "up --no-switch", "abort"]
    );
    // The promotion's figures: each slot's answers around the flip (their 5xx are the app's
    // 503 "HubSpot disabled" of this config), and none nginx had to give for want of a slot.
    let around = &history[1]["figures"]["around_switch"];
    assert!(around["blue"]["requests"].as_u64().unwrap() > 0, "{around}");
    assert!(
        around["green"]["requests"].as_u64().unwrap() > 0,
        "{around}"
    );
    assert!(around["nginx"].is_null(), "{around}");
}

/// A canary at 10 %, raised to 50 %, promoted; another canary aborted: the shares measured
/// over distinct clients match, a client keeps its slot as the share grows, and under steady
/// load not one request fails.
#[test]
fn canary_shares_are_sticky_and_change_without_a_failed_request() {
    let host = Host::new("canary", 17);
    host.up();
    let load = Load::start(host.https, 4);
    std::thread::sleep(Duration::from_millis(300));

    let out = host.ok(&["up", "--canary", "10", "--image", &app_image()]);
    assert!(
        out.contains("green (version latest) on trial as a canary; blue is live"),
        "{out}"
    );
    assert_eq!(host.status()["canary"]["percent"], 10);
    let ten = host.share_of("green", 1000);
    assert!((0.06..=0.14).contains(&ten), "10% asked, {ten} measured");
    // A client on the canary stays there, and stays there when the share grows.
    let client = Host::client();
    let on_canary = (0..)
        .map(|i| format!("sticky-{i}"))
        .find(|key| Host::slot_for(&client, host.https, key) == "green")
        .unwrap();
    for _ in 0..20 {
        assert_eq!(Host::slot_for(&client, host.https, &on_canary), "green");
    }
    host.ok(&["canary", "50"]);
    let fifty = host.share_of("green", 1000);
    assert!(
        (0.44..=0.56).contains(&fifty),
        "50% asked, {fifty} measured"
    );
    std::thread::sleep(Duration::from_millis(1100)); // connections opened before carry over
    for _ in 0..20 {
        assert_eq!(Host::slot_for(&client, host.https, &on_canary), "green");
    }
    host.ok(&["promote"]);
    assert_eq!(host.share_of("green", 200), 1.0);
    assert_eq!(host.container_state("blue"), "exited");

    host.ok(&["up", "--canary", "30", "--image", &app_image()]);
    let thirty = host.share_of("blue", 1000);
    assert!(
        (0.24..=0.36).contains(&thirty),
        "30% asked, {thirty} measured"
    );
    host.ok(&["abort"]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(host.share_of("green", 200), 1.0);
    assert_eq!(host.container_state("blue"), "exited");
    std::thread::sleep(Duration::from_millis(300));
    load.finish(100);
}

/// A release whose HubSpot goes bad after the switch (its simulator starts answering 500)
/// under load: the bake sees the new slot's 5xx in nginx's log, switches back to the old slot,
/// which was kept running, drains the new one and says why, in the history too.
#[test]
fn a_release_that_goes_bad_during_its_bake_is_rolled_back_automatically() {
    let host = Host::new("bake", 18);
    let s = host.service.clone();
    host.create_network();
    // One simulator per release: the old one's stays healthy.
    let sim_port = host.blue + 5;
    let sim_args = ["--token", "pat-test", "--rate-limit", "100000/10s"];
    let sims = [
        host.run_sim("sim-old", &[], &sim_args),
        host.run_sim(
            "sim-new",
            &["-p", &format!("127.0.0.1:{sim_port}:8090")],
            &sim_args,
        ),
    ];
    let env = host.dir.join("app.env");
    std::fs::write(&env, "HUBSPOT_ACCESS_TOKEN=pat-test\n").unwrap();
    let release = |sim: &str, bake: &str| {
        host.write_config(&[
            (
                "  HUBSPOT_ENABLED: \"false\"\n",
                &format!(
                    "  HUBSPOT_BASE_URL: http://{s}-{sim}:8090\n  SYNC_SCHEDULE: \"off\"\n  HUBSPOT_TIMEOUT: 2s\n  HUBSPOT_RATE_LIMIT: 100000/10s\nenv_file: {}\n",
                    env.display()
                ),
            ),
            ("nginx:\n", &format!("smoke:\n  - path: /api/hubspot/test\n{bake}nginx:\n")),
        ])
    };
    release("sim-old", "");
    host.up();

    let rolled = host.dir.join("rolled-back.txt");
    release(
        "sim-new",
        &format!(
            "bake:\n  duration: 60s\n  max_error_rate: 5%\n  window: 5s\n  min_requests: 10\nhooks:\n  on_rollback:\n    - local: echo \"$DEPLOYER_STAGE to $DEPLOYER_SLOT\" > {}\n",
            rolled.display()
        ),
    );
    let load = Load::start(host.https, 4);
    let mut up = host
        .command(&["up", "--image", &app_image()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while host.serving() != "green" {
        assert!(Instant::now() < deadline, "green never went live");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Green is live and baking: its HubSpot fails from now on.
    let fault = Host::client()
        .post(format!("http://127.0.0.1:{sim_port}/_sim/faults"))
        .json(&serde_json::json!({"path": "/", "status": 500}))
        .send()
        .unwrap();
    assert!(fault.status().is_success(), "{:?}", fault.text());
    let started = Instant::now();
    while up.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(50),
            "the bake did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = up.wait_with_output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(8), "{said}");
    assert!(
        said.contains("the bake failed: ") && said.contains("were 5xx (limit 5%)"),
        "{said}"
    );
    assert!(said.contains("traffic went back to blue"), "{said}");
    assert_eq!(host.serving(), "blue");
    assert_eq!(host.container_state("green"), "exited");
    assert_eq!(
        std::fs::read_to_string(&rolled).unwrap(),
        "on_rollback to blue\n",
        "the on_rollback hooks run after an automatic rollback too"
    );
    load.stop.store(true, Ordering::Relaxed);

    let last = &host.history(1)[0];
    assert_eq!(last["outcome"], "rolled back by the bake", "{last}");
    assert_eq!(last["live_slot"], "blue", "{last}");
    let bake = &last["figures"]["bake"];
    assert_eq!(bake["passed"], false, "{bake}");
    assert!(
        bake["answers"]["errors_5xx"].as_u64().unwrap() > 0,
        "{bake}"
    );
    let back_ms = bake["crossed_to_back_ms"].as_u64().unwrap();
    println!("threshold crossed -> traffic back: {back_ms} ms");
    // Blue, kept warm, answers /api/hubspot/test again.
    let answer = Host::client()
        .get(format!("https://127.0.0.1:{}/api/hubspot/test", host.https))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    drop(sims);
}

/// Hooks run where deploy.yml puts them, the lock held: `app migrate` as a one-off container of
/// the release's image and local commands that see the release in `DEPLOYER_*`; the release's
/// schema comes from `app schema` into the history. A failing pre_deploy hook stops the deploy
/// before the new slot exists; a failing post_switch hook sends traffic back to the old slot
/// under load (0 failed requests); a hook past its timeout is killed.
#[test]
fn hooks_run_in_order_and_a_failing_one_stops_the_deploy_or_sends_traffic_back() {
    let host = Host::new("hooks", 19);
    let log = host.dir.join("hooks.log");
    let note = |stage: &str| {
        format!(
            "      - local: echo \"{stage} $DEPLOYER_VERSION $DEPLOYER_SLOT from $DEPLOYER_PREVIOUS_SLOT\" >> {}\n",
            log.display()
        )
    };
    let hooks = |pre_deploy: &str, post_switch: &str| {
        format!(
            "schema:\n  command: [/app, schema]\nhooks:\n  pre_deploy:\n    - container: [/app, migrate]\n{}{pre_deploy}  post_switch:\n{}{post_switch}  post_deploy:\n{}  on_rollback:\n{}nginx:\n",
            note("pre_deploy"),
            note("post_switch"),
            note("post_deploy"),
            note("on_rollback"),
        )
        .replace("      - ", "    - ")
    };
    host.write_config(&[("nginx:\n", &hooks("", ""))]);
    let out = host.up();
    assert!(out.contains("hook pre_deploy `/app migrate`: ok"), "{out}");
    host.up();
    host.ok(&["rollback"]);
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        lines,
        "pre_deploy latest blue from \npost_switch latest blue from \npost_deploy latest blue from \n\
         pre_deploy latest green from blue\npost_switch latest green from blue\npost_deploy latest green from blue\n\
         on_rollback latest blue from green\n",
        "each hook once, in order, seeing its release"
    );
    let first = &host.history(3)[0];
    assert_eq!(first["schema"]["oldest_compatible"], 1, "{first}");
    assert!(
        first["schema"]["version"].as_i64().unwrap() >= 10,
        "{first}"
    );

    // A failing pre_deploy hook: nothing starts, nothing moves, the lock is released.
    host.write_config(&[(
        "nginx:\n",
        &hooks("    - local: echo migration failed; exit 3\n", ""),
    )]);
    let before = host.container_state("green");
    let err = host.fails(&["up", "--image", &app_image()], 1);
    assert!(
        err.contains("hook pre_deploy `echo migration failed; exit 3` failed (exit code 3)")
            && err.contains("migration failed"),
        "{err}"
    );
    assert!(err.contains("traffic stayed on blue"), "{err}");
    assert_eq!(
        host.container_state("green"),
        before,
        "the idle slot was not touched"
    );
    assert!(
        !host.dir.join("state/lock.json").exists(),
        "the lock is released"
    );
    assert!(host.history(1)[0]["outcome"]
        .as_str()
        .unwrap()
        .starts_with("failed at step"));

    // A failing post_switch hook, under load: traffic goes back to blue at once.
    host.write_config(&[("nginx:\n", &hooks("", "    - local: exit 4\n"))]);
    let load = Load::start(host.https, 4);
    std::thread::sleep(Duration::from_millis(300));
    let err = host.fails(&["up", "--image", &app_image()], 1);
    assert!(
        err.contains("hook post_switch `exit 4` failed (exit code 4)")
            && err.contains("traffic went back to blue and green was drained"),
        "{err}"
    );
    assert_eq!(host.serving(), "blue");
    assert_eq!(host.container_state("green"), "exited");
    std::thread::sleep(Duration::from_millis(300));
    load.finish(50);

    // A hook that does not end is killed at its timeout.
    host.write_config(&[(
        "nginx:\n",
        &hooks("    - local: sleep 30\n      timeout: 2s\n", ""),
    )]);
    let started = Instant::now();
    let err = host.fails(&["up", "--image", &app_image()], 1);
    assert!(err.contains("did not finish within 2s (killed)"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(host.serving(), "blue");
}

/// `rollback VERSION` re-creates the idle slot from a recent release's image when no slot holds
/// it, with the same health and switch rules; an unknown or too old version is refused.
#[test]
fn rollback_to_a_recent_version_recreates_its_slot_from_the_image() {
    let host = Host::new("versions", 20);
    let repo = format!("{}-img", host.service);
    for v in ["v1", "v2", "v3"] {
        assert!(docker(&["tag", &app_image(), &format!("{repo}:{v}")])
            .status
            .success());
    }
    host.write_config(&[(
        "drain_timeout: 10s\n",
        "drain_timeout: 10s\nkeep_images: 2\n",
    )]);
    for v in ["v1", "v2", "v3"] {
        host.ok(&["up", "--image", &format!("{repo}:{v}")]);
    }
    // v3 on blue, v2 kept in green; v1's container is gone.
    let version = || {
        Host::client()
            .get(format!("https://127.0.0.1:{}/health", host.https))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap()["version"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(version(), "v3");
    let err = host.fails(&["rollback", "v1"], 5);
    assert!(
        err.contains("v1 is not among the recent releases, the last 2 (keep_images): v3, v2"),
        "{err}"
    );
    let plan = host.ok(&["rollback", "v2", "--dry-run"]);
    assert!(plan.contains("start the kept green container"), "{plan}");

    host.write_config(&[(
        "drain_timeout: 10s\n",
        "drain_timeout: 10s\nkeep_images: 3\n",
    )]);
    let load = Load::start(host.https, 4);
    std::thread::sleep(Duration::from_millis(300));
    let out = host.ok(&["rollback", "v1"]);
    assert!(
        out.contains("rollback: green is live (version v1)"),
        "{out}"
    );
    assert_eq!(version(), "v1");
    assert_eq!(host.status()["slots"]["green"]["version"], "v1");
    std::thread::sleep(Duration::from_millis(300));
    load.finish(50);
}
