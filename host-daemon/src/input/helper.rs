//! Viewers' input injected by a process of the session's own account, so that root is never
//! a Wayland client of the session's compositor: what the compositor sends is parsed by a
//! process with nothing more than the session already has.
//!
//! `host-daemon input-inject` (hidden; the session starts it as its user, in its cgroup)
//! connects to the compositor's control socket with an [`Injector`] and says it is ready.
//! The daemon, which keeps everything else of the input (grants, seals, gates, queues, pads
//! through uinput, the figures), sends it commands through a pipe: a viewer joins, is
//! forgotten, or has events injected, the events encoded as input messages (which the helper
//! decodes, validating them again). Each injection is answered with what it did; a helper
//! that fails says why before it ends. Every wait on it has a deadline: a helper that stops
//! reading or answering ends the session's input (the stream goes on, view-only), as a hung
//! compositor would.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use lantern_proto::input::{Event, Message};

use super::inject::{Injected, Injector};
use crate::Error;
use crate::process::{read_by, readable, write_by};

/// Said once the injector is connected.
const READY: u8 = b'K';
/// Commands: a viewer joins, is forgotten, has events injected.
const JOIN: u8 = b'J';
const FORGET: u8 = b'F';
const INJECT: u8 = b'I';
/// Answers: what an injection did, or why the helper ends.
const DONE: u8 = b'D';
const FAILED: u8 = b'E';
/// A command's head: what, the viewer, the length of the message that follows.
const HEAD: usize = 1 + 8 + 2;
/// The longest a helper may take to start, answer an injection, or read a command. An
/// injection waits for the compositor to read (up to 5 s), so this is longer.
const ANSWER_WAIT: Duration = Duration::from_secs(8);
/// The longest failure a helper may tell.
const MAX_WHY: usize = 200;

/// The helper: inject into the compositor on `socket` what the daemon sends on stdin, and
/// answer on stdout, until stdin ends.
pub fn serve(socket: &Path) -> Result<(), Error> {
    let mut stdin = std::fs::File::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io("stdin", e))?,
    );
    let mut stdout = std::fs::File::from(
        std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io("stdout", e))?,
    );
    let result = inject_commands(socket, &mut stdin, &mut stdout);
    if let Err(err) = &result {
        let why = lantern_proto::error_line(err);
        let why = &why.as_bytes()[..why.len().min(MAX_WHY)];
        let mut said = vec![FAILED, why.len() as u8];
        said.extend_from_slice(why);
        let _ = stdout.write_all(&said);
    }
    result
}

fn inject_commands(
    socket: &Path,
    stdin: &mut std::fs::File,
    stdout: &mut std::fs::File,
) -> Result<(), Error> {
    let mut injector = Injector::open(socket)?;
    let told = |e| Error::io("answering the daemon", e);
    stdout.write_all(&[READY]).map_err(told)?;
    let mut head = [0u8; HEAD];
    let mut message = Vec::new();
    loop {
        // Between commands, whatever the compositor said is read (a protocol error ends us).
        if !readable(stdin.as_fd(), Duration::from_millis(100))
            .map_err(|e| Error::io("waiting for the daemon", e))?
        {
            injector.check(Duration::ZERO)?;
            continue;
        }
        match stdin.read(&mut head[..1]) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading the daemon's commands", e)),
        }
        let deadline = Instant::now() + ANSWER_WAIT;
        read_by(stdin, &mut head[1..], deadline)
            .map_err(|e| Error::io("reading the daemon's commands", e))?;
        let viewer = u64::from_le_bytes(head[1..9].try_into().unwrap_or_default());
        message.resize(u16::from_le_bytes([head[9], head[10]]) as usize, 0);
        read_by(stdin, &mut message, deadline)
            .map_err(|e| Error::io("reading the daemon's commands", e))?;
        match head[0] {
            JOIN => injector.join(viewer)?,
            FORGET => injector.forget(viewer)?,
            INJECT => {
                let events = Message::decode(&message)
                    .map_err(|e| Error::Child(format!("the daemon sent no input message: {e}")))?
                    .events;
                let done = injector.inject(viewer, &events)?;
                let mut answer = vec![DONE];
                for figure in [done.events, done.untypable, done.extra_touches] {
                    answer.extend_from_slice(&(figure.min(u32::MAX.into()) as u32).to_le_bytes());
                }
                stdout.write_all(&answer).map_err(told)?;
            }
            other => return Err(Error::Child(format!("unknown command {other:#04x}"))),
        }
    }
}

