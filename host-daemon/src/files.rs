//! Files a root daemon touches in directories a session's user can write (its runtime
//! directory): whatever that user's processes put there (a symbolic link to a root-owned file,
//! a FIFO, a device) must not make root write, chown, block on or read anything else.
//!
//! Everything goes through a directory descriptor, one component at a time, with
//! `O_NOFOLLOW`: a link is never followed. Files are created with `O_EXCL` (whatever was at
//! the name is removed first, the link itself, never its target) and given to the session's
//! user by descriptor. Reads take regular files only, opened without blocking, up to a cap.
//! Sockets (the compositor's) are connected to only when the name is a socket, not a link.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use crate::Error;
use crate::account::Account;

/// A directory held open, to work inside it by name.
struct Dir(OwnedFd);

impl Dir {
    /// Open `path` (a directory root made; the links on the way to it are root's).
    fn open(path: &Path) -> std::io::Result<Self> {
        let path = c_name(path.as_os_str().as_bytes())?;
        // SAFETY: a plain syscall on a NUL-terminated path; the descriptor is owned below.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        owned(fd).map(Self)
    }

    /// The subdirectory `name`, made (mode 0700, given to `account`) if it is not there; a
    /// link or anything but a directory at `name` is an error.
    fn subdir(&self, name: &[u8], account: Option<&Account>) -> std::io::Result<Self> {
        let c = c_name(name)?;
        // SAFETY: plain syscalls relative to our descriptor.
        let made = unsafe { libc::mkdirat(self.0.as_raw_fd(), c.as_ptr(), 0o700) } == 0;
        if !made {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(err);
            }
        }
        let dir = self.existing(name)?;
        if made && let Some(account) = account {
            std::os::unix::fs::fchown(&dir.0, Some(account.uid), Some(account.gid))?;
        }
        Ok(dir)
    }

    /// The subdirectory `name`, which must be one (not a link to one).
    fn existing(&self, name: &[u8]) -> std::io::Result<Self> {
        self.open_at(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map(Self)
    }

    /// `openat` of `name` in this directory with `flags`, never following a link.
    fn open_at(
        &self,
        name: &[u8],
        flags: libc::c_int,
        mode: libc::c_uint,
    ) -> std::io::Result<OwnedFd> {
        let c = c_name(name)?;
        let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: a plain syscall relative to our descriptor on a NUL-terminated name.
        owned(unsafe { libc::openat(self.0.as_raw_fd(), c.as_ptr(), flags, mode) })
    }

    /// A new, empty file `name` (mode 0600, open for reading and writing), whatever was at
    /// the name removed first.
    fn create(&self, name: &[u8]) -> std::io::Result<File> {
        let c = c_name(name)?;
        // SAFETY: a plain syscall relative to our descriptor; unlinkat removes a link itself.
        unsafe { libc::unlinkat(self.0.as_raw_fd(), c.as_ptr(), 0) };
        // O_EXCL never follows a link, and fails if one was put back.
        self.open_at(name, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, 0o600)
            .map(File::from)
    }

    /// The regular file `name`, for reading: never a link, a FIFO or a device.
    fn open_regular(&self, name: &[u8]) -> std::io::Result<File> {
        // O_NONBLOCK keeps a FIFO from blocking the open; the type is checked before anything
        // is read.
        let file = File::from(self.open_at(name, libc::O_RDONLY | libc::O_NONBLOCK, 0)?);
        if !file.metadata()?.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(file)
    }
}

fn c_name(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| std::io::ErrorKind::InvalidInput.into())
}

fn owned(fd: libc::c_int) -> std::io::Result<OwnedFd> {
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just gave us, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `relative` inside `root`, split into its directories and its file name; anything but plain
/// names (`..`, an absolute path) is refused.
fn split(relative: &Path) -> std::io::Result<(Vec<&[u8]>, &[u8])> {
    let mut names = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(name) => names.push(name.as_bytes()),
            _ => return Err(std::io::ErrorKind::InvalidInput.into()),
        }
    }
    let file = names.pop().ok_or(std::io::ErrorKind::InvalidInput)?;
    Ok((names, file))
}

/// The directory holding `relative` inside `root`, its missing directories made for
/// `account`, without following a link anywhere under `root`.
fn parent_of<'a>(
    root: &Path,
    relative: &'a Path,
    account: Option<&Account>,
) -> std::io::Result<(Dir, &'a [u8])> {
    let (dirs, file) = split(relative)?;
    let mut dir = Dir::open(root)?;
    for name in dirs {
        dir = dir.subdir(name, account)?;
    }
    Ok((dir, file))
}

