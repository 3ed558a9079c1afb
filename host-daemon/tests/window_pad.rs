//! A game controller at the player's window reaches the host: moq-sub's window runs in this
//! process (SDL's virtual joysticks are per process) on a real X server, with a virtual SDL
//! game controller plugged in, pressed and unplugged; host-daemon's session counts the pad
//! states it receives (and injects them where /dev/uinput exists).
//!
//! One test in its own binary: it sets DISPLAY for the window in this process.

mod common;

use std::time::Duration;

use common::*;
use lantern_testkit::x11::Display;
use lantern_testkit::*;
use sdl2::sys;

/// A virtual game controller, made and driven through SDL's C API (the sdl2 crate allows one
/// `Sdl` context per process, and the window holds it).
struct VirtualPad {
    device: i32,
    joystick: *mut sys::SDL_Joystick,
}

impl VirtualPad {
    fn plug() -> Self {
        // SAFETY: plain SDL calls on this thread; SDL's joystick layer locks internally, and
        // the window's thread only reads the virtual pad's state.
        unsafe {
            assert_eq!(sys::SDL_InitSubSystem(sys::SDL_INIT_GAMECONTROLLER), 0);
            let kind = sys::SDL_JoystickType::SDL_JOYSTICK_TYPE_GAMECONTROLLER;
            let buttons = sys::SDL_GameControllerButton::SDL_CONTROLLER_BUTTON_MAX as i32;
            let axes = sys::SDL_GameControllerAxis::SDL_CONTROLLER_AXIS_MAX as i32;
            let device = sys::SDL_JoystickAttachVirtual(kind, axes, buttons, 0);
            assert!(device >= 0, "SDL_JoystickAttachVirtual failed");
            let joystick = sys::SDL_JoystickOpen(device);
            assert!(!joystick.is_null(), "SDL_JoystickOpen failed");
            Self { device, joystick }
        }
    }

    fn button(&self, button: sys::SDL_GameControllerButton, down: bool) {
        // SAFETY: the joystick is open until unplug.
        unsafe { sys::SDL_JoystickSetVirtualButton(self.joystick, button as i32, down as u8) };
    }

    fn axis(&self, axis: sys::SDL_GameControllerAxis, value: i16) {
        // SAFETY: as above.
        unsafe { sys::SDL_JoystickSetVirtualAxis(self.joystick, axis as i32, value) };
    }

    fn unplug(self) {
        // SAFETY: closing what plug opened, then detaching the device.
        unsafe {
            sys::SDL_JoystickClose(self.joystick);
            sys::SDL_JoystickDetachVirtual(self.device);
        }
    }
}

#[test]
fn a_virtual_game_controller_at_the_window_reaches_the_host() {
    let addr = format!("127.0.0.1:{}", free_port());
    let Session {
        mut daemon,
        token,
        dir: _dir,
        ..
    } = session("pads", &["--listen", &addr]);
    let host = Lines::read(&mut daemon);
    let display = Display::start();
    // SAFETY: the only test in this binary, and no other thread reads the environment yet.
    unsafe { std::env::set_var("DISPLAY", &display.name) };

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let config = moq_sub::Config {
        connect: lantern_net::ConnectArgs {
            url: vec![format!("http://{addr}/").parse().unwrap()],
            ..Default::default()
        },
        name: "pads".into(),
        output: None,
        frames: None,
        stats: false,
        join: moq_sub::Join::default(),
        latency_log: None,
        audio_out: None,
        av_sync: false,
        feedback: false,
        timeout: Duration::from_secs(30),
        input: Some(moq_sub::input::InputConfig {
            credential: Some(lantern_net::grant::Credential::parse(&token).unwrap()),
            ..Default::default()
        }),
        window: Some(moq_sub::window::WindowConfig {
            title: "pads - Lantern".into(),
            ..Default::default()
        }),
        sdp: None,
        limits: Default::default(),
        record: None,
    };
    let (events, _lines) = moq_sub::events();
    let viewer = runtime.spawn(moq_sub::run(config, cancel.clone(), events));
    let window = display.window("pads - Lantern", None, LONG);
    // Pads' events go to the window that has the focus.
    display.focus(&window);
    wait_for("the host to authorize the viewer", LONG, || {
        host.last_input()
            .is_some_and(|input| input["authorized"].as_u64() >= Some(1))
    });

    let pad = VirtualPad::plug();
    pad.axis(
        sys::SDL_GameControllerAxis::SDL_CONTROLLER_AXIS_LEFTY,
        -32768,
    );
    // The window sends only once the host listens: press and release until states arrive.
    let mut down = false;
    wait_for("the pad's states at the host", LONG, || {
        down = !down;
        pad.button(sys::SDL_GameControllerButton::SDL_CONTROLLER_BUTTON_A, down);
        host.last_input()
            .is_some_and(|input| input["pad_states"].as_u64() >= Some(3))
    });
    pad.unplug();

    cancel.cancel();
    runtime.block_on(viewer).unwrap().unwrap();
    let out = daemon.interrupt(LONG);
    assert!(out.status.code().is_some());
    let input = host.last_input().unwrap();
    assert!(input["pad_states"].as_u64() >= Some(3), "{input}");
    if !std::path::Path::new("/dev/uinput").exists() {
        assert_eq!(input["pads_injected"], 0, "{input}");
    }
    for (reason, count) in input["dropped"].as_object().unwrap() {
        assert_eq!(count, 0, "dropped as {reason}: {input}");
    }
    no_leftovers("pads");
}
