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

/// Where one named part of a larger piece of work stands: a stage of a grid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Part {
    pub label: String,
    pub total: u64,
    pub done: u64,
    pub running: u64,
    pub failed: u64,
    /// Seconds its finished units took, summed (for the ETA).
    pub busy_seconds: f64,
}

impl Part {
    /// Units neither finished nor failed.
    pub fn left(&self) -> u64 {
        self.total.saturating_sub(self.done + self.failed)
    }

    /// Whether some of it has started and some is left.
    pub fn active(&self) -> bool {
        self.running > 0 || (self.left() > 0 && self.done + self.failed > 0)
    }

    /// Time left at the pace of its finished units, `running` at a time; None before any
    /// unit has finished.
    pub fn eta(&self) -> Option<Duration> {
        let finished = self.done + self.failed;
        if finished == 0 {
            return None;
        }
        let mean = self.busy_seconds / finished as f64;
        let waves = (self.left() as f64 / self.running.max(1) as f64).ceil();
        Some(Duration::from_secs_f64((mean * waves).max(0.0)))
    }

    /// `label: done/total done, r running, f failed, eta 1m05s`.
    pub fn line(&self) -> String {
        let mut line = format!("{}: {}/{} done", self.label, self.done, self.total);
        if self.running > 0 {
            line += &format!(", {} running", self.running);
        }
        if self.failed > 0 {
            line += &format!(", {} failed", self.failed);
        }
        if let Some(eta) = self.eta().filter(|_| self.left() > 0) {
            line += &format!(", eta {}", clock(eta));
        }
        line
    }
}

/// `42s`, `3m05s`, `2h07m`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Progress of work made of named parts (a grid's stages), shown part by part.
pub trait PartsProgress: Send + Sync {
    /// Where every part stands now.
    fn update(&self, parts: &[Part]);
    /// The work is over.
    fn finish(&self, parts: &[Part]);
}

/// Shows nothing.
impl PartsProgress for Silent {
    fn update(&self, _: &[Part]) {}
    fn finish(&self, _: &[Part]) {}
}

/// On a terminal: a line per active part, redrawn in place, and a total line under them; a
/// part that ends leaves one line above them.
pub struct PartBars {
    multi: indicatif::MultiProgress,
    total: indicatif::ProgressBar,
    bars: Mutex<Vec<Option<indicatif::ProgressBar>>>,
}

impl PartBars {
    pub fn new(label: &str) -> Self {
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template(&format!(
            "{label} {{bar:30}} {{pos}}/{{len}} tasks {{elapsed}} (eta {{eta}})"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        let total = multi.add(indicatif::ProgressBar::new(0).with_style(style));
        PartBars {
            multi,
            total,
            bars: Mutex::new(Vec::new()),
        }
    }
}

impl PartsProgress for PartBars {
    fn update(&self, parts: &[Part]) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.resize(parts.len(), None);
        for (part, bar) in parts.iter().zip(bars.iter_mut()) {
            match (part.active(), bar.as_ref()) {
                (true, None) => {
                    let b = self
                        .multi
                        .insert_before(&self.total, indicatif::ProgressBar::new_spinner());
                    b.set_message(part.line());
                    *bar = Some(b);
                }
                (true, Some(b)) => b.set_message(part.line()),
                (false, Some(b)) => {
                    b.finish_and_clear();
                    let _ = self.multi.println(part.line());
                    *bar = None;
                }
                (false, None) => {}
            }
        }
        self.total
            .set_length(parts.iter().map(|p| p.total).sum::<u64>());
        self.total
            .set_position(parts.iter().map(|p| p.done + p.failed).sum::<u64>());
    }

    fn finish(&self, parts: &[Part]) {
        self.update(parts);
        for bar in self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flatten()
        {
            bar.finish_and_clear();
        }
        self.total.finish_and_clear();
    }
}

/// For logs and pipes: a line when a part starts and when it ends, and every `every` a line
/// per active part.
pub struct PartLines {
    every: Duration,
    state: Mutex<LinesState>,
}

#[derive(Default)]
struct LinesState {
    last: Option<Instant>,
    /// Per part: started, ended (as last printed).
    seen: Vec<(bool, bool)>,
}

impl PartLines {
    pub fn new(every: Duration) -> Self {
        PartLines {
            every,
            state: Mutex::new(LinesState::default()),
        }
    }

