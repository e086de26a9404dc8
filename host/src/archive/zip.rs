//! The records of the zip format (PKWARE's APPNOTE.TXT 6.3.10) that [`super::Archive`]
//! writes, as bytes: local headers, data descriptors, central directory headers and the
//! end records, with their ZIP64 forms. No I/O, no state: each function appends one
//! record to a `Vec<u8>`.
//!
//! What every entry carries:
//! - general purpose flags: bit 11 (the name is UTF-8) always; bit 3 (sizes and CRC-32
//!   in a data descriptor after the data) for a file, never for a directory (no data:
//!   its sizes and CRC are known zeros);
//! - the modification time as MS-DOS date and time fields, in UTC (1980..=2107, clamped),
//!   and exactly in an extended-timestamp extra field (`UT`, 0x5455: the Unix time,
//!   unsigned 32-bit) that Info-ZIP, 7-Zip, libarchive and Go read;
//! - "made by" Unix, external attributes `0100644` for a file and `040755` plus the
//!   MS-DOS directory bit for a directory.
//!
//! ZIP64 (APPNOTE 4.3.9, 4.5.3), decided per entry and per archive:
//! - an entry whose size at open could bring its compressed or uncompressed size to
//!   0xFFFFFFFF ([`needs_zip64`]) is a *ZIP64 entry*: its local header holds 0xFFFFFFFF
//!   as both sizes and a ZIP64 extra field with both sizes zero (bit 3: they follow the
//!   data), and its data descriptor has 8-byte sizes. That is APPNOTE 4.3.9.2's rule (a
//!   ZIP64 extra field in the local header: 8-byte sizes in the descriptor), which
//!   streaming readers that go by the local headers follow (libarchive's `bsdtar`, for
//!   one); Info-ZIP's `zip` writes a streamed entry the same way. Any other entry has a
//!   4-byte descriptor;
//! - in the central directory, a size or local-header offset ≥ 0xFFFFFFFF is written as
//!   0xFFFFFFFF and its 8-byte value goes into a ZIP64 extra field, holding exactly those
//!   fields in the APPNOTE's order (uncompressed size, compressed size, offset), which is
//!   what readers that go by the central directory (Python's `zipfile`, Info-ZIP's
//!   `unzip`, Go, 7-Zip) expect;
//! - an archive with 65,535 entries or more, or whose central directory starts or ends
//!   at 0xFFFFFFFF or past it, ends with the ZIP64 end of central directory record and
//!   its locator before the classic end record, whose fields that overflow hold
//!   0xFFFF / 0xFFFFFFFF.
//!
//! "Version needed to extract" is 4.5 where a ZIP64 field is present in that record,
//! else 2.0.

/// Local file header signature.
const LOCAL: u32 = 0x0403_4b50;
/// Data descriptor signature (optional in the format, written always: readers expect it).
const DESCRIPTOR: u32 = 0x0807_4b50;
/// Central directory file header signature.
const CENTRAL: u32 = 0x0201_4b50;
/// End of central directory record.
const END: u32 = 0x0605_4b50;
/// ZIP64 end of central directory record.
const ZIP64_END: u32 = 0x0606_4b50;
/// ZIP64 end of central directory locator.
const ZIP64_LOCATOR: u32 = 0x0706_4b50;

/// Bit 3: CRC-32 and sizes are in the data descriptor after the data.
const FLAG_DESCRIPTOR: u16 = 1 << 3;
/// Bit 11: the name is UTF-8.
const FLAG_UTF8: u16 = 1 << 11;

/// Compression method "stored".
pub(super) const STORED: u16 = 0;
/// Compression method "deflated" (raw deflate, RFC 1951).
pub(super) const DEFLATED: u16 = 8;

/// Version 2.0: deflate, directories.
const VERSION_20: u16 = 20;
/// Version 4.5: ZIP64.
const VERSION_ZIP64: u16 = 45;
/// "Version made by", high byte: Unix (external attributes hold a Unix mode).
const MADE_BY_UNIX: u16 = 3 << 8;

/// The largest value a 4-byte field holds as itself; 0xFFFFFFFF means "see ZIP64".
pub(super) const MAX32: u64 = 0xFFFF_FFFF;
/// The entry count of the classic end record; 0xFFFF means "see ZIP64".
const MAX16: u64 = 0xFFFF;

/// The ZIP64 extended information extra field.
const EXTRA_ZIP64: u16 = 0x0001;
/// Info-ZIP's extended timestamp extra field.
const EXTRA_TIME: u16 = 0x5455;
/// Its size: a flags byte (bit 0: modification time present) and the time.
const EXTRA_TIME_LEN: u16 = 5;

