//! Where an option comes from when the command line does not give it (SPEC "Command
//! line"): the environment, as `RFS_` + the long name in upper snake case, then the TOML
//! file of `--config FILE` (keys: the long names), then clap's default.
//!
//! Everything here is derived from the clap definition, never from a list of options: an
//! option added to [`super::Args`] has its variable and its key at once. Which options
//! take part, and how each is read, follows from the option itself:
//!
//! - a switch (`ArgAction::SetTrue`, `--dir-listing`): a variable holds `true`/`false`,
//!   `1`/`0`, `yes`/`no` or `on`/`off` (any case); a key holds a TOML boolean;
//! - an option with one value (`--port 8080`): the variable holds the value as it would
//!   follow the flag; a key holds an integer if the option parses into an integer, else a
//!   string (a boolean too for `--compress on|off`);
//! - a repeatable option (`ArgAction::Append`, `--header`): the variable holds one value
//!   a line (blank lines skipped, spaces around a value trimmed); a key holds an array.
//!
//! Not set this way: `--help`, `--version` and `--hash-password` (one-shot actions, which
//! a variable left in a service's environment would turn into every start), and the
//! positionals (their flags, `--port`, `--host`, `--threads`, are). `--config` itself
//! comes from `RFS_CONFIG` too, but a file cannot name another.
//!
//! How: clap parses the command line alone; each option that did not come from it
//! ([`clap::ArgMatches::value_source`]) is taken from the environment, else from the
//! file. What is taken becomes `--long=VALUE` arguments put before the command line's,
//! and clap parses the whole again, so that every value meets the same parser, bounds,
//! conflicts and requirements as on the command line. A repeatable option takes all its
//! values from one place (lists are not merged), and an option that conflicts with one
//! set higher up (`--tls-self-signed` in the file, `--tls-cert` on the command line) is
//! dropped, as the higher setting wins. Every value read from the environment or the
//! file is first checked alone, so that a bad one is a usage error naming its variable
//! or key, even when a higher place overrides it: a bad value anywhere is an error.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::Path;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, Id};

/// What every variable's name starts with.
pub const ENV_PREFIX: &str = "RFS_";

/// Long names that neither a variable nor a file key sets: one-shot actions.
pub const NOT_CONFIGURABLE: &[&str] = &["help", "version", "hash-password"];

/// Long names a variable sets but a file key does not: the file itself.
pub const NOT_IN_FILE: &[&str] = &["config"];

/// The seed's positionals and the flags that say the same by name: a positional on the
/// command line is that option given on the command line.
const POSITIONALS: &[(&str, &str)] = &[
    ("port_arg", "port_flag"),
    ("host_arg", "host_flag"),
    ("threads_arg", "threads_flag"),
];

/// The variable of the option with this long name: `RFS_` + the name in upper snake
/// case (`max-body` → `RFS_MAX_BODY`).
pub fn env_name(long: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        long.to_ascii_uppercase().replace('-', "_")
    )
}

/// How an option takes its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Present or not (`--dir-listing`).
    Switch,
    /// One value (`--port 8080`); given again, the last wins.
    Value,
    /// Repeatable (`--header`, `--auth`).
    List,
}

/// The long name and shape of an option that a variable and a file key may set; `None`
/// for the positionals, the one-shot actions, and any other action (which would need a
/// way to be read written here first: a unit test lists every option).
pub(crate) fn configurable(arg: &Arg) -> Option<(&str, Shape)> {
    let long = arg.get_long()?;
    if NOT_CONFIGURABLE.contains(&long) {
        return None;
    }
    let shape = match arg.get_action() {
        ArgAction::SetTrue => Shape::Switch,
        ArgAction::Set => Shape::Value,
        ArgAction::Append => Shape::List,
        _ => return None,
    };
    Some((long, shape))
}

/// Adds `[env: RFS_NAME]` to the help of an option that a variable sets (for
/// [`Command::mut_args`]).
pub(crate) fn annotate(arg: Arg) -> Arg {
    let Some(note) = configurable(&arg).map(|(long, _)| format!("[env: {}]", env_name(long)))
    else {
        return arg;
    };
    let help = match arg.get_help() {
        Some(help) => format!("{help} {note}"),
        None => note.clone(),
    };
    let long_help = arg.get_long_help().map(|h| format!("{h}\n\n{note}"));
    let arg = arg.help(help);
    match long_help {
        Some(h) => arg.long_help(h),
        None => arg,
    }
}

/// What a spelling of a boolean means: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`,
/// in any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// One option as the environment or the file sets it.
struct Setting {
    id: Id,
    /// `RFS_PORT`, or ``key `port` of FILE``, for messages.
    origin: String,
    /// The command-line arguments it stands for (none for a switch that is off, or an
    /// empty list).
    args: Vec<OsString>,
}

