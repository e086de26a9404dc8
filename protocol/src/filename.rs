//! Names for uploaded files (SPEC "Requests", multipart uploads): the file name a client
//! sent, made into one plain, visible name that is safe on every platform the server
//! runs on, and the numbered names tried when it is taken.
//!
//! ```text
//! let name = sanitize(filename_from_the_part).unwrap_or_else(|| fallback_name);
//! for n in 0.. { try to create numbered(&name, n) without overwriting; stop when created }
//! ```
//!
//! [`sanitize`], in order:
//! 1. keeps only the last path component (split on `/` and `\`: browsers on Windows and
//!    old ones send whole paths);
//! 2. removes control characters (C0, DEL, C1) and the invisible characters that
//!    disguise a name: the bidirectional controls (U+202A–U+202E, U+2066–U+2069,
//!    U+200E, U+200F, U+061C: `evil\u{202E}fdp.exe` would read as `evilexe.pdf`), U+200B,
//!    U+2028, U+2029 and U+FEFF; the joiners U+200C / U+200D stay (Persian text, emoji);
//! 3. replaces `< > : " | ? *` (not allowed on Windows) with `_`, and the `~` of `~1`
//!    (a Windows 8.3 short name, which the server refuses to serve) with `_`;
//! 4. strips leading dots and spaces (no hidden file, no `..`) and trailing ones
//!    (Windows drops them);
//! 5. prefixes a Windows device name (`CON`, `PRN`, `AUX`, `NUL`, `COM1`–`COM9`,
//!    `LPT1`–`LPT9`, with `¹²³` too, `CONIN$`, `CONOUT$`, `CLOCK$`; any case, any
//!    extension: `con.txt`) with `_`;
//! 6. truncates to 255 bytes on a character boundary, keeping an extension of up to 16
//!    bytes;
//! 7. gives `None` when nothing is left.
//!
//! The rules match the server's own path rules (`target`), so every sanitized name can
//! be served back on every platform.

/// The longest name most file systems take, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// The longest suffix kept as an extension when a name is shortened.
const MAX_EXT_BYTES: usize = 16;

/// The safe form of a client's file name (see the module doc), or `None`.
pub fn sanitize(original: &str) -> Option<String> {
    let last = original.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name = String::with_capacity(last.len());
    let mut chars = last
        .chars()
        .filter(|&c| !c.is_control() && !invisible(c))
        .peekable();
    while let Some(c) = chars.next() {
        let short_name = c == '~' && chars.peek().is_some_and(char::is_ascii_digit);
        name.push(if short_name || "<>:\"|?*".contains(c) {
            '_'
        } else {
            c
        });
    }
    let name = name.trim_matches(['.', ' ']);
    if name.is_empty() {
        return None;
    }
    let name = if reserved(name) {
        format!("_{name}")
    } else {
        name.to_string()
    };
    let name = shorten(&name, MAX_NAME_BYTES);
    (!name.is_empty()).then_some(name)
}

/// The `n`th name to try for `name` when it is taken: `report.pdf` → `report-1.pdf`,
/// `archive.tar.gz` → `archive-1.tar.gz` (a `.tar` before the last extension stays with
/// it), `README` → `README-1`, `a.b.c` → `a.b-1.c`; `n == 0` gives `name` itself. The
/// stem is shortened so that the result stays within 255 bytes.
pub fn numbered(name: &str, n: u64) -> String {
    if n == 0 {
        return name.to_string();
    }
    let (mut stem, mut ext) = split_ext(name);
    if let Some((before, _)) = stem.rsplit_once('.') {
        if !before.is_empty() && stem[before.len()..].eq_ignore_ascii_case(".tar") {
            (stem, ext) = (before, &name[before.len()..]);
        }
    }
    let suffix = format!("-{n}");
    let room = MAX_NAME_BYTES.saturating_sub(suffix.len() + ext.len());
    let stem = stem[..floor_char_boundary(stem, room)].trim_end_matches(['.', ' ']);
    format!("{stem}{suffix}{ext}")
}