/// The longest entry name the format holds (a 2-byte length).
pub(super) const MAX_NAME: usize = 0xFFFF;

/// What the headers of one entry say about it (the sizes and CRC come later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    /// The name in the archive: `/`-separated, a directory's ending in `/`.
    pub name: String,
    pub is_dir: bool,
    /// [`STORED`] or [`DEFLATED`].
    pub method: u16,
    /// Seconds since the Unix epoch.
    pub mtime_secs: u64,
    /// Whether this is a ZIP64 entry (see the module doc and [`needs_zip64`]).
    pub zip64: bool,
}

/// Whether an entry whose file is `len` bytes at open must be a ZIP64 entry: when its
/// uncompressed size, or its compressed size in the worst case, could reach 0xFFFFFFFF.
/// Deflate's worst case is its stored blocks (5 bytes per 64 KiB block, plus a few);
/// 1/256 of the size and 64 bytes is far more than that. The size read never exceeds
/// `len` (a file found longer is left out of the archive), so the decision made before
/// the data holds for what follows it.
pub(super) fn needs_zip64(len: u64, method: u16) -> bool {
    let worst = if method == DEFLATED {
        len.saturating_add(len / 256).saturating_add(64)
    } else {
        len
    };
    worst >= MAX32
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A 4-byte field: the value, or 0xFFFFFFFF when it goes into the ZIP64 extra field.
fn field32(v: u64) -> u32 {
    u32::try_from(v)
        .ok()
        .filter(|&v| v != u32::MAX)
        .unwrap_or(u32::MAX)
}

fn flags(entry: &Entry) -> u16 {
    if entry.is_dir {
        FLAG_UTF8
    } else {
        FLAG_UTF8 | FLAG_DESCRIPTOR
    }
}

/// The Unix time as the extended timestamp holds it (unsigned 32-bit, clamped).
fn unix_time32(secs: u64) -> u32 {
    u32::try_from(secs).unwrap_or(u32::MAX)
}

fn put_time_extra(out: &mut Vec<u8>, secs: u64) {
    put16(out, EXTRA_TIME);
    put16(out, EXTRA_TIME_LEN);
    out.push(1);
    put32(out, unix_time32(secs));
}

/// The length of a name, which callers keep to [`MAX_NAME`].
fn name_len(name: &str) -> u16 {
    u16::try_from(name.len()).expect("entry names are kept to MAX_NAME")
}

/// Appends the local file header of `entry` (a file's sizes and CRC are zero here:
/// bit 3, they follow in the data descriptor).
pub(super) fn local_header(out: &mut Vec<u8>, entry: &Entry) {
    let (time, date) = dos_datetime(entry.mtime_secs);
    let extra_len = 4 + EXTRA_TIME_LEN + if entry.zip64 { 4 + 16 } else { 0 };
    put32(out, LOCAL);
    put16(
        out,
        if entry.zip64 {
            VERSION_ZIP64
        } else {
            VERSION_20
        },
    );
    put16(out, flags(entry));
    put16(out, entry.method);
    put16(out, time);
    put16(out, date);
    put32(out, 0); // CRC-32: in the descriptor (a directory's is 0)
    let size = if entry.zip64 { u32::MAX } else { 0 };
    put32(out, size); // compressed size
    put32(out, size); // uncompressed size
    put16(out, name_len(&entry.name));
    put16(out, extra_len);
    out.extend_from_slice(entry.name.as_bytes());
    if entry.zip64 {
        put16(out, EXTRA_ZIP64);
        put16(out, 16);
        put64(out, 0); // uncompressed size: in the descriptor
        put64(out, 0); // compressed size: in the descriptor
    }
    put_time_extra(out, entry.mtime_secs);
}

/// Appends the data descriptor after a file's data: 8-byte sizes for a ZIP64 entry,
/// 4-byte ones otherwise (the caller never describes sizes a 4-byte field cannot hold
/// with them).
pub(super) fn descriptor(out: &mut Vec<u8>, crc: u32, compressed: u64, size: u64, zip64: bool) {
    put32(out, DESCRIPTOR);
    put32(out, crc);
    if zip64 {
        put64(out, compressed);
        put64(out, size);
    } else {
        put32(out, field32(compressed));
        put32(out, field32(size));
    }
}

/// The sizes and place of an entry, for its central directory header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Written {
    pub crc: u32,
    pub compressed: u64,
    pub size: u64,
    /// Where its local header starts.
    pub offset: u64,
}

