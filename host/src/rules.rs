//! Access control as the server runs it (SPEC "Access control"): the rules of `--auth`
//! and `--auth-file` put together at start, the file read again on SIGHUP (a bad file
//! keeps the old rules and says why), `--hash-password`, and the warning that passwords
//! travel in clear without TLS. The decision itself is the core's
//! ([`protocol::Rules::decide`]); verifying a password is a blocking job of the session
//! ([`crate::auth`]).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use log::{error, info, warn};
use protocol::{AccessControl, Rule, Rules};

use crate::auth::CredentialCache;

/// The realm of the `WWW-Authenticate` challenge.
pub const REALM: &str = "rust-file-server";

/// The rules of the command line and the file (in that order), or why not.
pub fn load(flags: &[Rule], file: Option<&Path>) -> Result<Rules, String> {
    let mut rules = Rules::new(flags.to_vec()).map_err(|e| format!("--auth: {e}"))?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --auth-file {}: {e}", path.display()))?;
        let from_file = Rules::parse_lines(&text)
            .map_err(|(line, e)| format!("{}:{line}: {e}", path.display()))?;
        for rule in from_file.rules() {
            rules
                .push(rule.clone())
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(rules)
}

/// Reads `file` again on every SIGHUP: new rules in force and every remembered
/// credential forgotten, or (a bad file) the old rules kept and the error logged.
pub fn reload_on_sighup(
    access: Arc<AccessControl>,
    flags: Vec<Rule>,
    file: PathBuf,
    credentials: Arc<CredentialCache>,
) {
    crate::shutdown::on_sighup("auth-reload", move || match load(&flags, Some(&file)) {
        Ok(rules) => {
            let n = rules.rules().len();
            access.replace(rules);
            credentials.clear();
            info!(
                "SIGHUP: access rules reloaded from {} ({n} rules)",
                file.display()
            );
        }
        Err(e) => error!("SIGHUP: access rules not reloaded, the old ones stay: {e}"),
    });
}

/// `--auth` bound to an address other than loopback, without TLS: say that passwords
/// travel in clear.
pub fn warn_if_clear(host: &str, https: bool) {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !https && !loopback {
        warn!(
            "--auth on {host} without HTTPS: passwords travel in clear over the network \
             (use --tls-cert/--tls-key or --tls-self-signed)"
        );
    }
}

/// `--hash-password`: one password from standard input (not echoed on a terminal), its
/// argon2id PHC string on standard output. The exit code.
pub fn hash_password() -> std::process::ExitCode {
    let password = match read_password() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot read the password: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if password.is_empty() {
        eprintln!("error: the password is empty");
        return std::process::ExitCode::from(2);
    }
    match crate::auth::hash_password(&password) {
        Ok(phc) => {
            let _ = writeln!(std::io::stdout(), "{phc}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// One line of standard input without its line end; echo off while a terminal types it.
fn read_password() -> std::io::Result<String> {
    let stdin = std::io::stdin();
    #[cfg(unix)]
    let saved = {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        match tcgetattr(&stdin) {
            Ok(attrs) => {
                let mut quiet = attrs.clone();
                quiet.local_modes.remove(LocalModes::ECHO);
                let _ = tcsetattr(&stdin, OptionalActions::Now, &quiet);
                eprint!("password: ");
                Some(attrs)
            }
            Err(_) => None,
        }
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    #[cfg(unix)]
    if let Some(attrs) = saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &attrs);
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