/// The parsed arguments, and where each option that did not come from the command line
/// came from.
pub(crate) struct Resolved {
    pub matches: ArgMatches,
    origins: HashMap<Id, String>,
}

impl Resolved {
    /// `RFS_QUEUE`, ``key `queue` of FILE``, or `None` (the command line or the default).
    pub fn origin(&self, id: &str) -> Option<&str> {
        self.origins.get(id).map(String::as_str)
    }
}

/// Parses `argv` with the environment (`env` looks a variable up) and the file of
/// `--config` under it: see the module documentation.
pub(crate) fn resolve(
    cmd: &mut Command,
    argv: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Resolved, clap::Error> {
    let cli = cmd.try_get_matches_from_mut(argv.clone())?;
    let mut decided: Vec<Id> = Vec::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id();
        if cli.value_source(id.as_str()) == Some(ValueSource::CommandLine) {
            decided.push(id.clone());
            if let Some((_, flag)) = POSITIONALS.iter().find(|(p, _)| id == *p) {
                decided.push(Id::from(*flag));
            }
        }
    }
    let environment = from_env(cmd, env)?;
    let file = match cli.value_source("config") {
        Some(ValueSource::CommandLine) => cli.get_raw("config").and_then(|mut v| v.next()),
        _ => None,
    }
    .map(OsStr::to_os_string)
    .or_else(|| env(&env_name("config")));
    let file = match file {
        Some(path) => from_file(cmd, Path::new(&path))?,
        None => Vec::new(),
    };

    let mut chosen: Vec<Setting> = Vec::new();
    for layer in [environment, file] {
        let taken: Vec<Setting> = layer
            .into_iter()
            .filter(|s| {
                !decided
                    .iter()
                    .any(|d| *d == s.id || conflict(cmd, d, &s.id))
            })
            .collect();
        decided.extend(taken.iter().map(|s| s.id.clone()));
        chosen.extend(taken);
    }
    if chosen.is_empty() {
        return Ok(Resolved {
            matches: cli,
            origins: HashMap::new(),
        });
    }
    let mut full = argv.into_iter();
    let mut all: Vec<OsString> = full.next().into_iter().collect();
    all.extend(chosen.iter().flat_map(|s| s.args.iter().cloned()));
    all.extend(full);
    let matches = cmd.try_get_matches_from_mut(all).map_err(|e| {
        let from: Vec<&str> = chosen.iter().map(|s| s.origin.as_str()).collect();
        let message = format!("{} (with {})", first_paragraph(&e), from.join(", "));
        cmd.error(e.kind(), message)
    })?;
    let origins = chosen.into_iter().map(|s| (s.id, s.origin)).collect();
    Ok(Resolved { matches, origins })
}

/// Whether clap refuses the two options together (either one naming the other).
fn conflict(cmd: &Command, a: &Id, b: &Id) -> bool {
    let arg = |id: &Id| cmd.get_arguments().find(|x| x.get_id() == id);
    let (Some(x), Some(y)) = (arg(a), arg(b)) else {
        return false;
    };
    cmd.get_arg_conflicts_with(x)
        .iter()
        .any(|c| c.get_id() == b)
        || cmd
            .get_arg_conflicts_with(y)
            .iter()
            .any(|c| c.get_id() == a)
}

/// The `RFS_*` variables `env` has, each checked.
fn from_env(
    cmd: &Command,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Vec<Setting>, clap::Error> {
    let mut probe = cmd.clone();
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        let Some((long, shape)) = configurable(arg) else {
            continue;
        };
        let name = env_name(long);
        let Some(raw) = env(&name) else {
            continue;
        };
        let text = || {
            raw.to_str()
                .ok_or_else(|| usage(cmd, format!("{name} is not UTF-8")))
        };
        let args = match shape {
            Shape::Switch => match parse_bool(text()?.trim()) {
                Some(true) => vec![OsString::from(format!("--{long}"))],
                Some(false) => Vec::new(),
                None => {
                    return Err(usage(
                        cmd,
                        format!(
                            "{name}: {:?} is not a boolean (true/false, 1/0, yes/no, on/off)",
                            text()?
                        ),
                    ))
                }
            },
            Shape::Value => vec![checked(&mut probe, long, &raw, &name)?],
            Shape::List => text()?
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(|line| checked(&mut probe, long, OsStr::new(line), &name))
                .collect::<Result<_, _>>()?,
        };
        out.push(Setting {
            id: arg.get_id().clone(),
            origin: name,
            args,
        });
    }
    Ok(out)
}

