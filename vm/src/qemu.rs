//! Boots a kernel and an initramfs under qemu, with the serial console going to a file, and
//! always stops the guest: when it powers off, or at the hard timeout, when it is killed.
//!
//! Acceleration: `TLD_VM_ACCEL=kvm|tcg` forces one; by default KVM is tried when `/dev/kvm` is
//! usable, and the boot falls back to TCG (`-cpu max`) if KVM fails (nested virtualisation
//! often ends in "KVM internal error ... emulation failure", which pauses the guest rather than
//! ending qemu).

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{on_path, Error, Result};

/// Forces the accelerator.
pub const ACCEL_ENV: &str = "TLD_VM_ACCEL";
/// The qemu binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// What to boot.
#[derive(Clone, Debug)]
pub struct Boot {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// The kernel command line, beyond the console settings.
    pub append: String,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Memory, in MiB.
    pub memory_mib: u32,
    /// The guest is killed after this long.
    pub timeout: Duration,
    /// Where the serial console goes; qemu's own messages go next to it (`.qemu` suffix).
    pub console: PathBuf,
}

/// The accelerator a boot ran with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// qemu's emulator.
    Tcg,
}

impl Accel {
    /// Its name, as qemu spells it.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// How a boot ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The accelerator it ran with.
    pub accel: Accel,
    /// Everything the guest printed on its serial console.
    pub console: String,
    /// How long it ran.
    pub elapsed: Duration,
    /// Whether it hit the timeout and was killed.
    pub timed_out: bool,
    /// Why KVM was not used, when it was tried and failed.
    pub kvm_failure: Option<String>,
}

/// Boots `boot` and waits for the guest to power off or time out.
pub fn run(boot: &Boot) -> Result<Outcome> {
    if on_path(QEMU).is_none() {
        return Err(Error::Unavailable(format!(
            "{QEMU} is not installed (`make deps` installs Debian's qemu-system-x86)"
        )));
    }
    let forced = std::env::var(ACCEL_ENV).ok().filter(|a| !a.is_empty());
    let try_kvm = match forced.as_deref() {
        Some("kvm") => true,
        Some("tcg") => false,
        Some(other) => {
            return Err(Error::Failed(format!(
                "{ACCEL_ENV}={other}: use kvm or tcg"
            )))
        }
        None => kvm_usable(),
    };
    let mut kvm_failure = None;
    if try_kvm {
        match run_once(boot, Accel::Kvm)? {
            Attempt::Ran(outcome) => return Ok(outcome),
            Attempt::AccelFailed(why) => {
                if forced.is_some() {
                    return Err(Error::Failed(format!("KVM was forced but failed: {why}")));
                }
                kvm_failure = Some(why);
            }
        }
    }
    match run_once(boot, Accel::Tcg)? {
        Attempt::Ran(mut outcome) => {
            outcome.kvm_failure = kvm_failure;
            Ok(outcome)
        }
        Attempt::AccelFailed(why) => Err(Error::Failed(format!("qemu failed: {why}"))),
    }
}

fn kvm_usable() -> bool {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

enum Attempt {
    Ran(Outcome),
    /// The accelerator does not work here; another may.
    AccelFailed(String),
}

/// Signs in qemu's output that KVM cannot run this guest.
const KVM_FAILURES: [&str; 4] = [
    "KVM internal error",
    "emulation failure",
    "failed to initialize kvm",
    "Could not access KVM kernel module",
];

fn run_once(boot: &Boot, accel: Accel) -> Result<Attempt> {
    let qemu_log = boot.console.with_extension("qemu");
    let _ = fs::remove_file(&boot.console);
    let log = fs::File::create(&qemu_log)
        .map_err(|e| Error::Failed(format!("{}: {e}", qemu_log.display())))?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error::Failed(format!("{}: {e}", qemu_log.display())))?;
    let cpu = match accel {
        Accel::Kvm => "host",
        Accel::Tcg => "max",
    };
    let mut cmd = Command::new(QEMU);
    cmd.args(["-accel", accel.name(), "-cpu", cpu])
        .args(["-smp", &boot.cpus.to_string()])
        .args(["-m", &boot.memory_mib.to_string()])
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", boot.console.display()))
        .arg("-kernel")
        .arg(&boot.kernel)
        .arg("-initrd")
        .arg(&boot.initrd)
        .arg("-append")
        .arg(format!("console=ttyS0 panic=-1 {}", boot.append))
        // qemu must never take over the terminal.
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    let child = cmd
        .spawn()
        .map_err(|e| Error::Failed(format!("starting {QEMU}: {e}")))?;
    let mut guard = Guard(child);
    let start = Instant::now();
    let read_console = || fs::read_to_string(&boot.console).unwrap_or_default();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let qemu_says = fs::read_to_string(&qemu_log).unwrap_or_default();
        if accel == Accel::Kvm {
            if let Some(sign) = KVM_FAILURES.iter().find(|s| qemu_says.contains(*s)) {
                guard.kill();
                return Ok(Attempt::AccelFailed(format!(
                    "{sign}: {}",
                    crate::console::tail(&qemu_says, 3)
                )));
            }
        }
        match guard.0.try_wait() {
            Ok(Some(status)) => {
                let console = read_console();
                if !status.success() && console.trim().is_empty() {
                    return Ok(Attempt::AccelFailed(format!(
                        "{QEMU} exited with {status}: {}",
                        crate::console::tail(&qemu_says, 5)
                    )));
                }
                return Ok(Attempt::Ran(Outcome {
                    accel,
                    console,
                    elapsed: start.elapsed(),
                    timed_out: false,
                    kvm_failure: None,
                }));
            }
            Ok(None) => {}
            Err(e) => return Err(Error::Failed(format!("waiting for {QEMU}: {e}"))),
        }
        if start.elapsed() >= boot.timeout {
            guard.kill();
            return Ok(Attempt::Ran(Outcome {
                accel,
                console: read_console(),
                elapsed: start.elapsed(),
                timed_out: true,
                kvm_failure: None,
            }));
        }
    }
}

/// Kills qemu when dropped, so that no path (a panic included) leaves a guest running.
struct Guard(Child);

impl Guard {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.kill();
        }
    }
}

/// The kernel command line the guest programs expect: quiet, the init script at `/init`, and
/// an oops ends the guest at once (it powers off through `panic=-1`) instead of hanging it.
pub fn default_append() -> String {
    "quiet loglevel=3 rdinit=/init oops=panic".to_string()
}

/// The first line of a kernel crash report on `console`, if the guest kernel crashed.
///
/// Under TCG with several vCPUs, the guest kernel can crash with "Oops: int3" at a site it
/// just patched (a static key flipped when a sched_ext scheduler attaches or detaches): another
/// vCPU still ran a stale translation of the old bytes. That is an emulation problem, not a
/// kernel or scheduler one; callers retry such a run (twice at most).
pub fn kernel_crash(console: &str) -> Option<String> {
    console
        .lines()
        .find(|l| l.contains("Oops:") || l.contains("Kernel panic") || l.contains("BUG: kernel"))
        .map(|l| l.trim_end_matches('\r').trim().to_string())
}