/// The daemon's side: the helper's pipes, used from the injecting thread.
pub struct Piped {
    to: std::io::PipeWriter,
    from: std::io::PipeReader,
}

impl Piped {
    /// Wait (up to `timeout`) for the helper on the other end to say it is connected; its
    /// own words when it fails first.
    pub fn open(
        to: std::io::PipeWriter,
        from: std::io::PipeReader,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let mut piped = Self { to, from };
        let mut said = [0u8];
        piped.read(&mut said, Instant::now() + timeout)?;
        match said[0] {
            READY => Ok(piped),
            other => Err(piped.failure(other, Instant::now() + ANSWER_WAIT)),
        }
    }

    pub fn join(&mut self, viewer: u64) -> Result<(), Error> {
        self.send(JOIN, viewer, &[])
    }

    pub fn forget(&mut self, viewer: u64) -> Result<(), Error> {
        self.send(FORGET, viewer, &[])
    }

    /// Inject `events` from `viewer`, as many messages as they take, each answered.
    pub fn inject(&mut self, viewer: u64, events: &[Event]) -> Result<Injected, Error> {
        let mut done = Injected::default();
        for message in messages(events)? {
            self.send(INJECT, viewer, &message)?;
            let deadline = Instant::now() + ANSWER_WAIT;
            let mut answer = [0u8; 13];
            self.read(&mut answer[..1], deadline)?;
            if answer[0] != DONE {
                return Err(self.failure(answer[0], deadline));
            }
            self.read(&mut answer[1..], deadline)?;
            let figure = |i: usize| {
                u64::from(u32::from_le_bytes(
                    answer[1 + i * 4..5 + i * 4].try_into().unwrap_or_default(),
                ))
            };
            done.events += figure(0);
            done.untypable += figure(1);
            done.extra_touches += figure(2);
        }
        Ok(done)
    }

    /// Whether the helper is still there (it says nothing unasked, unless it failed).
    pub fn check(&mut self) -> Result<(), Error> {
        let said = readable(self.from.as_fd(), Duration::ZERO)
            .map_err(|e| Error::io("the session's input injection", e))?;
        if !said {
            return Ok(());
        }
        let mut kind = [0u8];
        let deadline = Instant::now() + ANSWER_WAIT;
        self.read(&mut kind, deadline)?;
        Err(self.failure(kind[0], deadline))
    }

    fn send(&mut self, what: u8, viewer: u64, message: &[u8]) -> Result<(), Error> {
        let mut command = Vec::with_capacity(HEAD + message.len());
        command.push(what);
        command.extend_from_slice(&viewer.to_le_bytes());
        command.extend_from_slice(&(message.len() as u16).to_le_bytes());
        command.extend_from_slice(message);
        write_by(&mut self.to, &command, Instant::now() + ANSWER_WAIT)
            .map_err(|e| Error::io("sending input to the session's input injection", e))
    }

    fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<(), Error> {
        read_by(&mut self.from, buf, deadline).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                Error::Child("the session's input injection ended".into())
            }
            _ => Error::io("the session's input injection", e),
        })
    }

    /// What the helper said instead of an answer: its failure in its own words (printable
    /// characters only), or that it broke the protocol.
    fn failure(&mut self, kind: u8, deadline: Instant) -> Error {
        let mut len = [0u8];
        if kind != FAILED || self.read(&mut len, deadline).is_err() {
            return Error::Child("the session's input injection broke its protocol".into());
        }
        let mut why = vec![0u8; (len[0] as usize).min(MAX_WHY)];
        if let Err(err) = self.read(&mut why, deadline) {
            return err;
        }
        let why: String = String::from_utf8_lossy(&why)
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        Error::Child(format!("the session's input injection failed: {why}"))
    }
}

