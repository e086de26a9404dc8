//! SETTINGS parameters (RFC 9113 §6.5.2): what each identifier means, the range each
//! value must be in, and the validated view of a SETTINGS payload that the frame decoder
//! hands out.
//!
//! The frame decoder checks every parameter of a SETTINGS frame with [`Setting::parse`]
//! before it returns the frame, so [`SettingsParams::iter`] only ever yields valid
//! values; identifiers we do not know come out as [`Setting::Unknown`], to be ignored.

use super::frame::{ErrorCode, FrameError, MAX_FRAME_SIZE_LIMIT, MAX_WINDOW_SIZE};

/// The identifiers of RFC 9113 §6.5.2.
pub mod id {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// One SETTINGS parameter, with its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    HeaderTableSize(u32),
    EnablePush(bool),
    MaxConcurrentStreams(u32),
    /// At most 2^31 - 1.
    InitialWindowSize(u32),
    /// 2^14 ..= 2^24 - 1.
    MaxFrameSize(u32),
    MaxHeaderListSize(u32),
    /// A parameter this implementation does not know: to be ignored.
    Unknown {
        id: u16,
        value: u32,
    },
}

impl Setting {
    /// Validates one parameter as read from the wire.
    pub fn parse(id: u16, value: u32) -> Result<Setting, FrameError> {
        Ok(match id {
            id::HEADER_TABLE_SIZE => Setting::HeaderTableSize(value),
            id::ENABLE_PUSH => match value {
                0 => Setting::EnablePush(false),
                1 => Setting::EnablePush(true),
                _ => {
                    return Err(FrameError::connection(
                        ErrorCode::PROTOCOL_ERROR,
                        "SETTINGS_ENABLE_PUSH not 0 or 1",
                    ))
                }
            },
            id::MAX_CONCURRENT_STREAMS => Setting::MaxConcurrentStreams(value),
            id::INITIAL_WINDOW_SIZE if value > MAX_WINDOW_SIZE => {
                return Err(FrameError::connection(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
                ))
            }
            id::INITIAL_WINDOW_SIZE => Setting::InitialWindowSize(value),
            id::MAX_FRAME_SIZE if !(1 << 14..=MAX_FRAME_SIZE_LIMIT).contains(&value) => {
                return Err(FrameError::connection(
                    ErrorCode::PROTOCOL_ERROR,
                    "SETTINGS_MAX_FRAME_SIZE out of range",
                ))
            }
            id::MAX_FRAME_SIZE => Setting::MaxFrameSize(value),
            id::MAX_HEADER_LIST_SIZE => Setting::MaxHeaderListSize(value),
            id => Setting::Unknown { id, value },
        })
    }

    /// The identifier on the wire.
    pub fn id(&self) -> u16 {
        match *self {
            Setting::HeaderTableSize(_) => id::HEADER_TABLE_SIZE,
            Setting::EnablePush(_) => id::ENABLE_PUSH,
            Setting::MaxConcurrentStreams(_) => id::MAX_CONCURRENT_STREAMS,
            Setting::InitialWindowSize(_) => id::INITIAL_WINDOW_SIZE,
            Setting::MaxFrameSize(_) => id::MAX_FRAME_SIZE,
            Setting::MaxHeaderListSize(_) => id::MAX_HEADER_LIST_SIZE,
            Setting::Unknown { id, .. } => id,
        }
    }

    /// The value on the wire.
    pub fn value(&self) -> u32 {
        match *self {
            Setting::EnablePush(on) => u32::from(on),
            Setting::HeaderTableSize(v)
            | Setting::MaxConcurrentStreams(v)
            | Setting::InitialWindowSize(v)
            | Setting::MaxFrameSize(v)
            | Setting::MaxHeaderListSize(v)
            | Setting::Unknown { value: v, .. } => v,
        }
    }

    /// Appends the 6-byte wire form.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id().to_be_bytes());
        out.extend_from_slice(&self.value().to_be_bytes());
    }
}

/// The parameters of a SETTINGS frame, as received: a payload of 6-byte entries that
/// the decoder has already validated.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct SettingsParams<'a>(&'a [u8]);

