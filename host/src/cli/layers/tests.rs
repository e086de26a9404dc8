//! The layers: precedence, every kind of value, the errors that name their source.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use super::*;
use crate::cli::{Args, Runtime};

/// Parses `args` for runtime-std in the environment `env`.
fn parse(env: &[(&str, &str)], args: &[&str]) -> Result<Args, clap::Error> {
    parse_for(Runtime::Std, env, args)
}

fn parse_for(runtime: Runtime, env: &[(&str, &str)], args: &[&str]) -> Result<Args, clap::Error> {
    let env: HashMap<String, OsString> = env
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    Args::try_parse_with(
        runtime,
        std::iter::once(runtime.name()).chain(args.iter().copied()),
        move |name| env.get(name).cloned(),
    )
}

/// A configuration file holding `text` (removed when dropped).
fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

fn path(f: &tempfile::NamedTempFile) -> &str {
    f.path().to_str().expect("utf-8 temp path")
}

/// The usage error of a parse that must fail, as text (exit code 2 checked).
fn refused(r: Result<Args, clap::Error>) -> String {
    let e = r.expect_err("must be refused");
    assert_eq!(e.exit_code(), 2, "{e}");
    e.to_string()
}

/// Every option of the clap definition (those added later too) has its variable and
/// its file key, except the documented exclusions; the variables are the ones read.
#[test]
fn every_option_has_its_variable_and_its_key() {
    let mut cmd = Args::command_for(Runtime::Std);
    cmd.build();
    let mut expected = BTreeSet::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else {
            assert!(
                POSITIONALS.iter().any(|(p, _)| *p == id),
                "{id}: an option without a long name has no variable"
            );
            continue;
        };
        if NOT_CONFIGURABLE.contains(&long) {
            continue;
        }
        let (_, shape) = configurable(arg).unwrap_or_else(|| {
            panic!("--{long}: its action has no reading from a variable or a key yet")
        });
        let name = env_name(long);
        assert_eq!(
            name,
            format!("RFS_{}", long.to_uppercase().replace('-', "_")),
            "--{long}"
        );
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        assert!(help.contains(&format!("[env: {name}]")), "--{long}: {help}");
        expected.insert(name);
        // The file knows the key: a table is the wrong type for every shape, and the
        // error names the key rather than calling it unknown.
        if !NOT_IN_FILE.contains(&long) {
            let f = file(&format!("{long} = {{}}\n"));
            let e = refused(parse(&[], &["--config", path(&f)]));
            assert!(e.contains(&format!("key `{long}`")), "--{long}: {e}");
            assert!(e.contains("expected"), "--{long} ({shape:?}): {e}");
            assert!(!e.contains("unknown"), "--{long}: {e}");
        }
    }
    // What SPEC names, and what is left out.
    for name in [
        "RFS_PORT",
        "RFS_HOST",
        "RFS_THREADS",
        "RFS_ROOT",
        "RFS_AUTH",
    ] {
        assert!(expected.contains(name), "{name}");
    }
    for name in ["RFS_CONFIG", "RFS_HEADER", "RFS_CORS", "RFS_ALLOW_HOST"] {
        assert!(expected.contains(name), "{name}");
    }
    assert_eq!(NOT_CONFIGURABLE, ["help", "version", "hash-password"]);
    assert_eq!(NOT_IN_FILE, ["config"]);
    // The variables read are exactly these: no more, no fewer.
    let asked = Mutex::new(BTreeSet::new());
    Args::try_parse_with(Runtime::Std, ["runtime-std"], |name| {
        asked.lock().expect("lock").insert(name.to_string());
        None
    })
    .expect("empty environment");
    assert_eq!(asked.into_inner().expect("lock"), expected);
}