/// Create `relative` inside `root` (made anew: whatever was at the name goes, never what a
/// link there points to), owned by `account` when given.
pub fn create(root: &Path, relative: &Path, account: Option<&Account>) -> Result<File, Error> {
    let shown = || format!("creating {}", root.join(relative).display());
    let (dir, name) = parent_of(root, relative, account).map_err(|e| Error::io(shown(), e))?;
    let file = dir.create(name).map_err(|e| Error::io(shown(), e))?;
    if let Some(account) = account {
        std::os::unix::fs::fchown(&file, Some(account.uid), Some(account.gid)).map_err(|e| {
            Error::io(
                format!(
                    "chown {} to {}",
                    root.join(relative).display(),
                    account.name
                ),
                e,
            )
        })?;
    }
    Ok(file)
}

/// Write `relative` inside `root` with `text`, as [`create`] makes it.
pub fn write(
    root: &Path,
    relative: &Path,
    text: &str,
    account: Option<&Account>,
) -> Result<(), Error> {
    create(root, relative, account)?
        .write_all(text.as_bytes())
        .map_err(|e| Error::io(format!("writing {}", root.join(relative).display()), e))
}

/// At most `max` bytes of the regular file `relative` inside `root`, as text; `None` when
/// there is none (or a link, a FIFO or a device is there instead).
pub fn read(root: &Path, relative: &Path, max: u64) -> Option<String> {
    let (dirs, name) = split(relative).ok()?;
    let mut dir = Dir::open(root).ok()?;
    for sub in dirs {
        dir = dir.existing(sub).ok()?;
    }
    let mut bytes = Vec::new();
    dir.open_regular(name)
        .ok()?
        .take(max)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Connect to the Unix socket at `path` (in a directory a session's user can write): a link
/// planted there (to another session's compositor, say) is refused, never followed.
pub fn connect(path: &Path) -> Result<std::os::unix::net::UnixStream, Error> {
    let failed = |e| Error::io(format!("connecting to {}", path.display()), e);
    let (Some(root), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(failed(std::io::ErrorKind::InvalidInput.into()));
    };
    let dir = Dir::open(root).map_err(failed)?;
    // O_PATH opens the name itself (a socket cannot be opened otherwise); connecting through
    // the descriptor's /proc link reaches exactly that socket.
    let socket = File::from(
        dir.open_at(name.as_bytes(), libc::O_PATH, 0)
            .map_err(failed)?,
    );
    use std::os::unix::fs::FileTypeExt;
    if !socket.metadata().map_err(failed)?.file_type().is_socket() {
        return Err(failed(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a socket",
        )));
    }
    let by_descriptor = format!("/proc/self/fd/{}", socket.as_raw_fd());
    std::os::unix::net::UnixStream::connect(by_descriptor).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_dot_dots_are_never_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, "root's own").unwrap();
        let dir = root.path();

        // A link planted where a file is to be made: the link goes, the target is untouched.
        std::os::unix::fs::symlink(&secret, dir.join("app.log")).unwrap();
        create(dir, Path::new("app.log"), None).unwrap();
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root's own");
        assert!(!dir.join("app.log").is_symlink());

        // A link planted as a directory on the way: refused, nothing made beyond it.
        std::os::unix::fs::symlink(outside.path(), dir.join("conf")).unwrap();
        assert!(write(dir, Path::new("conf/x.conf"), "x", None).is_err());
        assert!(!outside.path().join("x.conf").exists());
        assert!(create(dir, Path::new("../escape"), None).is_err());
        write(dir, Path::new("a/b/c.conf"), "made", None).unwrap();
        assert_eq!(
            read(dir, Path::new("a/b/c.conf"), 100).as_deref(),
            Some("made")
        );

        // Reads: a link, a FIFO (which would block) and /dev/zero's link give nothing; a
        // regular file is capped.
        std::os::unix::fs::symlink(&secret, dir.join("link")).unwrap();
        assert_eq!(read(dir, Path::new("link"), 100), None);
        let fifo = c_name(dir.join("fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: a plain syscall on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(read(dir, Path::new("fifo"), 100), None);
        std::os::unix::fs::symlink("/dev/zero", dir.join("zero")).unwrap();
        assert_eq!(read(dir, Path::new("zero"), 100), None);
        std::fs::write(dir.join("big"), "x".repeat(10_000)).unwrap();
        assert_eq!(read(dir, Path::new("big"), 100).unwrap().len(), 100);
    }

    #[test]
    fn a_socket_is_reached_only_by_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let real = other.path().join("wayland-0");
        let _listener = std::os::unix::net::UnixListener::bind(&real).unwrap();
        assert!(connect(&real).is_ok());
        // A link to another's socket, a regular file, nothing: refused.
        std::os::unix::fs::symlink(&real, dir.path().join("wayland-1")).unwrap();
        assert!(connect(&dir.path().join("wayland-1")).is_err());
        std::fs::write(dir.path().join("file"), "").unwrap();
        assert!(connect(&dir.path().join("file")).is_err());
        assert!(connect(&dir.path().join("none")).is_err());
    }
}
