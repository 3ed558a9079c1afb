//! Gamepads: each viewer's pad becomes a virtual Xbox-style controller through uinput (the
//! evdev crate), which games find as they find a real one. Where /dev/uinput is missing or
//! closed to the daemon, pad state is still received, validated and counted, and one warning
//! says why it goes nowhere.
//!
//! A pad is its session's alone: its device nodes (`/dev/input/eventN`, and `jsN` where the
//! joydev driver is loaded) are given to the session's account, mode 0600, so no other
//! session's app can read a player's pad or see it as its own. udev sets a new node's owner
//! and mode by its rules after the kernel makes it, so the hand-over waits for udev to be done
//! with the node (its database entry, `/run/udev/data/cMAJOR:MINOR`), checked on the
//! injector's every turn rather than waited for; `72-lantern-pads.rules` keeps the
//! desktop's seat and the `input` group off Lantern's pads meanwhile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use evdev::uinput::VirtualDevice;
use evdev::{
    AbsInfo, AbsoluteAxisCode, AttributeSet, EventType, InputEvent, InputId, KeyCode,
    UinputAbsSetup,
};
use lantern_proto::input::Gamepad;

/// The W3C standard gamepad's buttons 0..=16 as evdev codes; 12..=15 (the d-pad) go to the
/// hat axes instead.
const BUTTONS: [KeyCode; 17] = [
    KeyCode::BTN_SOUTH,
    KeyCode::BTN_EAST,
    KeyCode::BTN_WEST,
    KeyCode::BTN_NORTH,
    KeyCode::BTN_TL,
    KeyCode::BTN_TR,
    KeyCode::BTN_TL2,
    KeyCode::BTN_TR2,
    KeyCode::BTN_SELECT,
    KeyCode::BTN_START,
    KeyCode::BTN_THUMBL,
    KeyCode::BTN_THUMBR,
    KeyCode::BTN_DPAD_UP,
    KeyCode::BTN_DPAD_DOWN,
    KeyCode::BTN_DPAD_LEFT,
    KeyCode::BTN_DPAD_RIGHT,
    KeyCode::BTN_MODE,
];
const STICKS: [AbsoluteAxisCode; 4] = [
    AbsoluteAxisCode::ABS_X,
    AbsoluteAxisCode::ABS_Y,
    AbsoluteAxisCode::ABS_RX,
    AbsoluteAxisCode::ABS_RY,
];
const TRIGGERS: [AbsoluteAxisCode; 2] = [AbsoluteAxisCode::ABS_Z, AbsoluteAxisCode::ABS_RZ];

/// The account a session's pads are given to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Where pads go.
pub enum Pads {
    Uinput {
        devices: HashMap<(u64, u8), VirtualDevice>,
        /// Who gets them (`None`: left as udev makes them, a daemon that is not root).
        owner: Option<Owner>,
        /// Pads made whose nodes are not yet handed over, and since when.
        pending: HashMap<(u64, u8), (Vec<Node>, Instant)>,
    },
    /// No uinput here: states are counted, with this reason given once.
    Unavailable(String),
}

/// Where udev keeps what it knows of devices, and whether it runs at all (its control socket).
const UDEV_DATA: &str = "/run/udev/data";
const UDEV_CONTROL: &str = "/run/udev/control";
/// How long a new pad's nodes wait for udev before they are handed over regardless.
const UDEV_WAIT: Duration = Duration::from_secs(2);

impl Pads {
    /// uinput when /dev/uinput can be opened for writing; the pads made go to `owner`.
    pub fn open(owner: Option<Owner>) -> Self {
        match std::fs::OpenOptions::new().write(true).open("/dev/uinput") {
            Ok(_) => Self::Uinput {
                devices: HashMap::new(),
                owner,
                pending: HashMap::new(),
            },
            Err(err) => Self::Unavailable(format!(
                "/dev/uinput: {err}: gamepad input is received and counted but not injected"
            )),
        }
    }

    /// Apply one pad's state from viewer `viewer`; false when it went nowhere.
    pub fn apply(&mut self, viewer: u64, pad: &Gamepad) -> Result<bool, std::io::Error> {
        let Self::Uinput {
            devices,
            owner,
            pending,
        } = self
        else {
            return Ok(false);
        };
        let key = (viewer, pad.index);
        if !pad.connected {
            // Released first (the gate sends an all-zero state), then unplugged.
            pending.remove(&key);
            if let Some(mut device) = devices.remove(&key) {
                device.emit(&events(pad))?;
            }
            return Ok(true);
        }
        let device = match devices.entry(key) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let mut device = create(pad.index)?;
                if owner.is_some() {
                    let nodes = nodes(&device.get_syspath()?)?;
                    pending.insert(key, (nodes, Instant::now()));
                }
                entry.insert(device)
            }
        };
        device.emit(&events(pad))?;
        Ok(true)
    }

    /// Hand over the nodes of new pads that udev is done with (or that waited long enough):
    /// called on the injector's every turn.
    pub fn settle(&mut self) {
        let Self::Uinput {
            owner: Some(owner),
            pending,
            ..
        } = self
        else {
            return;
        };
        if pending.is_empty() {
            return;
        }
        let udev = Udev::here();
        pending.retain(|_, (nodes, since)| {
            if !nodes.iter().all(|node| udev.done_with(node)) && since.elapsed() < UDEV_WAIT {
                return true;
            }
            for node in nodes.iter() {
                if let Err(err) = node.give(*owner) {
                    tracing::warn!(node = %node.path.display(), %err, "a pad's node stays udev's");
                }
            }
            false
        });
    }

    /// Unplug a viewer's pads.
    pub fn forget(&mut self, viewer: u64) {
        if let Self::Uinput {
            devices, pending, ..
        } = self
        {
            devices.retain(|(owner, _), _| *owner != viewer);
            pending.retain(|(owner, _), _| *owner != viewer);
        }
    }
}

