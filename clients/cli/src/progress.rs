//! Progress of long work on standard error: a progress bar (indicatif) on
//! a terminal, otherwise one line every ten seconds, so that logs of a
//! script or CI run show it too. Workers only add to an atomic counter; a
//! ticker task draws, so the measured loop pays one atomic add per item.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a line is printed when standard error is not a terminal:
/// every 10 s, or every `ACD_PROGRESS_INTERVAL_MS` milliseconds.
fn line_every() -> Duration {
    std::env::var("ACD_PROGRESS_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// One phase's progress towards `total` items.
pub struct Progress {
    done: Arc<AtomicU64>,
    ticker: tokio::task::JoinHandle<()>,
    bar: Option<ProgressBar>,
}

/// `done` of `total` after `elapsed`: the line printed without a terminal.
pub fn line(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let eta = if rate > 0.0 && total > done {
        format!("{:.0} s", (total - done) as f64 / rate)
    } else {
        "-".to_owned()
    };
    format!("{label}: {done}/{total} ({rate:.0}/s, ETA {eta})")
}

impl Progress {
    /// Starts showing `label`'s progress; needs a tokio runtime.
    pub fn start(label: &'static str, total: u64) -> Progress {
        let done = Arc::new(AtomicU64::new(0));
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} ETA {eta}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label);
            bar
        });
        let (d, b) = (done.clone(), bar.clone());
        let every = line_every();
        let ticker = tokio::spawn(async move {
            let started = Instant::now();
            let mut last_line = Instant::now();
            loop {
                tokio::time::sleep(
                    every.clamp(Duration::from_millis(1), Duration::from_millis(100)),
                )
                .await;
                let n = d.load(Ordering::Relaxed);
                match &b {
                    Some(bar) => bar.set_position(n),
                    None if last_line.elapsed() >= every => {
                        eprintln!("{}", line(label, n, total, started.elapsed()));
                        last_line = Instant::now();
                    }
                    None => {}
                }
            }
        });
        Progress { done, ticker, bar }
    }

    /// The counter the workers add their finished items to.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }

    /// Stops showing; the bar is cleared (the report follows).
    pub fn finish(self) {
        self.ticker.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_rate_and_eta() {
        assert_eq!(
            line("appends", 500, 2000, Duration::from_secs(5)),
            "appends: 500/2000 (100/s, ETA 15 s)"
        );
        assert_eq!(
            line("appends", 0, 10, Duration::ZERO),
            "appends: 0/10 (0/s, ETA -)"
        );
    }
}
