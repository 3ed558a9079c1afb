//! linux-dmabuf (version 4, with feedback), where the host has a GPU: apps render on it
//! (Mesa's EGL and Vulkan need this protocol to) into linear ARGB/XRGB buffers, which the
//! compositor maps and reads like shared memory. Only buffers [`crate::buffer::readable`]
//! says can be read are taken; the rest fail their import, and the app falls back.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::allocator::{Format, Fourcc, Modifier};
use smithay::reexports::wayland_server::DisplayHandle;
use smithay::wayland::dmabuf::{
    DmabufFeedbackBuilder, DmabufGlobal, DmabufHandler, DmabufState, ImportNotifier,
};

use crate::Error;
use crate::state::State;

/// Offer linux-dmabuf naming `device` (a DRM render node) as the GPU to render on.
pub fn global(
    dh: &DisplayHandle,
    state: &mut DmabufState,
    device: &Path,
) -> Result<DmabufGlobal, Error> {
    let io = |what: String| move |source| Error::Io { what, source };
    let rdev = std::fs::metadata(device)
        .map_err(io(format!("the render node {}", device.display())))?
        .rdev();
    let formats = [Fourcc::Argb8888, Fourcc::Xrgb8888].map(|code| Format {
        code,
        modifier: Modifier::Linear,
    });
    let feedback = DmabufFeedbackBuilder::new(rdev, formats)
        .build()
        .map_err(io("linux-dmabuf's format table".into()))?;
    Ok(state.create_global_with_default_feedback::<State>(dh, &feedback))
}

impl DmabufHandler for State {
    fn dmabuf_state(&mut self) -> &mut DmabufState {
        &mut self.dmabuf
    }

    fn dmabuf_imported(&mut self, _: &DmabufGlobal, dmabuf: Dmabuf, notifier: ImportNotifier) {
        if crate::buffer::readable(&dmabuf) {
            let _ = notifier.successful::<State>();
        } else {
            tracing::debug!("a dmabuf that cannot be read here was refused");
            notifier.failed();
        }
    }
}

smithay::delegate_dmabuf!(State);