#[test]
fn each_layer_in_its_order() {
    let f = file("port = 1111\nroot = \"/from/file\"\nmax-requests = 7\nidle-timeout = 9\n");
    let config = path(&f);
    // The file over the defaults.
    let a = parse(&[], &["--config", config]).expect("file");
    assert_eq!(a.port(), 1111);
    assert_eq!(a.root, PathBuf::from("/from/file"));
    assert_eq!((a.max_requests, a.idle_timeout, a.head_timeout), (7, 9, 10));
    // The environment over the file.
    let env = [("RFS_PORT", "2222"), ("RFS_MAX_REQUESTS", "8")];
    let a = parse(&env, &["--config", config]).expect("env");
    assert_eq!((a.port(), a.max_requests, a.idle_timeout), (2222, 8, 9));
    assert_eq!(a.root, PathBuf::from("/from/file"));
    // The command line over both, by flag, by short flag or by positional.
    let a = parse(&env, &["--config", config, "--port", "3333", "-d", "/cli"]).expect("cli");
    assert_eq!((a.port(), a.max_requests), (3333, 8));
    assert_eq!(a.root, PathBuf::from("/cli"));
    let a = parse(&env, &["4444", "--config", config]).expect("positional");
    assert_eq!(a.port(), 4444);
    let env = [("RFS_HOST", "::1"), ("RFS_THREADS", "3")];
    let a = parse(&env, &["4444", "0.0.0.0"]).expect("positionals");
    assert_eq!((a.host(), a.threads()), ("0.0.0.0", 3));
    // RFS_CONFIG names the file; --config wins over it.
    let other = file("port = 5555\n");
    let a = parse(&[("RFS_CONFIG", config)], &[]).expect("RFS_CONFIG");
    assert_eq!(a.port(), 1111);
    assert_eq!(a.config.as_deref(), Some(f.path()));
    let a = parse(&[("RFS_CONFIG", config)], &["--config", path(&other)]).expect("both");
    assert_eq!(a.port(), 5555);
    // An empty value is a value: it beats the file's.
    let f = file("cache-control = \"public\"\n");
    let a = parse(&[], &["--config", path(&f)]).expect("file");
    assert_eq!(a.cache_control, "public");
    let a = parse(&[("RFS_CACHE_CONTROL", "")], &["--config", path(&f)]).expect("empty");
    assert_eq!(a.cache_control, "");
}

#[test]
fn repeatables_one_value_a_line_or_an_array_and_never_merged() {
    let env = [
        ("RFS_HEADER", "X-One: 1\r\n\n  X-Two: a: b  \n"),
        ("RFS_CORS", "https://a.test\nhttps://b.test"),
        ("RFS_ALLOW_HOST", "a.test\nb.test\n"),
        ("RFS_AUTH", "@/:ro\n@/pub:rw"),
    ];
    let a = parse(&env, &[]).expect("lists");
    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(a.header, pairs(&[("X-One", "1"), ("X-Two", "a: b")]));
    assert_eq!(a.cors, ["https://a.test", "https://b.test"]);
    assert_eq!(a.allow_host, ["a.test", "b.test"]);
    assert_eq!(a.auth.len(), 2);
    let f = file("header = [\"X-File: 1\", \"X-File2: 2\"]\nallow-host = [\"f.test\"]\n");
    let a = parse(&[], &["--config", path(&f)]).expect("arrays");
    assert_eq!(a.header, pairs(&[("X-File", "1"), ("X-File2", "2")]));
    assert_eq!(a.allow_host, ["f.test"]);
    // A list comes whole from the highest place that sets it.
    let a = parse(&[("RFS_HEADER", "X-Env: 1")], &["--config", path(&f)]).expect("env");
    assert_eq!(a.header, pairs(&[("X-Env", "1")]));
    assert_eq!(a.allow_host, ["f.test"]);
    let a = parse(
        &[("RFS_HEADER", "X-Env: 1")],
        &["--config", path(&f), "-H", "X-Cli: 1"],
    )
    .expect("cli");
    assert_eq!(a.header, pairs(&[("X-Cli", "1")]));
    // An empty variable is an empty list, over the file's.
    let a = parse(&[("RFS_HEADER", "\n")], &["--config", path(&f)]).expect("empty");
    assert!(a.header.is_empty());
}

