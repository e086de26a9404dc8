//! What a stream sends: the core's answer as HEADERS and DATA within the flow-control
//! windows, and how a stream ends (settled, failed, reset, forgotten).

use super::*;

impl H2Server {
    /// Bytes of the core's answer: the head (then a HEADERS frame), then body.
    pub(super) fn answer_bytes(&mut self, id: u32, bytes: &[u8]) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        let Reply::Head(buf) = &mut task.reply else {
            return self.body_bytes(id, bytes, false, true);
        };
        buf.extend_from_slice(bytes);
        let (head, len) = match answer::parse(buf, task.head_only) {
            Ok(None) => return,
            Ok(Some(parsed)) => parsed,
            Err(why) => {
                error!("{} stream {id}: {why}", self.peer);
                return self.fail(id);
            }
        };
        let rest = buf.split_off(len);
        let end = head.body == Framing::None;
        task.reply = match head.body {
            Framing::None => Reply::Ended,
            Framing::Length(n) => Reply::Body {
                left: Some(n),
                dechunk: None,
            },
            Framing::Chunked => Reply::Body {
                left: None,
                dechunk: Some(ChunkedDecoder::default()),
            },
            Framing::UntilClose => {
                error!("{} stream {id}: an answer without framing", self.peer);
                return self.fail(id);
            }
        };
        let fields: Vec<(&str, &str)> = (head.fields.iter())
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if self
            .conn
            .send_headers(id, head.status, &fields, end)
            .is_err()
        {
            return self.drop_task(id);
        }
        if !rest.is_empty() {
            self.body_bytes(id, &rest, false, true);
        }
    }

    /// Body bytes of a stream's answer: from the core (`Send`; de-chunked if chunked) or
    /// from the session (a file; never chunked).
    pub(super) fn body_bytes(&mut self, id: u32, bytes: &[u8], last: bool, from_core: bool) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        let Reply::Body { left, dechunk } = &mut task.reply else {
            return;
        };
        let mut end = last;
        let mut data = match (dechunk, from_core) {
            (Some(d), true) => {
                let mut plain = Vec::with_capacity(bytes.len());
                let decoded = d.decode(bytes, |b| {
                    plain.extend_from_slice(b);
                    Ok(())
                });
                if decoded.is_err() {
                    error!("{} stream {id}: a malformed chunked answer", self.peer);
                    return self.fail(id);
                }
                end |= d.is_done();
                plain
            }
            _ => bytes.to_vec(),
        };
        if let Some(left) = left {
            let take = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
            data.truncate(take);
            *left -= take as u64;
            end |= *left == 0;
        }
        if end {
            task.reply = Reply::Ended;
        }
        task.sent += data.len() as u64;
        if !task.pending.is_empty() {
            task.pending.extend_from_slice(&data);
            task.pending_last |= end;
            return;
        }
        if data.is_empty() && !end {
            return;
        }
        match self.conn.send_data(id, &data, end, self.now.mono_ms) {
            Ok(n) => {
                if let Some(task) = self.tasks.get_mut(&id) {
                    if n < data.len() {
                        task.pending = data.split_off(n);
                        task.pending_last = end;
                    }
                }
                self.settle(id, false);
            }
            Err(_) => self.drop_task(id),
        }
    }

    /// A window opened: the bytes kept back go.
    pub(super) fn flush(&mut self, id: u32) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        if task.pending.is_empty() {
            return;
        }
        let end = task.pending_last;
        match self
            .conn
            .send_data(id, &task.pending, end, self.now.mono_ms)
        {
            Ok(n) => {
                task.pending.drain(..n);
                if task.pending.is_empty() {
                    task.pending_last = false;
                }
                self.settle(id, false);
            }
            Err(_) => self.drop_task(id),
        }
    }

    /// After a stream's answer moved on: once all of it is with the connection, the core
    /// hears `Written` and the stream is done; a core that closed before is reset.
    pub(super) fn settle(&mut self, id: u32, closed: bool) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        if task.discarding.is_some() {
            return;
        }
        let complete = matches!(task.reply, Reply::Ended) && task.pending.is_empty();
        if complete {
            task.core.handle(self.now, Input::Written);
            // Whatever follows (`Close`) ends nothing more: the stream is done.
            while task.core.poll().is_some() {}
            collect(&mut self.records, task);
            let small = task.body_left.is_none_or(|left| left <= DISCARD_MAX);
            if small && self.conn.receiving(id) {
                // `fed` counts what is dropped from now on.
                task.fed = 0;
                task.discarding = Some(self.now.mono_ms);
                return self.forget(id);
            }
            self.finish(id, ErrorCode::NO_ERROR);
        } else if closed {
            // The core gave up before its answer was out (the client went, a read failed).
            self.finish(id, ErrorCode::INTERNAL_ERROR);
        }
    }

    /// The answer cannot go on: the core hears `WriteFailed` (its log line says so), the
    /// stream is reset.
    pub(super) fn fail(&mut self, id: u32) {
        if let Some(task) = self.tasks.get_mut(&id) {
            task.core.handle(self.now, Input::WriteFailed);
        }
        self.finish(id, ErrorCode::INTERNAL_ERROR);
    }

    /// The stream is done on our side: reset it if it is still open (the client may stop
    /// sending, §8.1), forget its task, tell the session.
    pub(super) fn finish(&mut self, id: u32, code: ErrorCode) {
        let Some(mut task) = self.tasks.remove(&id) else {
            return;
        };
        collect(&mut self.records, &mut task);
        let _ = self.conn.reset(id, code);
        if task.discarding.is_none() {
            self.forget(id);
        }
    }

    /// The connection dropped the stream (reset, malformed, closed): forget its task.
    pub(super) fn drop_task(&mut self, id: u32) {
        let Some(mut task) = self.tasks.remove(&id) else {
            return;
        };
        if task.discarding.is_some() {
            return;
        }
        // An answer cut short is logged as such.
        if !matches!(task.reply, Reply::Head(_)) {
            task.core.handle(self.now, Input::WriteFailed);
        }
        collect(&mut self.records, &mut task);
        self.forget(id);
    }

    pub(super) fn forget(&mut self, id: u32) {
        self.actions.retain(|a| a.stream_id() != id);
        self.actions.push_back(H2Action::Done(id));
    }
}
