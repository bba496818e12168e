//! Boots a kernel and an initramfs under qemu, with the serial console going to a file, and
//! always stops the guest: when it powers off, or at the hard timeout, when it is killed.
//!
//! Acceleration: `TLD_VM_ACCEL=kvm|tcg` forces one; by default KVM is tried when `/dev/kvm` is
//! usable, and the boot falls back to TCG (`-cpu max`) if KVM fails (nested virtualisation
//! often ends in "KVM internal error ... emulation failure", which pauses the guest rather than
//! ending qemu). The failed attempt's qemu output (a register dump) is kept in a log of its
//! own; [`Outcome::kvm_failure`] says in one line why KVM was not used and where that log is.

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
    /// Under TCG, run every vCPU on one host thread (`-accel tcg,thread=single`) rather than
    /// one thread each. No vCPU can then run a stale translation of code another vCPU just
    /// patched (the known int3 crash, see [`Crash::is_known_emulator_crash`]), at the cost of
    /// parallelism: right for tests that count and compare CPU time, wrong for wake-up latency.
    pub tcg_single_thread: bool,
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
    /// Why KVM was not used, when it was tried and failed: one line, naming the log that
    /// holds qemu's full output of the failed attempt.
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
        None => kvm_usable() && KVM_FAILED.get().is_none(),
    };
    // KVM failed in an earlier boot of this process: straight to TCG, with the same reason.
    let mut kvm_failure = KVM_FAILED.get().filter(|_| forced.is_none()).cloned();
    if try_kvm {
        match run_once(boot, Accel::Kvm)? {
            Attempt::Ran(outcome) => return Ok(outcome),
            Attempt::AccelFailed(why) => {
                if forced.is_some() {
                    return Err(Error::Failed(format!("KVM was forced but failed: {why}")));
                }
                let _ = KVM_FAILED.set(why.clone());
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

/// Why KVM failed, once it has in this process: later boots do not try it again.
static KVM_FAILED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

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
    let qemu_log = boot.console.with_extension(match accel {
        Accel::Kvm => "kvm.qemu",
        Accel::Tcg => "qemu",
    });
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
    let accel_arg = match accel {
        Accel::Tcg if boot.tcg_single_thread => "tcg,thread=single",
        _ => accel.name(),
    };
    let mut cmd = Command::new(QEMU);
    cmd.args(["-accel", accel_arg, "-cpu", cpu])
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
    supervise(child, accel, &boot.console, &qemu_log, boot.timeout)
}

/// Waits for a started guest (`child`, whose serial console goes to `console` and whose own
/// output to `qemu_log`) to end, and kills it at `timeout`. Under KVM, a sign in qemu's output
/// that KVM cannot run the guest ends the attempt at once.
fn supervise(
    child: Child,
    accel: Accel,
    console: &std::path::Path,
    qemu_log: &std::path::Path,
    timeout: Duration,
) -> Result<Attempt> {
    let mut guard = Guard(child);
    let start = Instant::now();
    let read_console = || fs::read_to_string(console).unwrap_or_default();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let qemu_says = fs::read_to_string(qemu_log).unwrap_or_default();
        if accel == Accel::Kvm {
            if let Some(sign) = KVM_FAILURES.iter().find(|s| qemu_says.contains(*s)) {
                guard.kill();
                // qemu follows the sign with a register dump: it stays in the log.
                let line = qemu_says
                    .lines()
                    .find(|l| l.contains(sign))
                    .unwrap_or(sign)
                    .trim();
                return Ok(Attempt::AccelFailed(format!(
                    "{line}; qemu's output is in {}",
                    qemu_log.display()
                )));
            }
        }
        match guard.0.try_wait() {
            Ok(Some(status)) => {
                let console = read_console();
                if !status.success() && console.trim().is_empty() {
                    // One line: qemu's error if it printed one; the rest stays in its log.
                    let error = qemu_says
                        .lines()
                        .find(|l| l.contains("error"))
                        .or_else(|| qemu_says.lines().last())
                        .unwrap_or("")
                        .trim();
                    return Ok(Attempt::AccelFailed(format!(
                        "{QEMU} exited with {status}: {error}; qemu's output is in {}",
                        qemu_log.display()
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
        if start.elapsed() >= timeout {
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

/// A kernel crash seen on a guest's console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crash {
    /// The first line of the crash report.
    pub line: String,
    /// Whether it is the emulator's known crash (see [`Crash::is_known_emulator_crash`]).
    pub int3: bool,
}

impl Crash {
    /// Whether this crash, under `accel`, is the one known emulator problem that a run may be
    /// repeated for: under TCG with several vCPUs, the guest kernel can crash with
    /// "Oops: int3" at a site it just patched (a static key flipped when a sched_ext scheduler
    /// attaches or detaches, or the kernel patching itself while booting), because another
    /// vCPU still ran a stale translation of the old bytes. Every other crash (an Oops of
    /// another kind, a BUG, a panic, or any crash under KVM) may be a real kernel or scheduler
    /// bug and is never retried.
    pub fn is_known_emulator_crash(&self, accel: Accel) -> bool {
        accel == Accel::Tcg && self.int3
    }
}

/// The kernel crash on `console`, if the guest kernel crashed.
pub fn kernel_crash(console: &str) -> Option<Crash> {
    let line = console
        .lines()
        .find(|l| l.contains("Oops:") || l.contains("Kernel panic") || l.contains("BUG: "))?
        .trim_end_matches('\r')
        .trim()
        .to_string();
    Some(Crash {
        int3: line.contains("Oops: int3"),
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner's own timeout: a "guest" that prints a line and then hangs is killed at the
    /// timeout, and the outcome carries the console with that line. A shell stands in for qemu,
    /// writing its "serial console" to the same kind of file.
    #[test]
    fn a_hung_guest_is_killed_at_the_timeout() {
        let dir = std::env::temp_dir().join(format!("tld-vm-hang-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let console = dir.join("console.log");
        let qemu_log = dir.join("console.qemu");
        fs::write(&qemu_log, "").unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo 'TLDVM HANGING-NOW' > {}; exec sleep 100",
                console.display()
            ))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = Instant::now();
        let attempt = supervise(
            child,
            Accel::Tcg,
            &console,
            &qemu_log,
            Duration::from_secs(2),
        )
        .unwrap();
        let Attempt::Ran(outcome) = attempt else {
            panic!("the hung guest was taken for an accelerator failure");
        };
        assert!(outcome.timed_out, "not killed: {outcome:?}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        assert!(
            crate::console::tail(&outcome.console, 3).contains("TLDVM HANGING-NOW"),
            "{outcome:?}"
        );
        // The process is gone (killed and reaped), not left behind.
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_kvm_failure_is_one_line_and_the_dump_stays_in_the_log() {
        let dir = std::env::temp_dir().join(format!("tld-vm-kvm-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let console = dir.join("console.log");
        let qemu_log = dir.join("console.kvm.qemu");
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf 'KVM internal error. Suberror: 1\\nemulation failure\\nEAX=00000000                  EBX=00000000\\nDR6=00000000ffff0ff0 DR7=0000000000000400\\nCode=00 00 00\\n'                  > {}; exec sleep 100",
                qemu_log.display()
            ))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let attempt = supervise(
            child,
            Accel::Kvm,
            &console,
            &qemu_log,
            Duration::from_secs(20),
        )
        .unwrap();
        let Attempt::AccelFailed(why) = attempt else {
            panic!("a KVM failure was not recognised");
        };
        assert!(
            !why.contains('\n') && !why.contains("DR6") && !why.contains("Code="),
            "{why}"
        );
        assert!(
            why.contains("KVM internal error") && why.contains("console.kvm.qemu"),
            "{why}"
        );
        assert!(fs::read_to_string(&qemu_log).unwrap().contains("DR6="));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_an_int3_under_tcg_is_the_known_emulator_crash() {
        let int3 = kernel_crash("[ 3.1] Oops: int3: 0000 [#1] SMP\r\n").unwrap();
        assert!(int3.is_known_emulator_crash(Accel::Tcg));
        assert!(!int3.is_known_emulator_crash(Accel::Kvm));
        let gp = kernel_crash("Oops: general protection fault, probably for ...").unwrap();
        assert!(!gp.is_known_emulator_crash(Accel::Tcg));
        let bug = kernel_crash("BUG: kernel NULL pointer dereference, address: 0").unwrap();
        assert!(!bug.is_known_emulator_crash(Accel::Tcg));
        assert_eq!(kernel_crash("TLDVM DONE\n"), None);
    }
}