/// The most bytes [`central_header`] appends beyond the name.
pub(super) const CENTRAL_FIXED: usize = 46 + 4 + 24 + 4 + EXTRA_TIME_LEN as usize;

/// Appends the central directory header of `entry`.
pub(super) fn central_header(out: &mut Vec<u8>, entry: &Entry, w: &Written) {
    let (time, date) = dos_datetime(entry.mtime_secs);
    let mut zip64 = [0u64; 3];
    let mut n64 = 0;
    for v in [w.size, w.compressed, w.offset] {
        if v >= MAX32 {
            zip64[n64] = v;
            n64 += 1;
        }
    }
    let needed = if n64 > 0 || entry.zip64 {
        VERSION_ZIP64
    } else {
        VERSION_20
    };
    let zip64_len = if n64 > 0 { 4 + 8 * n64 as u16 } else { 0 };
    let attrs: u32 = if entry.is_dir {
        (0o040_755 << 16) | 0x10
    } else {
        0o100_644 << 16
    };
    put32(out, CENTRAL);
    put16(out, MADE_BY_UNIX | needed);
    put16(out, needed);
    put16(out, flags(entry));
    put16(out, entry.method);
    put16(out, time);
    put16(out, date);
    put32(out, w.crc);
    put32(out, field32(w.compressed));
    put32(out, field32(w.size));
    put16(out, name_len(&entry.name));
    put16(out, zip64_len + 4 + EXTRA_TIME_LEN);
    put16(out, 0); // comment length
    put16(out, 0); // disk number start
    put16(out, 0); // internal attributes
    put32(out, attrs);
    put32(out, field32(w.offset));
    out.extend_from_slice(entry.name.as_bytes());
    if n64 > 0 {
        put16(out, EXTRA_ZIP64);
        put16(out, 8 * n64 as u16);
        for v in &zip64[..n64] {
            put64(out, *v);
        }
    }
    put_time_extra(out, entry.mtime_secs);
}

/// Appends the end records after a central directory of `entries` headers, `size` bytes
/// long, that starts at `offset`: the ZIP64 end record and its locator when a count or
/// place overflows the classic record, then the classic record with `comment`.
pub(super) fn end_records(out: &mut Vec<u8>, entries: u64, offset: u64, size: u64, comment: &str) {
    let end = offset + size;
    let zip64 = entries >= MAX16 || offset >= MAX32 || end >= MAX32 || size >= MAX32;
    if zip64 {
        put32(out, ZIP64_END);
        put64(out, 44); // the size of the rest of this record
        put16(out, MADE_BY_UNIX | VERSION_ZIP64);
        put16(out, VERSION_ZIP64);
        put32(out, 0); // this disk
        put32(out, 0); // the disk the central directory starts on
        put64(out, entries); // entries on this disk
        put64(out, entries); // entries in all
        put64(out, size);
        put64(out, offset);
        put32(out, ZIP64_LOCATOR);
        put32(out, 0); // the disk holding the ZIP64 end record
        put64(out, end); // where the ZIP64 end record starts
        put32(out, 1); // disks in all
    }
    let count = if zip64 && entries >= MAX16 {
        u16::MAX
    } else {
        u16::try_from(entries).unwrap_or(u16::MAX)
    };
    let comment = &comment.as_bytes()[..comment.len().min(0xFFFF)];
    put32(out, END);
    put16(out, 0); // this disk
    put16(out, 0); // the disk the central directory starts on
    put16(out, count);
    put16(out, count);
    put32(out, if zip64 { field32(size) } else { size as u32 });
    put32(
        out,
        if zip64 {
            field32(offset)
        } else {
            offset as u32
        },
    );
    put16(out, comment.len() as u16);
    out.extend_from_slice(comment);
}