    /// The lines due now for `parts`, at `now`.
    fn due(&self, parts: &[Part], now: Instant, force: bool) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.seen.resize(parts.len(), (false, false));
        let mut lines = Vec::new();
        for (part, seen) in parts.iter().zip(state.seen.iter_mut()) {
            let started = part.running > 0 || part.done + part.failed > 0;
            let ended = part.total > 0 && part.left() == 0 && part.running == 0;
            if started && !seen.0 && !ended {
                let tasks = if part.total == 1 { "task" } else { "tasks" };
                lines.push(format!("{}: started ({} {tasks})", part.label, part.total));
            }
            if ended && !seen.1 && started {
                lines.push(part.line());
            }
            *seen = (started || seen.0, ended);
        }
        let periodic = state
            .last
            .is_none_or(|t| now.duration_since(t) >= self.every);
        if periodic || force {
            state.last = Some(now);
            lines.extend(parts.iter().filter(|p| p.active()).map(Part::line));
            let (done, total): (u64, u64) = parts
                .iter()
                .fold((0, 0), |(d, t), p| (d + p.done + p.failed, t + p.total));
            lines.push(format!("total: {done}/{total} tasks"));
        }
        lines
    }
}

impl PartsProgress for PartLines {
    fn update(&self, parts: &[Part]) {
        for line in self.due(parts, Instant::now(), false) {
            eprintln!("{line}");
        }
    }

    fn finish(&self, parts: &[Part]) {
        for line in self.due(parts, Instant::now(), true) {
            eprintln!("{line}");
        }
    }
}

/// Part bars when stderr is a terminal, else lines every 10 seconds.
pub fn parts_for_stderr(label: &str) -> Box<dyn PartsProgress> {
    if std::io::stderr().is_terminal() {
        Box::new(PartBars::new(label))
    } else {
        Box::new(PartLines::new(Duration::from_secs(10)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(label: &str, total: u64, done: u64, running: u64, failed: u64) -> Part {
        Part {
            label: label.into(),
            total,
            done,
            running,
            failed,
            busy_seconds: 10.0 * (done + failed) as f64,
        }
    }

    #[test]
    fn a_part_line_says_done_running_failed_and_eta() {
        let table = [
            (part("s", 12, 0, 2, 0), "s: 0/12 done, 2 running"),
            // 10 s per task, 6 left, 2 at a time: 3 waves.
            (
                part("s", 12, 5, 2, 1),
                "s: 5/12 done, 2 running, 1 failed, eta 30s",
            ),
            (part("s", 4, 4, 0, 0), "s: 4/4 done"),
            (
                part("s", 400, 1, 1, 0),
                "s: 1/400 done, 1 running, eta 1h06m",
            ),
        ];
        for (p, want) in table {
            assert_eq!(p.line(), want);
        }
    }

    #[test]
    fn plain_lines_announce_a_part_once_when_it_starts_and_when_it_ends() {
        let lines = PartLines::new(Duration::from_secs(3600));
        let t0 = Instant::now();
        let first = lines.due(&[part("a", 2, 0, 1, 0), part("b", 1, 0, 0, 0)], t0, false);
        assert_eq!(
            first,
            [
                "a: started (2 tasks)",
                "a: 0/2 done, 1 running",
                "total: 0/3 tasks"
            ]
        );
        // Nothing new, and the period has not passed: nothing.
        let again = lines.due(&[part("a", 2, 0, 1, 0), part("b", 1, 0, 0, 0)], t0, false);
        assert!(again.is_empty(), "{again:?}");
        let ended = lines.due(&[part("a", 2, 2, 0, 0), part("b", 1, 0, 1, 0)], t0, false);
        assert_eq!(ended, ["a: 2/2 done", "b: started (1 task)"]);
    }

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
