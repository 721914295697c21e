//! Helpers shared by the benchmark binaries of every crate (included with `#[path]`), so
//! each bench reports the machine, the time and its statistics the same way.
// Each bench binary uses its own subset of these.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut days = secs / 86_400;
    let of_day = secs % 86_400;
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut year = 1970;
    loop {
        let len = if leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let february = if leap(year) { 29 } else { 28 };
    let mut month = 1;
    for len in [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] {
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    format!(
        "{year:04}-{month:02}-{:02} {:02}:{:02} UTC",
        days + 1,
        of_day / 3_600,
        of_day % 3_600 / 60
    )
}

/// `old` (a docs file) with the part from `begin` to `end` (markers included, and one
/// newline after `end`) replaced by `section`; without both markers in order, `old` with
/// `section` appended after a blank line.
pub fn splice_section(old: &str, begin: &str, end: &str, section: &str) -> String {
    match (old.find(begin), old.find(end)) {
        (Some(b), Some(e)) if b < e => {
            let after = &old[e + end.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{section}{after}", &old[..b])
        }
        _ => {
            let sep = if old.ends_with("\n\n") || old.is_empty() {
                ""
            } else if old.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{old}{sep}{section}")
        }
    }
}

/// `rustc --version` of the compiler cargo uses (`$RUSTC`, else `rustc`), or `unknown`.
pub fn rustc_version() -> String {
    std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Resident and peak resident memory of a process, in KiB (`/proc/PID/status`; 0 where it
/// cannot be read).
#[derive(Clone, Copy, Debug, Default)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub fn proc_mem(pid: u32) -> Mem {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Mem {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

/// The median of the finite values of `xs` (NaN if there are none).
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The smallest and largest finite values of `xs` (+∞, −∞ if there are none).
pub fn min_max(xs: &[f64]) -> (f64, f64) {
    xs.iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        })
}

/// Min and max of fewer than ten samples; first and third quartile of ten or more.
pub fn spread(xs: &[f64]) -> (f64, f64) {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        (f64::NAN, f64::NAN)
    } else if n < 10 {
        (v[0], v[n - 1])
    } else {
        (v[n / 4], v[(3 * n) / 4])
    }
}

/// What [`spread`] of `n` samples is.
pub fn spread_name(n: usize) -> &'static str {
    if n < 10 { "min – max" } else { "quartiles" }
}

/// Time this thread has spent running on a CPU (`/proc/thread-self/schedstat`, Linux).
pub fn thread_on_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// The machine a run is on, for the reports.
pub struct Machine {
    pub cpu: String,
    pub logical_cpus: usize,
    pub sha_ni: Option<bool>,
    pub avx2: Option<bool>,
    pub kernel: String,
    pub date: String,
    pub rustc: String,
}

impl Machine {
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        let flags = field("flags");
        let has = |flag: &str| {
            flags
                .as_ref()
                .map(|f| f.split_whitespace().any(|x| x == flag))
        };
        Machine {
            cpu: field("model name").unwrap_or_else(|| "unknown".into()),
            logical_cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            sha_ni: has("sha_ni"),
            avx2: has("avx2"),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            date: utc_now(),
            rustc: rustc_version(),
        }
    }
}

/// `yes`, `no` or `unknown`.
pub fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}