/// `events` as input messages, as few as hold them.
fn messages(events: &[Event]) -> Result<Vec<Vec<u8>>, Error> {
    let encode = |events: &[Event]| {
        Message {
            events: events.to_vec(),
            ..Message::default()
        }
        .encode()
    };
    let mut messages = Vec::new();
    let mut start = 0;
    while start < events.len() {
        let mut end = start + 1;
        let mut bytes = encode(&events[start..end])
            .map_err(|e| Error::Child(format!("an event the injection cannot take: {e}")))?;
        while end < events.len()
            && let Ok(more) = encode(&events[start..=end])
        {
            bytes = more;
            end += 1;
        }
        messages.push(bytes);
        start = end;
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// However many events, they go in messages the helper can decode, in order, none lost.
    #[test]
    fn any_batch_of_events_goes_in_whole_messages() {
        let mut events = Vec::new();
        for i in 0..300u16 {
            events.push(Event::Key {
                usage: 4 + i % 26,
                down: i % 2 == 0,
            });
            if i % 50 == 0 {
                events.push(Event::Text("x".repeat(200)));
            }
        }
        let encoded = messages(&events).unwrap();
        assert!(encoded.len() > 1);
        let decoded: Vec<Event> = encoded
            .iter()
            .flat_map(|m| Message::decode(m).unwrap().events)
            .collect();
        assert_eq!(decoded, events);
        assert!(messages(&[]).unwrap().is_empty());
    }

    /// The daemon's side against a helper that answers, fails in its own words, goes silent,
    /// or ends.
    #[test]
    fn a_helper_is_read_with_deadlines_and_its_failure_in_its_words() {
        let (mut commands, to) = std::io::pipe().unwrap();
        let (from, mut answers) = std::io::pipe().unwrap();
        answers.write_all(&[READY]).unwrap();
        let mut piped = Piped::open(to, from, Duration::from_secs(5)).unwrap();
        piped.join(7).unwrap();
        let mut head = [0u8; HEAD];
        commands.read_exact(&mut head).unwrap();
        assert_eq!((head[0], head[1]), (JOIN, 7));
        // An answer for one injection: 2 events, 1 untypable.
        let mut answer = vec![DONE];
        for figure in [2u32, 1, 0] {
            answer.extend_from_slice(&figure.to_le_bytes());
        }
        answers.write_all(&answer).unwrap();
        let keys = [
            Event::Key {
                usage: 4,
                down: true,
            },
            Event::Key {
                usage: 4,
                down: false,
            },
        ];
        let done = piped.inject(7, &keys).unwrap();
        assert_eq!((done.events, done.untypable), (2, 1));
        piped.check().unwrap();
        // It fails, in words with a terminal's escape in them.
        answers.write_all(&[FAILED, 10]).unwrap();
        answers.write_all(b"no\x1b[2Jseat").unwrap();
        let err = piped.check().unwrap_err().to_string();
        assert_eq!(err, "the session's input injection failed: no[2Jseat");
        // One that never started.
        let (_commands, to) = std::io::pipe().unwrap();
        let (from, answers) = std::io::pipe().unwrap();
        drop(answers);
        let err = Piped::open(to, from, Duration::from_secs(5)).err().unwrap();
        assert!(err.to_string().contains("ended"), "{err}");
    }

    /// Whatever a helper answers (seeded noise), an injection ends in its figures or an
    /// error, never a panic, and a failure's words carry no control characters.
    #[test]
    fn noise_from_a_helper_is_survived() {
        let mut rng = fastrand::Rng::with_seed(7);
        let key = [Event::Key {
            usage: 4,
            down: true,
        }];
        let (mut answered, mut refused) = (0, 0);
        for _ in 0..200 {
            let (_commands, to) = std::io::pipe().unwrap();
            let (from, mut answers) = std::io::pipe().unwrap();
            let mut noise = vec![READY];
            noise.push([DONE, FAILED, 0][rng.usize(..3)]);
            noise.extend((0..rng.usize(..40)).map(|_| rng.u8(..)));
            answers.write_all(&noise).unwrap();
            drop(answers);
            let mut piped = Piped::open(to, from, Duration::from_secs(5)).unwrap();
            // The figures of an answer are the helper's say (its session's own counts).
            match piped.inject(1, &key) {
                Ok(_) => answered += 1,
                Err(err) => {
                    assert!(!err.to_string().chars().any(char::is_control), "{err}");
                    refused += 1;
                }
            }
        }
        // The noise reached both ends: answers taken, and failures and broken ones refused.
        assert!(answered > 0 && refused > 0, "{answered} {refused}");
    }
}