/// A pad's device node: its path and the device number it must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    path: PathBuf,
    major: u32,
    minor: u32,
}

/// The nodes (`eventN`, `jsN`) of the input device at `syspath`
/// (`/sys/devices/virtual/input/inputK`), from the device numbers sysfs gives.
fn nodes(syspath: &Path) -> Result<Vec<Node>, std::io::Error> {
    let mut nodes = Vec::new();
    for entry in std::fs::read_dir(syspath)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with("event") || name.starts_with("js")) {
            continue;
        }
        let dev = std::fs::read_to_string(entry.path().join("dev"))?;
        let parsed = dev
            .trim()
            .split_once(':')
            .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)));
        let Some((major, minor)) = parsed else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}/dev: {dev:?} is no MAJOR:MINOR", entry.path().display()),
            ));
        };
        nodes.push(Node {
            path: Path::new("/dev/input").join(name),
            major,
            minor,
        });
    }
    Ok(nodes)
}

/// Whether udev runs here, and where its database is.
struct Udev {
    data: Option<PathBuf>,
}

impl Udev {
    fn here() -> Self {
        Self::at(Path::new(UDEV_CONTROL), Path::new(UDEV_DATA))
    }

    fn at(control: &Path, data: &Path) -> Self {
        Self {
            data: control.exists().then(|| data.to_path_buf()),
        }
    }

    /// udev has applied its rules to `node` (or there is no udev to wait for).
    fn done_with(&self, node: &Node) -> bool {
        self.data.as_ref().is_none_or(|data| {
            data.join(format!("c{}:{}", node.major, node.minor))
                .exists()
        })
    }
}

impl Node {
    /// Give the node to `owner`, readable and writable by it alone. It is opened without
    /// following a link and checked to be the character device it should be before anything
    /// changes, and changed through that descriptor.
    fn give(&self, owner: Owner) -> Result<(), std::io::Error> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&self.path)?;
        let meta = file.metadata()?;
        let rdev = meta.rdev();
        if !meta.file_type().is_char_device()
            || (libc::major(rdev), libc::minor(rdev)) != (self.major, self.minor)
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not the device {}:{}", self.major, self.minor),
            ));
        }
        std::os::unix::fs::fchown(&file, Some(owner.uid), Some(owner.gid))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
    }
}

fn create(index: u8) -> Result<VirtualDevice, std::io::Error> {
    let mut keys = AttributeSet::<KeyCode>::new();
    for button in BUTTONS {
        keys.insert(button);
    }
    let stick = AbsInfo::new(0, -32768, 32767, 16, 128, 0);
    let trigger = AbsInfo::new(0, 0, 65535, 0, 0, 0);
    let hat = AbsInfo::new(0, -1, 1, 0, 0, 0);
    let name = format!("Lantern pad {index}");
    let mut builder = VirtualDevice::builder()?
        .name(&name)
        // Microsoft's Xbox 360 pad ids: games and SDL map it without asking.
        .input_id(InputId::new(
            evdev::BusType::BUS_USB,
            0x045e,
            0x028e,
            0x0110,
        ))
        .with_keys(&keys)?;
    for axis in STICKS {
        builder = builder.with_absolute_axis(&UinputAbsSetup::new(axis, stick))?;
    }
    for axis in TRIGGERS {
        builder = builder.with_absolute_axis(&UinputAbsSetup::new(axis, trigger))?;
    }
    for axis in [AbsoluteAxisCode::ABS_HAT0X, AbsoluteAxisCode::ABS_HAT0Y] {
        builder = builder.with_absolute_axis(&UinputAbsSetup::new(axis, hat))?;
    }
    builder.build()
}