#[test]
fn listen_from_the_environment_or_the_file() {
    use crate::listen::ListenAddr;
    let tcp = |h: &str, p| ListenAddr::Tcp {
        host: h.into(),
        port: p,
    };
    let a = parse(&[("RFS_LISTEN", "127.0.0.1:8080\n[::]:8081\n")], &[]).expect("env");
    assert_eq!(a.listen, [tcp("127.0.0.1", 8080), tcp("::", 8081)]);
    let f = file("listen = [\"[::1]:9000\", \"unix:/run/rfs.sock\"]\n");
    let a = parse(&[], &["--config", path(&f)]).expect("file");
    assert_eq!(a.listen[0], tcp("::1", 9000));
    #[cfg(unix)]
    assert_eq!(a.listen[1], ListenAddr::Unix("/run/rfs.sock".into()));
    // The command line's --port wins: the variable's --listen, which conflicts with
    // it, is dropped.
    let a = parse(&[("RFS_LISTEN", "127.0.0.1:8080")], &["--port", "7000"]).expect("cli");
    assert!(a.listen.is_empty());
    assert_eq!(a.port(), 7000);
    // A bad address is a usage error naming the variable or the key.
    let e = parse(&[("RFS_LISTEN", "::1:80")], &[]).expect_err("brackets");
    assert!(e.to_string().contains("RFS_LISTEN"), "{e}");
    let f = file("listen = [\"8080\"]\n");
    let e = parse(&[], &["--config", path(&f)]).expect_err("no host");
    assert!(e.to_string().contains("listen"), "{e}");
}

#[test]
fn booleans_in_every_spelling_and_only_those() {
    for on in ["true", "1", "yes", "on", "TRUE", "Yes"] {
        let a = parse(&[("RFS_DIR_LISTING", on), ("RFS_COMPRESS", on)], &[]).expect(on);
        assert!(a.dir_listing && a.compress, "{on}");
    }
    for off in ["false", "0", "no", "off", "False"] {
        let a = parse(&[("RFS_DIR_LISTING", off), ("RFS_COMPRESS", off)], &[]).expect(off);
        assert!(!a.dir_listing && !a.compress, "{off}");
    }
    for bad in ["maybe", "", "2"] {
        let e = refused(parse(&[("RFS_SPA", bad)], &[]));
        assert!(e.contains("RFS_SPA"), "{e}");
        let e = refused(parse(&[("RFS_COMPRESS", bad)], &[]));
        assert!(e.contains("RFS_COMPRESS") && e.contains("on or off"), "{e}");
    }
    // A switch that the environment turns off stays off whatever the file says.
    let f = file("dir-listing = true\nspa = true\ncompress = false\n");
    let a = parse(&[], &["--config", path(&f)]).expect("file");
    assert!(a.dir_listing && a.spa && !a.compress);
    let a = parse(&[("RFS_DIR_LISTING", "off")], &["--config", path(&f)]).expect("env");
    assert!(!a.dir_listing && a.spa);
    let a = parse(&[], &["--config", path(&f), "--compress", "yes"]).expect("cli");
    assert!(a.compress);
    // In the file a switch is a TOML boolean; --compress takes on|off too.
    let f = file("compress = \"off\"\n");
    assert!(!parse(&[], &["--config", path(&f)]).expect("off").compress);
    let f = file("dir-listing = \"true\"\n");
    let e = refused(parse(&[], &["--config", path(&f)]));
    assert!(
        e.contains("key `dir-listing`") && e.contains("boolean"),
        "{e}"
    );
}

