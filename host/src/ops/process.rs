//! The standard `process_*` metrics, read from `/proc/self` at each scrape (Linux; on
//! other systems they are left out): CPU seconds, resident memory, open and allowed
//! descriptors.

/// Appends the process's families to `out`.
#[cfg(target_os = "linux")]
pub(crate) fn render(out: &mut String) {
    use std::fmt::Write as _;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime (fields 14 and 15 of proc(5)), rss (24): index 11, 12, 21 here.
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // SAFETY: sysconf only reads a configuration value.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if let (Some(user), Some(system), true) = (field(11), field(12), ticks > 0) {
        let secs = (user + system) as f64 / ticks as f64;
        let _ = writeln!(
            out,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
             # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {secs}"
        );
    }
    if let (Some(pages), true) = (field(21), page > 0) {
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
             # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}",
            pages.saturating_mul(page as u64)
        );
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        // The directory read holds one descriptor of its own.
        let open = dir.count().saturating_sub(1);
        let _ = writeln!(
            out,
            "# HELP process_open_fds Number of open file descriptors.\n\
             # TYPE process_open_fds gauge\nprocess_open_fds {open}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP process_max_fds Maximum number of open file descriptors.\n\
         # TYPE process_max_fds gauge\nprocess_max_fds {}",
        crate::limits::nofile()
    );
}

/// Elsewhere: nothing (the figures come from Linux's `/proc`).
#[cfg(not(target_os = "linux"))]
pub(crate) fn render(_out: &mut String) {}
