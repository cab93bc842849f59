//! How long work reports its progress: one small trait, so the library never decides how
//! progress is shown.
//!
//! - [`Bar`]: an `indicatif` bar, for a person at a terminal;
//! - [`Lines`]: a plain line on stderr every so often, for logs and pipes (a bar there writes
//!   control characters into files);
//! - [`Silent`]: nothing, for grid tasks whose executor reports progress itself.
//!
//! [`for_stderr`] picks a bar or lines by whether stderr is a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Progress of one piece of work counted in units (samples, cases, tasks).
pub trait Progress: Send + Sync {
    /// Announce how many units the work has (it may grow: an extended run).
    fn set_total(&self, total: u64);
    /// `units` more are done.
    fn advance(&self, units: u64);
    /// The work is over; remove what was drawn.
    fn finish(&self);
    /// A short note shown beside the count ("2 running, 1 failed").
    fn note(&self, _text: &str) {}
}

/// Shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn set_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// A bar on a terminal: `label [bar] done/total unit elapsed (eta)`.
pub struct Bar(indicatif::ProgressBar);

impl Bar {
    pub fn new(label: &str, unit: &str) -> Self {
        let template =
            format!("{label} {{bar:30}} {{pos}}/{{len}} {unit} {{msg}} {{elapsed}} (eta {{eta}})");
        let style = indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        Bar(indicatif::ProgressBar::new(0).with_style(style))
    }
}

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, units: u64) {
        self.0.inc(units);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
    fn note(&self, text: &str) {
        self.0.set_message(text.to_string());
    }
}

/// A line on stderr at most every `every`, and one at the end: `label: done/total unit (p%)`.
pub struct Lines {
    label: String,
    unit: String,
    total: AtomicU64,
    done: AtomicU64,
    every: Duration,
    last: Mutex<Option<Instant>>,
    note: Mutex<String>,
}

impl Lines {
    pub fn new(label: &str, unit: &str, every: Duration) -> Self {
        Lines {
            label: label.to_string(),
            unit: unit.to_string(),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            every,
            last: Mutex::new(None),
            note: Mutex::new(String::new()),
        }
    }

    /// The line as it would be printed now.
    pub fn line(&self) -> String {
        let (done, total) = (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        );
        let percent = if total == 0 {
            100.0
        } else {
            100.0 * done as f64 / total as f64
        };
        let note = self.note.lock().unwrap_or_else(|e| e.into_inner());
        let note = if note.is_empty() {
            String::new()
        } else {
            format!(", {note}")
        };
        format!(
            "{}: {done}/{total} {} ({percent:.0}%{note})",
            self.label, self.unit
        )
    }

    fn print_if_due(&self, force: bool) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= self.every);
        if force || due {
            *last = Some(Instant::now());
            eprintln!("{}", self.line());
        }
    }
}

impl Progress for Lines {
    fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
    fn advance(&self, units: u64) {
        self.done.fetch_add(units, Ordering::Relaxed);
        self.print_if_due(false);
    }
    fn finish(&self) {
        self.print_if_due(true);
    }
    fn note(&self, text: &str) {
        *self.note.lock().unwrap_or_else(|e| e.into_inner()) = text.to_string();
    }
}

/// A bar when stderr is a terminal, else a line every 10 seconds.
pub fn for_stderr(label: &str, unit: &str) -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar::new(label, unit))
    } else {
        Box::new(Lines::new(label, unit, Duration::from_secs(10)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_what_is_done() {
        let lines = Lines::new("train", "samples", Duration::from_secs(3600));
        lines.set_total(8);
        lines.advance(3);
        lines.advance(3);
        assert_eq!(lines.line(), "train: 6/8 samples (75%)");
        lines.note("2 running, 1 failed");
        assert_eq!(
            lines.line(),
            "train: 6/8 samples (75%, 2 running, 1 failed)"
        );
    }
}