#[test]
fn a_bad_value_names_its_variable_or_key() {
    for (env, name) in [
        (("RFS_PORT", "http"), "RFS_PORT"),
        (("RFS_PORT", "70000"), "RFS_PORT"),
        (("RFS_THREADS", "0"), "RFS_THREADS"),
        (("RFS_MAX_BODY", "4294967296"), "RFS_MAX_BODY"),
        (("RFS_HEADER", "X-Ok: 1\nConnection: close"), "RFS_HEADER"),
        (("RFS_AUTH", "alice:plain@/"), "RFS_AUTH"),
        (("RFS_CACHE_CONTROL", "a\u{7f}"), "RFS_CACHE_CONTROL"),
    ] {
        let e = refused(parse(&[env], &[]));
        assert!(e.contains(name), "{env:?}: {e}");
    }
    // Even when the command line overrides it: a bad value anywhere is an error.
    let e = refused(parse(&[("RFS_PORT", "http")], &["--port", "1"]));
    assert!(e.contains("RFS_PORT") && e.contains("http"), "{e}");
    for (text, key, what) in [
        ("port = \"8080\"", "port", "integer"),
        ("port = 70000", "port", "70000"),
        ("max-body = -1", "max-body", "-1"),
        ("root = 5", "root", "string"),
        ("header = \"X-A: 1\"", "header", "array"),
        ("header = [1]", "header", "array of strings"),
        ("header = [\"Date: now\"]", "header", "Date"),
        ("threads = 1.5", "threads", "integer"),
        ("tls-self-signed = 1", "tls-self-signed", "boolean"),
    ] {
        let f = file(text);
        let e = refused(parse(&[], &["--config", path(&f)]));
        assert!(e.contains(&format!("key `{key}`")), "{text}: {e}");
        assert!(e.contains(what), "{text}: {e}");
        assert!(e.contains(path(&f)), "{text}: names the file: {e}");
    }
}

#[test]
fn unknown_and_refused_keys() {
    for (text, needle) in [
        ("bogus = 1", "unknown key `bogus`"),
        ("dir_listing = true", "did you mean `dir-listing`"),
        ("hash-password = true", "one-shot"),
        ("help = true", "one-shot"),
        ("config = \"other.toml\"", "cannot name another"),
        ("[server]\nport = 1", "unknown key `server`"),
        ("host = \"::1\"\nbind = \"::1\"", "same option"),
    ] {
        let f = file(text);
        let e = refused(parse(&[], &["--config", path(&f)]));
        assert!(e.contains(needle), "{text}: {e}");
    }
    // An alias is a key too.
    let f = file("bind = \"::1\"\n");
    assert_eq!(
        parse(&[], &["--config", path(&f)]).expect("bind").host(),
        "::1"
    );
    // A file that cannot be read or parsed: a usage error naming it.
    let e = refused(parse(&[], &["--config", "/nonexistent/rfs.toml"]));
    assert!(e.contains("/nonexistent/rfs.toml"), "{e}");
    let f = file("port = = 1\n");
    let e = refused(parse(&[], &["--config", path(&f)]));
    assert!(e.contains(path(&f)), "{e}");
    // Variables no option has are not read: RFS_HASH_PASSWORD, RFS_HELP.
    let a = parse(&[("RFS_HASH_PASSWORD", "1"), ("RFS_HELP", "1")], &[]).expect("ignored");
    assert!(!a.hash_password);
}

#[test]
fn what_the_command_line_sets_drops_a_lower_conflicting_option() {
    let f = file("tls-self-signed = true\n");
    let a = parse(
        &[],
        &[
            "--config",
            path(&f),
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ],
    )
    .expect("the command line's TLS wins");
    assert!(!a.tls_self_signed);
    assert_eq!(a.tls_cert, Some(PathBuf::from("c.pem")));
    let env = [("RFS_TLS_CERT", "c.pem"), ("RFS_TLS_KEY", "k.pem")];
    let a = parse(&env, &["--config", path(&f)]).expect("the environment's wins");
    assert!(!a.tls_self_signed);
    // Within one place, clap's own rules: a certificate without its key.
    let e = refused(parse(&[("RFS_TLS_CERT", "c.pem")], &[]));
    assert!(e.contains("RFS_TLS_CERT") && e.contains("--tls-key"), "{e}");
    // runtime-smol names where --queue came from.
    let e = refused(parse_for(Runtime::Smol, &[("RFS_QUEUE", "5")], &[]));
    assert!(
        e.contains("RFS_QUEUE") && e.contains("runtime-std only"),
        "{e}"
    );
}