/// MS-DOS time and date fields for a Unix time, in UTC: 2-second resolution, clamped to
/// the years the fields hold (1980 to 2107).
pub(super) fn dos_datetime(secs: u64) -> (u16, u16) {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    if year < 1980 {
        return (0, (1 << 5) | 1); // 1980-01-01 00:00:00
    }
    if year > 2107 {
        return ((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31);
    }
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    let time = (h << 11) | (m << 5) | (s / 2);
    let date = ((year as u64 - 1980) << 9) | ((month as u64) << 5) | day as u64;
    (time as u16, date as u16)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_times_are_utc_and_clamped() {
        // 2024-02-29 13:45:31 UTC (a leap day; odd seconds round down).
        let (t, d) = dos_datetime(1_709_214_331);
        assert_eq!((d >> 9, (d >> 5) & 15, d & 31), (2024 - 1980, 2, 29));
        assert_eq!((t >> 11, (t >> 5) & 63, (t & 31) * 2), (13, 45, 30));
        // 1999-12-31 23:59:58 UTC.
        let (t, d) = dos_datetime(946_684_798);
        assert_eq!((d >> 9, (d >> 5) & 15, d & 31), (19, 12, 31));
        assert_eq!((t >> 11, (t >> 5) & 63, (t & 31) * 2), (23, 59, 58));
        assert_eq!(dos_datetime(0), (0, 33));
        assert_eq!(dos_datetime(u64::MAX).1 >> 9, 127);
    }

    #[test]
    fn zip64_entries_are_decided_before_the_data() {
        assert!(!needs_zip64(MAX32 - 1, STORED));
        assert!(needs_zip64(MAX32, STORED));
        assert!(!needs_zip64(0xF000_0000, DEFLATED));
        assert!(needs_zip64(MAX32 - 1_000_000, DEFLATED));
        assert!(needs_zip64(u64::MAX, DEFLATED));
    }

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
    }

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
    }

    #[test]
    fn the_central_header_holds_zip64_fields_in_order_only_when_they_overflow() {
        let entry = Entry {
            name: "a.bin".into(),
            is_dir: false,
            method: STORED,
            mtime_secs: 1_700_000_000,
            zip64: false,
        };
        let small = Written {
            crc: 7,
            compressed: 10,
            size: 10,
            offset: MAX32 - 1,
        };
        let mut out = Vec::new();
        central_header(&mut out, &entry, &small);
        assert_eq!(out.len(), 46 + 5 + 9);
        assert_eq!(u16_at(&out, 6), 20);
        assert_eq!(u32_at(&out, 42), (MAX32 - 1) as u32);

        // Only the offset overflows: one 8-byte field.
        let far = Written {
            offset: MAX32,
            ..small
        };
        out.clear();
        central_header(&mut out, &entry, &far);
        assert_eq!(u16_at(&out, 6), 45);
        assert_eq!(u32_at(&out, 20), 10);
        assert_eq!(u32_at(&out, 42), u32::MAX);
        assert_eq!((u16_at(&out, 51), u16_at(&out, 53)), (1, 8));
        assert_eq!(u64_at(&out, 55), MAX32);

        // The uncompressed size and the offset overflow: in that order, no compressed.
        let big = Written {
            crc: 7,
            compressed: 5_000_000,
            size: 5 << 30,
            offset: 6 << 30,
        };
        out.clear();
        central_header(&mut out, &entry, &big);
        assert_eq!(u32_at(&out, 20), 5_000_000);
        assert_eq!(u32_at(&out, 24), u32::MAX);
        assert_eq!((u16_at(&out, 51), u16_at(&out, 53)), (1, 16));
        assert_eq!((u64_at(&out, 55), u64_at(&out, 63)), (5 << 30, 6 << 30));
    }

    #[test]
    fn the_end_records_go_zip64_past_65534_entries_or_4_gib() {
        let mut out = Vec::new();
        end_records(&mut out, 65_534, 1000, 500, "");
        assert_eq!(out.len(), 22);
        assert_eq!(u16_at(&out, 10), 65_534);

        for (entries, offset, size) in [
            (65_535, 1000, 500),
            (70_000, 1000, 500),
            (3, MAX32, 500),
            (3, MAX32 - 10, 500),
        ] {
            out.clear();
            end_records(&mut out, entries, offset, size, "");
            assert_eq!(out.len(), 56 + 20 + 22, "{entries} {offset}");
            assert_eq!(u32_at(&out, 0), ZIP64_END);
            assert_eq!(u64_at(&out, 32), entries);
            assert_eq!(u64_at(&out, 40), size);
            assert_eq!(u64_at(&out, 48), offset);
            assert_eq!(u32_at(&out, 56), ZIP64_LOCATOR);
            assert_eq!(u64_at(&out, 64), offset + size);
            let end = &out[76..];
            assert_eq!(u32_at(end, 0), END);
            let count = if entries >= 0xFFFF {
                0xFFFF
            } else {
                entries as u16
            };
            assert_eq!(u16_at(end, 10), count);
            assert_eq!(u32_at(end, 16), field32(offset));
        }
    }
}