fn invisible(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}'
        | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A Windows device name, whatever its extension (`CON`, `con.txt`, `COM1.tar.gz`).
fn reserved(name: &str) -> bool {
    const DEVICES: [&str; 7] = ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"];
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = stem.to_uppercase();
    let numbered = |prefix: &str| {
        upper.strip_prefix(prefix).is_some_and(|n| {
            matches!(
                n,
                "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³"
            )
        })
    };
    DEVICES.contains(&upper.as_str()) || numbered("COM") || numbered("LPT")
}

/// `name` and its extension (with the dot; empty when there is none, when the name
/// would be only an extension, or when it is longer than 16 bytes).
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= MAX_EXT_BYTES => name.split_at(dot),
        _ => (name, ""),
    }
}

/// At most `max` bytes of `name`, cut on a character boundary, the extension kept.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (stem, ext) = split_ext(name);
    let stem = stem[..floor_char_boundary(stem, max - ext.len())].trim_end_matches(['.', ' ']);
    if stem.is_empty() {
        return name[..floor_char_boundary(name, max)]
            .trim_end_matches(['.', ' '])
            .to_string();
    }
    format!("{stem}{ext}")
}

/// The largest index `<= max` that is a character boundary of `s`.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn hostile_names() {
        let table: &[(&str, Option<&str>)] = &[
            ("report.pdf", Some("report.pdf")),
            ("../../etc/passwd", Some("passwd")),
            ("..", None),
            (".", None),
            ("", None),
            ("dir/", None),
            ("/", None),
            (".htaccess", Some("htaccess")),
            ("...hidden.txt", Some("hidden.txt")),
            ("a\\b\\c.txt", Some("c.txt")),
            ("C:\\Users\\me\\Desktop\\cv.docx", Some("cv.docx")),
            ("C:cv.docx", Some("C_cv.docx")),
            ("a\0b.txt", Some("ab.txt")),
            ("tab\tnew\nline\r.txt\x7f", Some("tabnewline.txt")),
            ("c1\u{85}\u{9b}.txt", Some("c1.txt")),
            ("evil\u{202E}fdp.exe", Some("evilfdp.exe")),
            ("\u{FEFF}bom\u{200B}.txt", Some("bom.txt")),
            ("\u{2066}x\u{2069}\u{200E}.md", Some("x.md")),
            ("...", None),
            ("  . .  ", None),
            (" . name . ", Some("name")),
            ("report.pdf. . .", Some("report.pdf")),
            ("a<b>c:d\"e|f?g*h.txt", Some("a_b_c_d_e_f_g_h.txt")),
            ("???", Some("___")),
            ("CON", Some("_CON")),
            ("CON.txt", Some("_CON.txt")),
            ("con.tar.gz", Some("_con.tar.gz")),
            ("nul", Some("_nul")),
            ("Aux .txt", Some("_Aux .txt")),
            ("COM1.log", Some("_COM1.log")),
            ("lpt9", Some("_lpt9")),
            ("COM¹.txt", Some("_COM¹.txt")),
            ("conout$", Some("_conout$")),
            ("LPT10.txt", Some("LPT10.txt")),
            ("CONSOLE.txt", Some("CONSOLE.txt")),
            ("com0", Some("com0")),
            ("PROGRA~1.txt", Some("PROGRA_1.txt")),
            ("tilde~x.txt", Some("tilde~x.txt")),
            ("📄 report 👨‍👩‍👧.pdf", Some("📄 report 👨‍👩‍👧.pdf")),
            ("ünïcödé €.txt", Some("ünïcödé €.txt")),
            ("نامه\u{200C}ها.txt", Some("نامه\u{200C}ها.txt")),
            ("%2e%2e%2fx", Some("%2e%2e%2fx")),
        ];
        for &(original, want) in table {
            assert_eq!(sanitize(original).as_deref(), want, "{original:?}");
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn long_names() {
        let long = format!("{}.pdf", "a".repeat(300));
        let s = sanitize(&long).unwrap();
        assert_eq!((s.len(), s.ends_with(".pdf")), (255, true));
        // Two-byte characters: cut on a boundary, 254 bytes.
        let s = sanitize(&format!("{}.txt", "é".repeat(200))).unwrap();
        assert_eq!(s, format!("{}.txt", "é".repeat(125)));
        // Four-byte emoji.
        let s = sanitize(&"🦀".repeat(100)).unwrap();
        assert_eq!(s, "🦀".repeat(63));
        // An "extension" too long to keep: the whole name is cut.
        let s = sanitize(&format!("x.{}", "y".repeat(300))).unwrap();
        assert_eq!(s, format!("x.{}", "y".repeat(253)));
        // A cut that leaves dots or spaces at the end of the stem drops them.
        let s = sanitize(&format!("{}{}.pdf", "b".repeat(250), " .".repeat(20))).unwrap();
        assert_eq!(s, format!("{}.pdf", "b".repeat(250)));
        // Exactly 255 is kept.
        let exact = "c".repeat(255);
        assert_eq!(sanitize(&exact).as_deref(), Some(exact.as_str()));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn numbered_names() {
        let table: &[(&str, u64, &str)] = &[
            ("report.pdf", 0, "report.pdf"),
            ("report.pdf", 1, "report-1.pdf"),
            ("report.pdf", 12, "report-12.pdf"),
            ("archive.tar.gz", 1, "archive-1.tar.gz"),
            ("x.TAR.BZ2", 2, "x-2.TAR.BZ2"),
            ("tar.gz", 1, "tar-1.gz"),
            ("README", 1, "README-1"),
            ("a.b.c", 3, "a.b-3.c"),
            ("_CON.txt", 1, "_CON-1.txt"),
            ("📄.pdf", 1, "📄-1.pdf"),
        ];
        for &(name, n, want) in table {
            assert_eq!(numbered(name, n), want, "{name} {n}");
        }
        let long = sanitize(&format!("{}.pdf", "é".repeat(200))).unwrap();
        let n = numbered(&long, 1234);
        assert!(n.len() <= 255 && n.ends_with("-1234.pdf"), "{n}");
        let n = numbered(&"z".repeat(255), u64::MAX);
        assert_eq!(n.len(), 255);
        // Every numbered name is still a sanitized name.
        for name in ["report.pdf", "archive.tar.gz", "README", "_CON.txt"] {
            let n = numbered(name, 7);
            assert_eq!(sanitize(&n).as_deref(), Some(n.as_str()));
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn pseudo_random_names_are_safe() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as u32
        };
        let pieces = [
            "a", ".", " ", "/", "\\", "..", "CON", "com1", "~1", ":", "*", "\0", "\u{202E}", "é",
            "🦀", "\u{200D}", "\u{85}", ".txt", "\t",
        ];
        for _ in 0..5_000 {
            let mut name = String::new();
            for _ in 0..next() % 120 {
                name.push_str(pieces[next() as usize % pieces.len()]);
            }
            let Some(s) = sanitize(&name) else { continue };
            assert!(!s.is_empty() && s.len() <= MAX_NAME_BYTES, "{name:?}");
            assert!(
                !s.starts_with(['.', ' ']) && !s.ends_with(['.', ' ']),
                "{s:?}"
            );
            assert!(
                !s.contains(['/', '\\', '\0', '<', '>', ':', '"', '|', '?', '*']),
                "{s:?}"
            );
            assert!(!s.chars().any(|c| c.is_control() || invisible(c)), "{s:?}");
            assert!(!reserved(&s), "{s:?}");
            assert_eq!(
                sanitize(&s).as_deref(),
                Some(s.as_str()),
                "idempotent: {name:?}"
            );
            let n = numbered(&s, u64::from(next()));
            assert!(
                n.len() <= MAX_NAME_BYTES && !n.starts_with(['.', ' ']),
                "{n:?}"
            );
        }
    }
}