/// The settings of the TOML file at `path`, each key checked.
fn from_file(cmd: &Command, path: &Path) -> Result<Vec<Setting>, clap::Error> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(
            cmd,
            format!("cannot read the configuration file {shown}: {e}"),
        )
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| usage(cmd, format!("{shown}: {}", e.to_string().trim())))?;
    let mut probe = cmd.clone();
    let mut out: Vec<Setting> = Vec::new();
    for (key, value) in &table {
        let origin = format!("key `{key}` of {shown}");
        let found = cmd.get_arguments().find_map(|arg| {
            let (long, shape) = configurable(arg)?;
            let named = long == key
                || arg
                    .get_all_aliases()
                    .unwrap_or_default()
                    .contains(&key.as_str());
            (named && !NOT_IN_FILE.contains(&long)).then_some((arg, long, shape))
        });
        let Some((arg, long, shape)) = found else {
            return Err(usage(cmd, unknown_key(cmd, key, &shown.to_string())));
        };
        if let Some(same) = out.iter().find(|s| s.id == *arg.get_id()) {
            return Err(usage(
                cmd,
                format!("{origin}: the same option as {}", same.origin),
            ));
        }
        let wrong = |what: &str| {
            usage(
                cmd,
                format!("{origin}: expected {what}, found {}", value.type_str()),
            )
        };
        let args = match shape {
            Shape::Switch => match value {
                toml::Value::Boolean(true) => vec![OsString::from(format!("--{long}"))],
                toml::Value::Boolean(false) => Vec::new(),
                _ => return Err(wrong("a boolean (true or false)")),
            },
            Shape::Value => {
                let v = scalar(arg, value).map_err(|(one, _)| wrong(one))?;
                vec![checked(&mut probe, long, &v, &origin)?]
            }
            Shape::List => {
                let toml::Value::Array(items) = value else {
                    return Err(wrong("an array"));
                };
                let mut args = Vec::new();
                for item in items {
                    let v = scalar(arg, item)
                        .map_err(|(_, many)| wrong(&format!("an array of {many}")))?;
                    args.push(checked(&mut probe, long, &v, &origin)?);
                }
                args
            }
        };
        out.push(Setting {
            id: arg.get_id().clone(),
            origin,
            args,
        });
    }
    Ok(out)
}

/// Why a file key is refused, with a hint where one helps.
fn unknown_key(cmd: &Command, key: &str, file: &str) -> String {
    if NOT_CONFIGURABLE.contains(&key) {
        return format!("key `{key}` of {file}: --{key} is a one-shot action, not a setting");
    }
    if NOT_IN_FILE.contains(&key) {
        return format!("key `{key}` of {file}: a configuration file cannot name another");
    }
    let kebab = key.replace('_', "-");
    let hint = cmd
        .get_arguments()
        .filter_map(configurable)
        .find(|(long, _)| *long == kebab)
        .map(|(long, _)| format!(" (did you mean `{long}`?)"))
        .unwrap_or_default();
    format!("unknown key `{key}` in {file}{hint}")
}

/// A TOML value as the command-line value of `arg`: an integer for an option that parses
/// into an integer, a string otherwise (or a boolean, for an option that parses into
/// one); else what was expected, as one and as many.
fn scalar(arg: &Arg, value: &toml::Value) -> Result<OsString, (&'static str, &'static str)> {
    use std::any::TypeId;
    let ty = arg.get_value_parser().type_id();
    let integer = [
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
        TypeId::of::<i8>(),
        TypeId::of::<i16>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<isize>(),
    ]
    .iter()
    .any(|t| ty == *t);
    match value {
        toml::Value::Integer(n) if integer => Ok(n.to_string().into()),
        _ if integer => Err(("an integer", "integers")),
        toml::Value::String(s) => Ok(s.into()),
        toml::Value::Boolean(b) if ty == TypeId::of::<bool>() => {
            Ok(if *b { "true" } else { "false" }.into())
        }
        _ if ty == TypeId::of::<bool>() => Err(("a boolean", "booleans")),
        _ => Err(("a string", "strings")),
    }
}

/// `--long=VALUE`, once clap's parser for the option took VALUE; else a usage error that
/// names `origin`.
fn checked(
    probe: &mut Command,
    long: &str,
    value: &OsStr,
    origin: &str,
) -> Result<OsString, clap::Error> {
    let mut arg = OsString::from(format!("--{long}="));
    arg.push(value);
    // Only the value's own errors count here: what it needs beside it (`--tls-key` for
    // `--tls-cert`) is for the parse of everything together.
    match probe.try_get_matches_from_mut([OsString::from("probe"), arg.clone()]) {
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::InvalidUtf8
            ) =>
        {
            Err(usage(probe, format!("{origin}: {}", first_paragraph(&e))))
        }
        _ => Ok(arg),
    }
}

/// The first paragraph of a clap error on one line, without its `error: `.
fn first_paragraph(e: &clap::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = lines.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

/// A usage error (exit 2) of `cmd`.
fn usage(cmd: &Command, message: String) -> clap::Error {
    cmd.clone().error(ErrorKind::ValueValidation, message)
}

#[cfg(test)]
mod tests;
