//! The machine a run is on, for the report.

use super::*;

pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) logical_cpus: usize,
    pub(crate) date: String,
    pub(crate) rustc: String,
    pub(crate) kernel: String,
}

impl Machine {
    pub(crate) fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        });
        let rustc = support::rustc_version();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cpu: model.unwrap_or_else(|| "unknown".into()),
            logical_cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            date: utc_now(),
            rustc,
            kernel,
        }
    }
}
