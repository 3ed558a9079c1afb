//! The session's sound: a private PipeWire (with WirePlumber and the session bus it needs)
//! running as the session's account in its runtime directory, whose one sink is a null sink.
//! That sink is the app's default output, and its monitor is what the session streams: the
//! app's sound and nothing else on the host, whoever else plays what.
//!
//! A private daemon, rather than a sink on the host's, because a root daemon's sessions run as
//! other users who could not reach root's PipeWire, and a headless host may have none at all.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;
use crate::account::{Account, RuntimeDir};
use crate::compositor::base_env;
use crate::process::{Child, Spec, find};

/// The session sink's node name.
pub const SINK: &str = "lantern-session";

pub struct Sound {
    /// Started in this order, stopped in reverse.
    children: Vec<Child>,
    socket: PathBuf,
    /// What the app needs to play into the sink (the runtime dir is already its own).
    env: Vec<(String, String)>,
}

impl Sound {
    /// Start the session's PipeWire and wait (up to `timeout`) for its socket.
    pub async fn start(
        dir: &RuntimeDir,
        account: Option<&Account>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let programs = [
            ("dbus-daemon", find("dbus-daemon", Some("dbus"))?),
            ("pipewire", find("pipewire", Some("pipewire"))?),
            ("wireplumber", find("wireplumber", Some("wireplumber"))?),
        ];
        dir.write(
            "config/pipewire/pipewire.conf.d/lantern-sink.conf",
            &sink_config(),
            account,
        )?;
        let bus = dir.path().join("bus");
        // The app shares the bus (and, through its runtime dir, PipeWire's socket).
        let bus_env = (
            "DBUS_SESSION_BUS_ADDRESS".to_string(),
            format!("unix:path={}", bus.display()),
        );
        let mut env = base_env(dir.path());
        env.push(bus_env.clone());
        let mut sound = Self {
            children: Vec::new(),
            socket: dir.path().join("pipewire-0"),
            env: vec![bus_env],
        };
        for (name, program) in programs {
            let args: Vec<String> = match name {
                "dbus-daemon" => vec![
                    "--session".into(),
                    "--nofork".into(),
                    "--nopidfile".into(),
                    format!("--address=unix:path={}", bus.display()),
                ],
                _ => Vec::new(),
            };
            let child = Child::spawn(Spec {
                name,
                program: &program.to_string_lossy(),
                args: &args,
                env: &env,
                cwd: dir.path(),
                account,
                log: dir.path().join(format!("{name}.log")),
                death_signal: libc::SIGKILL,
                stdin: None,
                stdout: None,
                cgroup: dir.cgroup(),
            })?;
            sound.children.push(child);
            // WirePlumber needs the bus, and PipeWire's socket, before it starts.
            let wait_for = match name {
                "dbus-daemon" => Some(bus.clone()),
                "pipewire" => Some(sound.socket.clone()),
                _ => None,
            };
            if let Some(path) = wait_for {
                sound.wait_for(&path, timeout).await?;
            }
        }
        Ok(sound)
    }

    async fn wait_for(&mut self, path: &Path, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        while !path.exists() {
            if let Some(why) = self.died() {
                return Err(Error::Sound(why));
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("the session's sound server ({})", path.display()),
                    timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Start capturing the sink's monitor in a process of the session's account (see
    /// [`crate::capture::sound`]), stopped with the sound; what it captures comes through the
    /// pipe returned.
    pub fn capture(
        &mut self,
        dir: &RuntimeDir,
        account: Option<&Account>,
        settings: moq_pub::audio::AudioSettings,
        timeout: Duration,
    ) -> Result<std::io::PipeReader, Error> {
        let (reader, writer) = std::io::pipe().map_err(|e| Error::io("a pipe for the sound", e))?;
        let args: Vec<String> = vec![
            "sound-capture".into(),
            "--remote".into(),
            self.socket.display().to_string(),
            "--target".into(),
            SINK.into(),
            "--frame-us".into(),
            settings.frame_us.to_string(),
            "--timeout-ms".into(),
            timeout.as_millis().to_string(),
        ];
        let child = crate::process::spawn_helper(
            "sound-capture",
            &args,
            &self.env,
            dir,
            account,
            crate::process::Pipes {
                stdin: None,
                stdout: Some(writer.into()),
            },
        )?;
        self.children.push(child);
        Ok(reader)
    }

    /// The session's PipeWire socket, to capture the sink's monitor through.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Why the sound server stopped, if one of its processes did.
    pub fn died(&mut self) -> Option<String> {
        self.children.iter_mut().find_map(|child| {
            let status = child.exited()?;
            Some(format!(
                "{} ended ({}): {}",
                child.name(),
                crate::process::describe(status),
                child.tail(5)
            ))
        })
    }

    pub async fn stop(&mut self) {
        while let Some(mut child) = self.children.pop() {
            child.stop(Duration::from_secs(2)).await;
        }
    }
}

/// A PipeWire drop-in that creates the session's sink at start; being the only sink, it is
/// every app's default output.
fn sink_config() -> String {
    format!(
        "# Written by host-daemon: the session's one speaker, whose monitor is streamed.\n\
         context.objects = [\n\
         \x20 {{ factory = adapter\n\
         \x20   args = {{\n\
         \x20     factory.name = support.null-audio-sink\n\
         \x20     node.name = \"{SINK}\"\n\
         \x20     node.description = \"Lantern session\"\n\
         \x20     media.class = Audio/Sink\n\
         \x20     audio.position = [ FL FR ]\n\
         \x20     audio.rate = 48000\n\
         \x20     object.linger = true\n\
         \x20   }}\n\
         \x20 }}\n\
         ]\n"
    )
}
