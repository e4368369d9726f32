//! What the operator sees while a plan runs: on a terminal, a live line for the health wait
//! (elapsed, attempts, last answer); otherwise plain lines, one per step and a few while waiting.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    last_plain: Mutex<Option<Instant>>,
    quiet: bool,
    /// `[host] ` before each line: one host of a fleet, its lines among the others'.
    prefix: String,
}

impl Progress {
    /// A live display on a terminal (stderr), plain lines otherwise.
    pub fn auto() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::hidden();
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
            bar
        });
        Self {
            bar,
            last_plain: Mutex::new(None),
            quiet: false,
            prefix: String::new(),
        }
    }

    /// Nothing at all (tests, --json).
    pub fn quiet() -> Self {
        Self {
            bar: None,
            last_plain: Mutex::new(None),
            quiet: true,
            prefix: String::new(),
        }
    }

    /// Plain lines for one host of a fleet, each marked with its name (hosts run at once, so
    /// no live line).
    pub fn for_host(&self, host: &str) -> Self {
        Self {
            bar: None,
            last_plain: Mutex::new(None),
            quiet: self.quiet,
            prefix: format!("[{host}] "),
        }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{}{text}", self.prefix),
        }
    }

    pub fn step(&self, n: usize, total: usize, text: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.line(&format!("[{n}/{total}] {text}"));
    }

    pub fn note(&self, text: &str) {
        self.line(&format!("      {text}"));
    }

    /// Build output and the like: on a terminal, the live line; otherwise dropped.
    pub fn detail(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message(text.chars().take(100).collect::<String>());
        }
    }

    pub fn health_wait(&self, elapsed: Duration, attempts: u32, last: &str) {
        let text = format!(
            "waiting {:.1}s, {attempts} polls, last answer: {last}",
            elapsed.as_secs_f64()
        );
        match &self.bar {
            Some(bar) => {
                bar.enable_steady_tick(Duration::from_millis(120));
                bar.set_message(text);
            }
            None => {
                // Plain output: a line every 5 s is enough for a log.
                let mut last_plain = self.last_plain.lock().expect("not poisoned");
                if last_plain.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                    *last_plain = Some(Instant::now());
                    self.note(&text);
                }
            }
        }
    }

    pub fn health_done(&self, elapsed: Duration, attempts: u32) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.note(&format!(
            "healthy after {:.2}s ({attempts} polls)",
            elapsed.as_secs_f64()
        ));
    }
}
