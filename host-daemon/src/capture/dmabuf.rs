//! DMA-BUF buffers for capture on hosts with a GPU: finding the render node, allocating
//! buffers on it with GBM, and reading a finished picture back.
//!
//! libgbm is loaded when a buffer is first wanted, not linked, so hosts without a GPU (and
//! without Mesa) run host-daemon all the same. Buffers are linear (every GPU can render into
//! one another GPU allocated, and the compositor may sit on a different one than we guess),
//! and they are read through `gbm_bo_map`, which lets the driver choose how: a direct mapping,
//! or a blit into cached memory where reading write-combined memory would be slow.

use std::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lantern_proto::picture::PixelFormat;

use crate::Error;

const GBM_BO_USE_RENDERING: u32 = 1 << 2;
const GBM_BO_USE_LINEAR: u32 = 1 << 4;
const GBM_BO_TRANSFER_READ: u32 = 1 << 0;

/// A DRM format code ("fourcc") from its four letters.
const fn fourcc(code: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*code)
}

/// The pixel layout of a DRM format, for the formats Lantern converts. DRM names little-endian
/// words, as wl_shm does: XRGB8888 is bytes B, G, R, X.
pub fn pixel_format(format: u32) -> Option<PixelFormat> {
    match format {
        f if f == fourcc(b"XR24") => Some(PixelFormat::Bgrx),
        f if f == fourcc(b"AR24") => Some(PixelFormat::Bgra),
        _ => None,
    }
}

/// A DRM format code as its letters, for messages.
pub fn format_name(format: u32) -> String {
    format
        .to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// The host's GPU render nodes (`renderD*` character devices in `dir`, normally /dev/dri),
/// in order.
pub fn render_nodes(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut nodes: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        .map(|e| e.path())
        .filter(|path| std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device()))
        .collect();
    nodes.sort();
    nodes
}

/// The render node of the DRM device `device` (a `dev_t`, as the compositor names its GPU in
/// linux-dmabuf feedback) among `nodes`: that node itself when it is a render node, else the
/// render node beside the primary node it names (found through `sys`, normally /sys).
pub fn render_node_of(device: u64, nodes: &[PathBuf], sys: &Path) -> Option<PathBuf> {
    if let Some(node) = nodes
        .iter()
        .find(|n| std::fs::metadata(n).is_ok_and(|m| m.rdev() == device))
    {
        return Some(node.clone());
    }
    let (major, minor) = (libc::major(device), libc::minor(device));
    let siblings = sys.join(format!("dev/char/{major}:{minor}/device/drm"));
    let sibling = std::fs::read_dir(siblings)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("renderD"))?;
    nodes.iter().find(|n| n.ends_with(&sibling)).cloned()
}

/// libgbm's entry points, resolved once.
struct Lib {
    create_device: unsafe extern "C" fn(c_int) -> *mut c_void,
    device_destroy: unsafe extern "C" fn(*mut c_void),
    bo_create: unsafe extern "C" fn(*mut c_void, u32, u32, u32, u32) -> *mut c_void,
    bo_destroy: unsafe extern "C" fn(*mut c_void),
    bo_get_fd: unsafe extern "C" fn(*mut c_void) -> c_int,
    bo_get_stride: unsafe extern "C" fn(*mut c_void) -> u32,
    bo_get_offset: unsafe extern "C" fn(*mut c_void, c_int) -> u32,
    bo_get_modifier: unsafe extern "C" fn(*mut c_void) -> u64,
    bo_get_plane_count: unsafe extern "C" fn(*mut c_void) -> c_int,
    bo_map: unsafe extern "C" fn(
        *mut c_void,
        u32,
        u32,
        u32,
        u32,
        u32,
        *mut u32,
        *mut *mut c_void,
    ) -> *mut c_void,
    bo_unmap: unsafe extern "C" fn(*mut c_void, *mut c_void),
    /// Kept loaded for as long as the pointers above are used.
    _library: libloading::Library,
}

