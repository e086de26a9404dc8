//! §5.2 and §6.9: flow control, both ways.

use super::*;
use crate::h2::frame::{flags, kind};

fn settings(c: &mut Client, s: &[Setting]) {
    let mut b = Vec::new();
    frame::write_settings(&mut b, s);
    c.send(&b);
}

fn window_update(c: &mut Client, id: u32, increment: u32) {
    c.frame(Frame::WindowUpdate {
        stream_id: id,
        increment,
    });
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s6_9_receiving_beyond_the_windows_is_a_flow_control_error() {
    // The stream window: a stream error; the connection window still counts it.
    let mut c = Client::new(H2Settings {
        initial_window_size: 100,
        ..H2Settings::default()
    });
    c.post(1, "/");
    c.data(1, &[0; 100], false);
    c.expect_no_error();
    c.data(1, &[0; 1], false);
    c.expect_stream_error(1, E::FLOW_CONTROL_ERROR);
    // The connection window: a connection error.
    let mut c = Client::new(H2Settings {
        initial_window_size: 1 << 20,
        connection_window_size: 65_535,
        ..H2Settings::default()
    });
    c.post(1, "/");
    for _ in 0..3 {
        c.data(1, &[0; 16_384], false);
    }
    c.data(1, &[0; 16_383], false);
    c.expect_no_error();
    c.data(1, &[0; 1], false);
    c.expect_conn_error(E::FLOW_CONTROL_ERROR);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s6_9_window_updates_follow_what_the_caller_releases() {
    let s = H2Settings {
        initial_window_size: 1000,
        connection_window_size: 65_535,
        ..H2Settings::default()
    };
    let mut c = Client::new(s);
    c.post(1, "/up");
    c.events();
    c.data(1, &[1; 1000], false);
    assert_eq!(c.events().len(), 1);
    // Not released: no WINDOW_UPDATE, and the client may send nothing more.
    assert_eq!(c.read(), vec![]);
    c.conn.release(1, 400);
    assert_eq!(c.read(), vec![]);
    c.conn.release(1, 100);
    assert_eq!(
        c.read(),
        vec![Out::WindowUpdate {
            id: 1,
            increment: 500
        }]
    );
    c.data(1, &[1; 500], false);
    c.expect_no_error();
    c.events();
    // Padding is given back at once, without the caller; an empty DATA is no event.
    c.conn.release(1, 1000);
    c.read();
    let pad = [&[255u8][..], &[0; 255]].concat();
    c.raw(kind::DATA, flags::PADDED, 1, &pad);
    c.raw(kind::DATA, flags::PADDED, 1, &pad);
    assert_eq!(c.events(), vec![]);
    assert_eq!(
        c.read(),
        vec![Out::WindowUpdate {
            id: 1,
            increment: 512
        }]
    );
    // The connection window: announced by halves.
    let mut c = Client::new(H2Settings {
        initial_window_size: 65_535,
        connection_window_size: 65_535,
        ..H2Settings::default()
    });
    c.post(1, "/up");
    c.data(1, &[1; 16_384], false);
    c.data(1, &[1; 16_384], false);
    c.data(1, &[1; 7_232], false);
    c.conn.release(1, 40_000);
    let out = c.read();
    assert!(
        out.contains(&Out::WindowUpdate {
            id: 0,
            increment: 40_000
        }),
        "{out:?}"
    );
    assert!(
        out.contains(&Out::WindowUpdate {
            id: 1,
            increment: 40_000
        }),
        "{out:?}"
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s6_9_1_sending_stays_within_both_windows() {
    let mut c = Client::default();
    settings(&mut c, &[Setting::InitialWindowSize(1)]);
    c.open_response(1);
    assert_eq!(c.conn.writable(1), 1);
    assert_eq!(c.conn.send_data(1, b"hello", true, 0), Ok(1));
    assert_eq!(
        c.read(),
        vec![Out::Data {
            id: 1,
            data: b"h".to_vec(),
            end_stream: false
        }]
    );
    assert_eq!(c.conn.send_data(1, b"ello", true, 0), Ok(0));
    window_update(&mut c, 1, 10);
    assert_eq!(c.events(), vec![Event::WindowOpen { stream_id: 1 }]);
    assert_eq!(c.conn.send_data(1, b"ello", true, 0), Ok(4));
    let out = c.read();
    assert_eq!(
        out,
        vec![Out::Data {
            id: 1,
            data: b"ello".to_vec(),
            end_stream: true
        }]
    );
    // The connection window (65,535) binds across streams.
    let mut c = Client::default();
    settings(&mut c, &[Setting::InitialWindowSize(1 << 20)]);
    c.open_response(1);
    c.open_response(3);
    assert_eq!(c.conn.send_data(1, &[0; 60_000], false, 0), Ok(60_000));
    c.read();
    assert_eq!(c.conn.send_data(3, &[0; 10_000], false, 0), Ok(5_535));
    c.read();
    window_update(&mut c, 0, 1000);
    assert_eq!(c.events(), vec![Event::WindowOpen { stream_id: 3 }]);
    // Window overflow from WINDOW_UPDATE: connection and stream.
    let mut c = Client::default();
    window_update(&mut c, 0, MAX_WINDOW_SIZE);
    c.expect_conn_error(E::FLOW_CONTROL_ERROR);
    let mut c = Client::default();
    c.open_response(1);
    window_update(&mut c, 1, MAX_WINDOW_SIZE - 65_535);
    c.expect_no_error();
    window_update(&mut c, 1, 1);
    c.expect_stream_error(1, E::FLOW_CONTROL_ERROR);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s6_9_2_initial_window_changes_apply_to_open_streams() {
    let mut c = Client::default();
    c.open_response(1);
    assert_eq!(c.conn.send_data(1, &[0; 1000], false, 0), Ok(1000));
    c.read();
    // 65,535 - 1000 sent; the new initial size 500 leaves -500: tracked, not clamped.
    settings(&mut c, &[Setting::InitialWindowSize(500)]);
    c.read();
    assert_eq!(c.conn.writable(1), 0);
    window_update(&mut c, 1, 600);
    assert_eq!(c.conn.writable(1), 100);
    // Up again: +64,535 on every open stream.
    settings(&mut c, &[Setting::InitialWindowSize(65_035)]);
    assert_eq!(c.conn.streams[&1].send_window, 100 + 64_535);
    // (the connection window, 65,535 - 1000, binds now)
    assert_eq!(c.conn.writable(1), 64_535);
    // A change that pushes a stream window past 2^31-1.
    window_update(&mut c, 1, 1 << 30);
    c.read();
    settings(&mut c, &[Setting::InitialWindowSize(MAX_WINDOW_SIZE)]);
    c.expect_conn_error(E::FLOW_CONTROL_ERROR);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn s6_9_2_a_smaller_window_of_ours_applies_once_acked() {
    let s = H2Settings {
        initial_window_size: 1000,
        connection_window_size: 65_535,
        ..H2Settings::default()
    };
    let mut c = Client::bare(s);
    c.send(&preface());
    // Before the ACK the client may count on 65,535.
    c.post(1, "/");
    c.data(1, &[0; 16_000], false);
    c.expect_no_error();
    c.raw(kind::SETTINGS, flags::ACK, 0, &[]);
    // After it, the window is 1000 - 16,000: nothing more is allowed...
    c.data(1, &[0; 1], false);
    c.expect_stream_error(1, E::FLOW_CONTROL_ERROR);
    // ... and new streams start at 1000.
    c.post(3, "/");
    c.data(3, &[0; 1000], false);
    c.expect_no_error();
    c.data(3, &[0; 1], false);
    c.expect_stream_error(3, E::FLOW_CONTROL_ERROR);
}