impl<'a> SettingsParams<'a> {
    /// Validates a SETTINGS payload (a multiple of 6 bytes, each parameter in range).
    pub fn parse(payload: &'a [u8]) -> Result<Self, FrameError> {
        if !payload.len().is_multiple_of(6) {
            return Err(FrameError::connection(
                ErrorCode::FRAME_SIZE_ERROR,
                "SETTINGS length not a multiple of 6",
            ));
        }
        for (id, value) in Self::raw(payload) {
            Setting::parse(id, value)?;
        }
        Ok(SettingsParams(payload))
    }

    fn raw(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
        payload.chunks_exact(6).map(|c| {
            let id = u16::from_be_bytes([c[0], c[1]]);
            (id, u32::from_be_bytes([c[2], c[3], c[4], c[5]]))
        })
    }

    /// The parameters in the order they were sent (a later one overrides an earlier
    /// one with the same identifier).
    pub fn iter(&self) -> impl Iterator<Item = Setting> + 'a {
        Self::raw(self.0).filter_map(|(id, value)| Setting::parse(id, value).ok())
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SettingsParams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(id: u16, value: u32) -> ErrorCode {
        match Setting::parse(id, value) {
            Err(e) => {
                assert!(e.is_connection_error());
                e.code()
            }
            Ok(s) => panic!("accepted {s:?}"),
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn each_parameter_is_validated() {
        assert_eq!(
            Setting::parse(1, u32::MAX),
            Ok(Setting::HeaderTableSize(u32::MAX))
        );
        assert_eq!(Setting::parse(2, 0), Ok(Setting::EnablePush(false)));
        assert_eq!(Setting::parse(2, 1), Ok(Setting::EnablePush(true)));
        assert_eq!(err(2, 2), ErrorCode::PROTOCOL_ERROR);
        assert_eq!(err(2, u32::MAX), ErrorCode::PROTOCOL_ERROR);
        assert_eq!(Setting::parse(3, 0), Ok(Setting::MaxConcurrentStreams(0)));
        assert_eq!(
            Setting::parse(4, (1 << 31) - 1),
            Ok(Setting::InitialWindowSize((1 << 31) - 1))
        );
        assert_eq!(err(4, 1 << 31), ErrorCode::FLOW_CONTROL_ERROR);
        assert_eq!(err(4, u32::MAX), ErrorCode::FLOW_CONTROL_ERROR);
        assert_eq!(
            Setting::parse(5, 1 << 14),
            Ok(Setting::MaxFrameSize(1 << 14))
        );
        assert_eq!(
            Setting::parse(5, (1 << 24) - 1),
            Ok(Setting::MaxFrameSize((1 << 24) - 1))
        );
        assert_eq!(err(5, (1 << 14) - 1), ErrorCode::PROTOCOL_ERROR);
        assert_eq!(err(5, 1 << 24), ErrorCode::PROTOCOL_ERROR);
        assert_eq!(err(5, 0), ErrorCode::PROTOCOL_ERROR);
        assert_eq!(Setting::parse(6, 0), Ok(Setting::MaxHeaderListSize(0)));
        assert_eq!(
            Setting::parse(0, 7),
            Ok(Setting::Unknown { id: 0, value: 7 })
        );
        assert_eq!(
            Setting::parse(0x99, 7),
            Ok(Setting::Unknown { id: 0x99, value: 7 })
        );
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn wire_form_round_trips() {
        let all = [
            Setting::HeaderTableSize(4096),
            Setting::EnablePush(false),
            Setting::MaxConcurrentStreams(100),
            Setting::InitialWindowSize(65_535),
            Setting::MaxFrameSize(16_384),
            Setting::MaxHeaderListSize(8192),
            Setting::Unknown { id: 0x8, value: 1 },
        ];
        let mut bytes = Vec::new();
        for s in &all {
            s.write(&mut bytes);
        }
        assert_eq!(bytes.len(), 42);
        assert_eq!(bytes[..6], [0, 1, 0, 0, 0x10, 0]);
        let params = SettingsParams::parse(&bytes).map_err(|e| e.code());
        assert_eq!(
            params.map(|p| p.iter().collect::<Vec<_>>()),
            Ok(all.to_vec())
        );
        let odd = SettingsParams::parse(&bytes[..7]).map_err(|e| e.code());
        assert_eq!(odd, Err(ErrorCode::FRAME_SIZE_ERROR));
    }
}