impl Lib {
    fn load() -> Result<Self, Error> {
        // SAFETY: libgbm's initialisers have no preconditions.
        let library = unsafe { libloading::Library::new("libgbm.so.1") }.map_err(Error::Gbm)?;
        macro_rules! symbol {
            ($name:literal) => {
                // SAFETY: the field's type is the C prototype of the symbol in gbm.h.
                *unsafe { library.get(concat!($name, "\0").as_bytes()) }.map_err(Error::Gbm)?
            };
        }
        Ok(Self {
            create_device: symbol!("gbm_create_device"),
            device_destroy: symbol!("gbm_device_destroy"),
            bo_create: symbol!("gbm_bo_create"),
            bo_destroy: symbol!("gbm_bo_destroy"),
            bo_get_fd: symbol!("gbm_bo_get_fd"),
            bo_get_stride: symbol!("gbm_bo_get_stride"),
            bo_get_offset: symbol!("gbm_bo_get_offset"),
            bo_get_modifier: symbol!("gbm_bo_get_modifier"),
            bo_get_plane_count: symbol!("gbm_bo_get_plane_count"),
            bo_map: symbol!("gbm_bo_map"),
            bo_unmap: symbol!("gbm_bo_unmap"),
            _library: library,
        })
    }
}

/// A GBM device on one render node.
pub struct Gbm {
    lib: Arc<Lib>,
    device: *mut c_void,
    node: PathBuf,
    /// The node's descriptor, which the device uses and must outlive it.
    _fd: OwnedFd,
}

// SAFETY: the device is used from one thread at a time (the capture's); GBM keeps no
// thread-local state.
unsafe impl Send for Gbm {}

impl Gbm {
    /// Open `node` (a render node) and a GBM device on it.
    pub fn open(node: &Path) -> Result<Self, Error> {
        let lib = Arc::new(Lib::load()?);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(node)
            .map_err(|e| Error::io(format!("opening the render node {}", node.display()), e))?;
        let fd = OwnedFd::from(file);
        // SAFETY: fd is an open descriptor that outlives the device (both live in Self).
        let device = unsafe { (lib.create_device)(fd.as_raw_fd()) };
        if device.is_null() {
            return Err(Error::Capture(format!(
                "GBM refused the render node {}",
                node.display()
            )));
        }
        Ok(Self {
            lib,
            device,
            node: node.to_owned(),
            _fd: fd,
        })
    }

    /// A linear buffer of `width`×`height` in DRM format `format`, which a GPU can render
    /// into. One plane only: the formats we read are packed.
    pub fn allocate(&self, format: u32, width: u32, height: u32) -> Result<DmaBuf, Error> {
        let flags = GBM_BO_USE_RENDERING | GBM_BO_USE_LINEAR;
        // SAFETY: device is a live GBM device.
        let bo = unsafe { (self.lib.bo_create)(self.device, width, height, format, flags) };
        if bo.is_null() {
            return Err(Error::Capture(format!(
                "{} cannot allocate a {width}x{height} {} buffer",
                self.node.display(),
                format_name(format)
            )));
        }
        let bo = Bo {
            lib: self.lib.clone(),
            bo,
        };
        // SAFETY: bo is live; gbm_bo_get_fd returns a new descriptor we own, or -1.
        let (fd, stride, offset, modifier, planes) = unsafe {
            (
                (self.lib.bo_get_fd)(bo.bo),
                (self.lib.bo_get_stride)(bo.bo),
                (self.lib.bo_get_offset)(bo.bo, 0),
                (self.lib.bo_get_modifier)(bo.bo),
                (self.lib.bo_get_plane_count)(bo.bo),
            )
        };
        if fd < 0 {
            return Err(Error::Capture("GBM could not export a buffer".into()));
        }
        // SAFETY: fd is new and ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if planes != 1 {
            return Err(Error::Capture(format!(
                "GBM made a {} buffer of {planes} planes, not one",
                format_name(format)
            )));
        }
        Ok(DmaBuf {
            fd,
            width,
            height,
            stride,
            offset,
            modifier,
            bo,
        })
    }
}

impl Drop for Gbm {
    fn drop(&mut self) {
        // SAFETY: the device is live, and every buffer holds its own library handle (buffers
        // do not need the device once made).
        unsafe { (self.lib.device_destroy)(self.device) };
    }
}

struct Bo {
    lib: Arc<Lib>,
    bo: *mut c_void,
}

impl Drop for Bo {
    fn drop(&mut self) {
        // SAFETY: bo is live and destroyed once.
        unsafe { (self.lib.bo_destroy)(self.bo) };
    }
}

/// One GBM buffer and its exported DMA-BUF.
pub struct DmaBuf {
    pub fd: OwnedFd,
    pub width: u32,
    pub height: u32,
    pub stride: u32,
    pub offset: u32,
    /// The layout GBM chose (linear, or DRM_FORMAT_MOD_INVALID from drivers that do not say:
    /// the compositor then takes the buffer's implicit layout, which is linear too).
    pub modifier: u64,
    bo: Bo,
}

// SAFETY: as for Gbm: one thread at a time.
unsafe impl Send for DmaBuf {}