/// A pad's whole state as evdev events (emit adds the SYN_REPORT).
fn events(pad: &Gamepad) -> Vec<InputEvent> {
    let pressed = |bit: usize| i32::from(pad.buttons & (1 << bit) != 0);
    let key = |code: KeyCode, value| InputEvent::new(EventType::KEY.0, code.0, value);
    let abs = |code: AbsoluteAxisCode, value| InputEvent::new(EventType::ABSOLUTE.0, code.0, value);
    let mut out: Vec<InputEvent> = BUTTONS
        .iter()
        .enumerate()
        .map(|(bit, &code)| key(code, pressed(bit)))
        .collect();
    out.extend(
        STICKS
            .iter()
            .zip(pad.sticks)
            .map(|(&a, v)| abs(a, v.into())),
    );
    out.extend(
        TRIGGERS
            .iter()
            .zip(pad.triggers)
            .map(|(&a, v)| abs(a, v.into())),
    );
    out.push(abs(AbsoluteAxisCode::ABS_HAT0X, pressed(15) - pressed(14)));
    out.push(abs(AbsoluteAxisCode::ABS_HAT0Y, pressed(13) - pressed(12)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pad_state_becomes_buttons_sticks_triggers_and_a_hat() {
        let pad = Gamepad {
            index: 0,
            connected: true,
            buttons: 1 | 1 << 13 | 1 << 14,
            sticks: [-32768, 32767, 1, -1],
            triggers: [65535, 0],
        };
        let events = events(&pad);
        let value = |type_: EventType, code: u16| {
            events
                .iter()
                .find(|e| e.event_type() == type_ && e.code() == code)
                .map(|e| e.value())
        };
        assert_eq!(value(EventType::KEY, KeyCode::BTN_SOUTH.0), Some(1));
        assert_eq!(value(EventType::KEY, KeyCode::BTN_EAST.0), Some(0));
        assert_eq!(
            value(EventType::ABSOLUTE, AbsoluteAxisCode::ABS_X.0),
            Some(-32768)
        );
        assert_eq!(
            value(EventType::ABSOLUTE, AbsoluteAxisCode::ABS_Z.0),
            Some(65535)
        );
        // Down and left held.
        assert_eq!(
            value(EventType::ABSOLUTE, AbsoluteAxisCode::ABS_HAT0X.0),
            Some(-1)
        );
        assert_eq!(
            value(EventType::ABSOLUTE, AbsoluteAxisCode::ABS_HAT0Y.0),
            Some(1)
        );
    }

    /// udev's database says when it is done with a node; without udev there is nothing to
    /// wait for.
    #[test]
    fn a_node_waits_for_udev_only_where_udev_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (control, data) = (dir.path().join("control"), dir.path().join("data"));
        std::fs::create_dir(&data).unwrap();
        let node = Node {
            path: "/dev/input/event7".into(),
            major: 13,
            minor: 71,
        };
        assert!(Udev::at(&control, &data).done_with(&node), "no udev");
        std::fs::write(&control, "").unwrap();
        assert!(!Udev::at(&control, &data).done_with(&node));
        std::fs::write(data.join("c13:71"), "").unwrap();
        assert!(Udev::at(&control, &data).done_with(&node));
    }

    /// A pad's nodes are read from sysfs: its event and joystick nodes, with their numbers.
    #[test]
    fn a_pads_nodes_are_found_with_their_numbers() {
        let sys = tempfile::tempdir().unwrap();
        for (name, dev) in [
            ("event7", "13:71\n"),
            ("js2", "13:2\n"),
            ("capabilities", ""),
        ] {
            std::fs::create_dir(sys.path().join(name)).unwrap();
            std::fs::write(sys.path().join(name).join("dev"), dev).unwrap();
        }
        let mut found = nodes(sys.path()).unwrap();
        found.sort_by_key(|n| n.minor);
        assert_eq!(
            found,
            [
                Node {
                    path: "/dev/input/js2".into(),
                    major: 13,
                    minor: 2
                },
                Node {
                    path: "/dev/input/event7".into(),
                    major: 13,
                    minor: 71
                }
            ]
        );
        std::fs::write(sys.path().join("event7").join("dev"), "garbage").unwrap();
        assert!(nodes(sys.path()).is_err());
    }

    /// Only the device the pad is gets a new owner: a link, a plain file or another device
    /// in its place is refused and left as it was. (Device nodes are made where the host
    /// lets this process make them: as root, outside a container that forbids it.)
    #[test]
    fn only_the_pads_own_device_node_is_given_away() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let owner = Owner {
            uid: 4242,
            gid: 4243,
        };
        let node = |path: &Path| Node {
            path: path.to_path_buf(),
            major: 1,
            minor: 3,
        };
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        assert!(node(&plain).give(owner).is_err());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        assert!(node(&link).give(owner).is_err());
        assert_eq!(std::fs::metadata("/dev/null").unwrap().uid(), 0);
        let device = dir.path().join("null");
        let made = std::ffi::CString::new(device.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path; mknod touches nothing of ours.
        let status =
            unsafe { libc::mknod(made.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
        if status != 0 {
            eprintln!(
                "mknod: {}: not checked here",
                std::io::Error::last_os_error()
            );
            return;
        }
        let other = Node {
            minor: 5,
            ..node(&device)
        };
        assert!(other.give(owner).is_err(), "another device's number");
        node(&device).give(owner).unwrap();
        let meta = std::fs::metadata(&device).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4242, 4243));
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn without_uinput_pads_are_counted_not_injected() {
        if std::path::Path::new("/dev/uinput").exists() {
            return; // a machine with uinput takes the other branch
        }
        let mut pads = Pads::open(None);
        assert!(matches!(&pads, Pads::Unavailable(why) if why.contains("/dev/uinput")));
        assert!(!pads.apply(1, &Gamepad::default()).unwrap());
    }
}
