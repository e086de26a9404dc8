//! Logging setup shared by both runtimes: `env_logger`, `RUST_LOG` honoured, `info` by
//! default, millisecond timestamps, to stderr.

/// Installs the logger. Calling it twice is harmless (the second call does nothing).
pub fn init() {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
}