impl DmaBuf {
    /// Read the buffer: `read` gets its bytes and their stride, while it is mapped.
    pub fn read<R>(&self, read: impl FnOnce(&[u8], u32) -> R) -> Result<R, Error> {
        let lib = &self.bo.lib;
        let mut stride = 0u32;
        let mut data = std::ptr::null_mut();
        // SAFETY: bo is live; the map covers the whole buffer and is undone below.
        let map = unsafe {
            (lib.bo_map)(
                self.bo.bo,
                0,
                0,
                self.width,
                self.height,
                GBM_BO_TRANSFER_READ,
                &mut stride,
                &mut data,
            )
        };
        if map.is_null() {
            return Err(Error::Capture(format!(
                "a {}x{} DMA-BUF could not be mapped",
                self.width, self.height
            )));
        }
        let len = stride as usize * self.height as usize;
        // SAFETY: gbm_bo_map maps `height` rows of `stride` bytes, readable until unmapped.
        let bytes = unsafe { std::slice::from_raw_parts(map as *const u8, len) };
        let result = read(bytes, stride);
        // SAFETY: data is what gbm_bo_map returned for this map.
        unsafe { (lib.bo_unmap)(self.bo.bo, data) };
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_read_as_little_endian_words() {
        assert_eq!(fourcc(b"XR24"), 0x3432_5258);
        assert_eq!(pixel_format(0x3432_5258), Some(PixelFormat::Bgrx));
        assert_eq!(pixel_format(fourcc(b"AR24")), Some(PixelFormat::Bgra));
        assert_eq!(pixel_format(fourcc(b"NV12")), None);
        assert_eq!(format_name(fourcc(b"XR24")), "XR24");
        assert_eq!(format_name(0), "????");
    }

    #[test]
    fn only_render_nodes_that_are_devices_count() {
        let dir = tempfile::tempdir().unwrap();
        // /dev/null stands in for a GPU: a character device a link can point at.
        std::fs::write(dir.path().join("renderD130"), b"").unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("card0")).unwrap();
        assert!(render_nodes(dir.path()).is_empty());
        std::os::unix::fs::symlink("/dev/null", dir.path().join("renderD129")).unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("renderD128")).unwrap();
        let nodes = render_nodes(dir.path());
        assert_eq!(
            nodes,
            [dir.path().join("renderD128"), dir.path().join("renderD129")]
        );
        assert!(render_nodes(Path::new("/nonexistent")).is_empty());
    }

    #[test]
    fn the_compositors_device_leads_to_its_render_node() {
        let dev = tempfile::tempdir().unwrap();
        let sys = tempfile::tempdir().unwrap();
        let null = std::fs::metadata("/dev/null").unwrap().rdev();
        std::os::unix::fs::symlink("/dev/null", dev.path().join("renderD128")).unwrap();
        // The render node itself.
        assert_eq!(
            render_node_of(null, &render_nodes(dev.path()), sys.path()),
            Some(dev.path().join("renderD128"))
        );
        // A primary node (card0, 226:0): its render sibling, as sysfs lists it.
        let card0 = libc::makedev(226, 0);
        assert_eq!(
            render_node_of(card0, &render_nodes(dev.path()), sys.path()),
            None
        );
        std::fs::create_dir_all(sys.path().join("dev/char/226:0/device/drm/card0")).unwrap();
        std::fs::create_dir_all(sys.path().join("dev/char/226:0/device/drm/renderD128")).unwrap();
        assert_eq!(
            render_node_of(card0, &render_nodes(dev.path()), sys.path()),
            Some(dev.path().join("renderD128"))
        );
        // A sibling that is not among the nodes.
        let card1 = libc::makedev(226, 1);
        std::fs::create_dir_all(sys.path().join("dev/char/226:1/device/drm/renderD129")).unwrap();
        assert_eq!(
            render_node_of(card1, &render_nodes(dev.path()), sys.path()),
            None
        );
    }

    #[test]
    fn gbm_loads_and_a_device_that_is_no_gpu_allocates_nothing() {
        // Mesa's libgbm is on every host with sway; /dev/null is no GPU: GBM may fall back to
        // software for the device, but no buffer can be made on it.
        let gbm = match Gbm::open(Path::new("/dev/null")) {
            Ok(gbm) => gbm,
            Err(err) => {
                let text = err.to_string();
                assert!(text.contains("GBM refused"), "{text}");
                return;
            }
        };
        let err = gbm.allocate(fourcc(b"XR24"), 64, 64).err().unwrap();
        assert!(
            err.to_string()
                .contains("cannot allocate a 64x64 XR24 buffer"),
            "{err}"
        );
    }
}
