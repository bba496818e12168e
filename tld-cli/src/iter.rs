//! The BPF task iterator: loading it against the inspected map, and reading its records.
//!
//! `src/bpf/tld_iter.bpf.c` runs once per task in the kernel and writes, for each task with an
//! element in the map, a [`RecordHeader`] followed by copies of the element's data page and
//! metadata page. The pages are copied in the kernel, through the element's `__uptr` pointers:
//! no ptrace, no `/proc/PID/mem`, and the inspected processes are never stopped.
//!
//! Records are read as a stream and handed over one at a time, so memory stays bounded by one
//! record (about 8 KiB on 4 KiB pages) whatever the number of tasks.

use std::io::Read;
use std::os::fd::AsFd;
use std::sync::Mutex;

use libbpf_rs::{Iter, Link, Object, ObjectBuilder};

use crate::error::Error;
use crate::map::TldMap;
use crate::privilege;

/// `src/bpf/tld_iter.bpf.c`, compiled by the build script.
const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tld_iter.bpf.o"));

/// Mirrors `struct tld_iter_params`, the one variable of the object's `.rodata`.
#[repr(C)]
struct Params {
    data_size: u32,
    meta_size: u32,
    target: i32,
    start_in_value: u32,
    guarded: u32,
}

impl Params {
    fn bytes(&self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[0..4].copy_from_slice(&self.data_size.to_ne_bytes());
        b[4..8].copy_from_slice(&self.meta_size.to_ne_bytes());
        b[8..12].copy_from_slice(&self.target.to_ne_bytes());
        b[12..16].copy_from_slice(&self.start_in_value.to_ne_bytes());
        b[16..20].copy_from_slice(&self.guarded.to_ne_bytes());
        b
    }
}

/// `"TLDR"`, the first word of every record.
pub const RECORD_MAGIC: u32 = 0x5244_4c54;
/// Bytes of [`RecordHeader`].
pub const HEADER_SIZE: usize = 64;
/// [`RecordHeader::flags`]: `value_start` is the map value's `start` (the 7.x generation).
pub const START_IN_VALUE: u32 = 1;
/// [`RecordHeader::flags`]: a guard stamps the map's elements, and [`OWN`] says whether this
/// one carries its process's stamp.
pub const GUARDED: u32 = 2;
/// [`RecordHeader::flags`]: the element was registered by its thread's own process.
pub const OWN: u32 = 4;
/// The largest page the inspector accepts from the iterator (64 KiB pages).
const MAX_PAGE: u32 = 64 * 1024;

/// One task's element, as the iterator copied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTask {
    /// Thread group id: the process.
    pub pid: i32,
    /// Thread id.
    pub tid: i32,
    /// The thread's name.
    pub comm: String,
    /// The process's name (its main thread's).
    pub process: String,
    /// The data page's bytes, or `None` if the element has no data pointer.
    pub data: Option<Vec<u8>>,
    /// The metadata page's bytes, or `None` if the element has no meta pointer.
    pub meta: Option<Vec<u8>>,
    /// The element's `start`, in a map of the 7.x generation (whose readers take it from the
    /// value); `None` in the 6.18 generation (readers take it from the data page).
    pub value_start: Option<u16>,
    /// Where a guard (`tld-guard`) stamps the map's elements: whether this one was registered
    /// by its thread's own process (readers built with the guard's check ignore it otherwise).
    pub own: Option<bool>,
}

/// The header of a record; mirrors `struct tld_iter_rec` in `tld_iter.bpf.c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Bytes of the whole record.
    pub rec_size: u32,
    /// Thread group id.
    pub pid: i32,
    /// Thread id.
    pub tid: i32,
    /// The task's name, NUL-padded.
    pub comm: [u8; 16],
    /// The process's name, NUL-padded.
    pub pcomm: [u8; 16],
    /// Bytes of data page that follow.
    pub data_len: u32,
    /// Bytes of metadata page that follow the data page.
    pub meta_len: u32,
    /// The value's `start` (7.x).
    pub value_start: u32,
    /// [`START_IN_VALUE`], or 0.
    pub flags: u32,
}

impl RecordHeader {
    /// Parses and checks a header.
    pub fn parse(b: &[u8; HEADER_SIZE]) -> Result<RecordHeader, String> {
        let u32_at = |at: usize| u32::from_ne_bytes(b[at..at + 4].try_into().unwrap());
        if u32_at(0) != RECORD_MAGIC {
            return Err(format!("bad record magic {:#x}", u32_at(0)));
        }
        let h = RecordHeader {
            rec_size: u32_at(4),
            pid: u32_at(8) as i32,
            tid: u32_at(12) as i32,
            comm: b[16..32].try_into().unwrap(),
            pcomm: b[32..48].try_into().unwrap(),
            data_len: u32_at(48),
            meta_len: u32_at(52),
            value_start: u32_at(56),
            flags: u32_at(60),
        };
        let expected = HEADER_SIZE as u64 + u64::from(h.data_len) + u64::from(h.meta_len);
        if h.data_len > MAX_PAGE || h.meta_len > MAX_PAGE || u64::from(h.rec_size) != expected {
            return Err(format!(
                "inconsistent record: {} bytes with {} of data and {} of metadata",
                h.rec_size, h.data_len, h.meta_len
            ));
        }
        Ok(h)
    }
}

/// The text of a NUL-padded name field.
fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Reads records from the iterator's output, one at a time.
pub struct Records<R> {
    input: R,
    done: bool,
}

impl<R: Read> Records<R> {
    /// Reads records from `input`.
    pub fn new(input: R) -> Records<R> {
        Records { input, done: false }
    }

    /// Fills `buf` completely; `Ok(false)` if the input ended before its first byte.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, String> {
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err("the iterator's output ends inside a record".into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading the iterator: {e}")),
            }
        }
        Ok(true)
    }

    fn next_record(&mut self) -> Result<Option<RawTask>, String> {
        let mut header = [0u8; HEADER_SIZE];
        if !self.fill(&mut header)? {
            return Ok(None);
        }
        let h = RecordHeader::parse(&header)?;
        let mut page = |len: u32| -> Result<Option<Vec<u8>>, String> {
            if len == 0 {
                return Ok(None);
            }
            let mut bytes = vec![0u8; len as usize];
            if !self.fill(&mut bytes)? {
                return Err("the iterator's output ends inside a record".into());
            }
            Ok(Some(bytes))
        };
        let data = page(h.data_len)?;
        let meta = page(h.meta_len)?;
        Ok(Some(RawTask {
            pid: h.pid,
            tid: h.tid,
            comm: c_string(&h.comm),
            process: c_string(&h.pcomm),
            data,
            meta,
            value_start: (h.flags & START_IN_VALUE != 0).then_some(h.value_start as u16),
            own: (h.flags & GUARDED != 0).then_some(h.flags & OWN != 0),
        }))
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = Result<RawTask, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_record().transpose();
        if !matches!(item, Some(Ok(_))) {
            // After an error the stream is out of step: stop.
            self.done = true;
        }
        item
    }
}

/// The task iterator, loaded against one map and attached. Each [`Inspector::for_each`] runs it
/// once over every task.
pub struct Inspector {
    // The link must go before the object it belongs to.
    link: Link,
    _obj: Object,
}

static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());

fn collect_log(_level: libbpf_rs::PrintLevel, msg: String) {
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        log.push_str(&msg);
    }
}

impl Inspector {
    /// Loads the iterator for `map`, copying only tasks whose pid or tid is `target` (all
    /// tasks when it is `None`).
    pub fn new(map: &TldMap, target: Option<i32>) -> Result<Inspector, Error> {
        privilege::require_iterator()?;
        LIBBPF_LOG.lock().map(|mut l| l.clear()).ok();
        let previous = libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Info, collect_log)));
        let result = load(map, target);
        libbpf_rs::set_print(previous);
        let log = std::mem::take(&mut *LIBBPF_LOG.lock().unwrap_or_else(|e| e.into_inner()));
        let obj = result.map_err(|e| load_error(e, &log, map))?;
        let attached = obj
            .progs_mut()
            .find(|p| p.name() == "tld_dump")
            .map(|p| p.attach());
        let link = match attached {
            Some(Ok(link)) => link,
            Some(Err(e)) => {
                return Err(Error::Bpf {
                    action: "attaching the task iterator".into(),
                    detail: e.to_string(),
                })
            }
            None => {
                return Err(Error::Bpf {
                    action: "attaching the task iterator".into(),
                    detail: "the object has no program tld_dump".into(),
                })
            }
        };
        Ok(Inspector { link, _obj: obj })
    }

    /// Runs the iterator once and hands each task's record to `each`, in the kernel's order.
    /// Stops at the first malformed record.
    pub fn for_each(&self, mut each: impl FnMut(RawTask)) -> Result<(), Error> {
        let iter = Iter::new(&self.link).map_err(|e| Error::Bpf {
            action: "starting the task iterator".into(),
            detail: e.to_string(),
        })?;
        for record in Records::new(iter) {
            each(record.map_err(|detail| Error::Bpf {
                action: "reading the task iterator".into(),
                detail,
            })?);
        }
        Ok(())
    }

    /// Runs the iterator once and returns every task's record.
    pub fn snapshot(&self) -> Result<Vec<RawTask>, Error> {
        let mut tasks = Vec::new();
        self.for_each(|t| tasks.push(t))?;
        Ok(tasks)
    }
}

/// Opens the object, points its map at `map`, sets its parameters, and loads it.
fn load(map: &TldMap, target: Option<i32>) -> libbpf_rs::Result<Object> {
    let mut open = ObjectBuilder::default().open_memory(OBJECT)?;
    let params = Params {
        data_size: map.layout.data_size,
        meta_size: map.layout.meta_size,
        target: target.unwrap_or(0),
        start_in_value: u32::from(map.generation.start_in_value()),
        guarded: u32::from(map.guard_key.is_some()),
    }
    .bytes();
    let (mut reused, mut set) = (false, false);
    for mut m in open.maps_mut() {
        let name = m.name().to_string_lossy().into_owned();
        if name == "tld_data_map" {
            m.reuse_fd(map.fd.as_fd())?;
            reused = true;
        } else if name == "tld_guard_key" {
            if let Some(key) = &map.guard_key {
                m.reuse_fd(key.as_fd())?;
            }
        } else if name.ends_with(".rodata") {
            if let Some(value) = m.initial_value_mut() {
                if value.len() >= params.len() {
                    value[..params.len()].copy_from_slice(&params);
                    set = true;
                }
            }
        }
    }
    if !(reused && set) {
        return Err(libbpf_rs::Error::from(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the iterator's object lacks its map or its parameters",
        )));
    }
    open.load()
}

/// The errno in a libbpf-rs error, which shows it only in its message ("... (os error 13)").
fn os_error(e: &libbpf_rs::Error) -> Option<i32> {
    let text = e.to_string();
    let at = text.rfind("(os error ")? + "(os error ".len();
    text[at..].split(')').next()?.parse().ok()
}

/// Words a failed load: a privilege problem, a map the verifier refuses, or anything else with
/// the end of libbpf's log.
fn load_error(e: libbpf_rs::Error, log: &str, map: &TldMap) -> Error {
    // A missing privilege is EPERM; the verifier refuses a program with EACCES.
    if os_error(&e) == Some(libc::EPERM) {
        return Error::Privilege {
            action: "loading the BPF task iterator".into(),
            needs: privilege::ITERATOR_NEEDS.into(),
            errno: None,
        };
    }
    let tail: Vec<&str> = log.lines().rev().take(12).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let mut detail = format!("{e}");
    if log.contains("invalid access to memory") || log.contains("invalid mem access") {
        detail.push_str(&format!(
            "\nthe verifier refuses to read the pages of map {} through its value's pointers: \
             its value is probably not two __uptr pointers of {} and {} bytes",
            map.label(),
            map.layout.data_size,
            map.layout.meta_size
        ));
        if !map.layout_from_btf {
            detail.push_str(
                " (those are the standard sizes, assumed because reading the map's BTF needs \
                 CAP_SYS_ADMIN; run tld as root to use the map's own)",
            );
        }
    }
    if !tail.is_empty() {
        detail.push_str("\nlibbpf:\n");
        detail.push_str(&tail.join("\n"));
    }
    Error::Bpf {
        action: "loading the BPF task iterator".into(),
        detail,
    }
}

/// The tasks `id` names: the threads of process `id`, or else (or with `thread`) thread `id`.
pub fn select(raw: Vec<RawTask>, id: i32, thread: bool) -> Vec<RawTask> {
    let is_process = !thread && raw.iter().any(|t| t.pid == id);
    raw.into_iter()
        .filter(|t| if is_process { t.pid == id } else { t.tid == id })
        .collect()
}

/// The error for an id that names no registered task.
pub fn not_found(id: i32, map: &TldMap) -> Error {
    Error::NotFound(format!(
        "neither a process nor a thread with id {id} has an element in map {} (it has not \
         registered, has exited, or registered in another map; `tld ps` lists the tasks that \
         have)",
        map.label()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: i32, tid: i32, comm: &str, data: &[u8], meta: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&RECORD_MAGIC.to_ne_bytes());
        let size = (HEADER_SIZE + data.len() + meta.len()) as u32;
        r.extend_from_slice(&size.to_ne_bytes());
        r.extend_from_slice(&pid.to_ne_bytes());
        r.extend_from_slice(&tid.to_ne_bytes());
        let mut c = [0u8; 16];
        c[..comm.len()].copy_from_slice(comm.as_bytes());
        r.extend_from_slice(&c);
        r.extend_from_slice(b"process\0\0\0\0\0\0\0\0\0");
        r.extend_from_slice(&(data.len() as u32).to_ne_bytes());
        r.extend_from_slice(&(meta.len() as u32).to_ne_bytes());
        r.extend_from_slice(&[0; 8]);
        r.extend_from_slice(data);
        r.extend_from_slice(meta);
        r
    }

    /// A reader that hands out at most 7 bytes per read, to exercise partial reads.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(7).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn errnos_of_libbpf_errors() {
        assert_eq!(
            os_error(&libbpf_rs::Error::from_raw_os_error(libc::EPERM)),
            Some(libc::EPERM)
        );
        assert_eq!(
            os_error(&libbpf_rs::Error::from_raw_os_error(libc::EACCES)),
            Some(libc::EACCES)
        );
    }

    #[test]
    fn reads_records_across_partial_reads() {
        let mut stream = record(10, 11, "worker", &[1; 64], &[2; 36]);
        stream.extend(record(10, 12, "no-pages", &[], &[]));
        let tasks: Vec<RawTask> = Records::new(Trickle(&stream))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(
            (
                tasks[0].pid,
                tasks[0].tid,
                tasks[0].comm.as_str(),
                tasks[0].process.as_str()
            ),
            (10, 11, "worker", "process")
        );
        assert_eq!(tasks[0].data.as_deref(), Some(&[1u8; 64][..]));
        assert_eq!(tasks[0].meta.as_deref(), Some(&[2u8; 36][..]));
        assert_eq!((tasks[1].data.clone(), tasks[1].meta.clone()), (None, None));
    }

    #[test]
    fn a_broken_stream_is_an_error_and_ends_the_records() {
        let mut stream = record(1, 1, "a", &[0; 8], &[0; 8]);
        stream.truncate(stream.len() - 1);
        let items: Vec<_> = Records::new(&stream[..]).collect();
        assert_eq!(items.len(), 1);
        assert!(items[0].as_ref().unwrap_err().contains("ends inside"));

        let mut bad = record(1, 1, "a", &[], &[]);
        bad[4] = 99; // rec_size disagrees with the lengths
        let items: Vec<_> = Records::new(&bad[..]).collect();
        assert!(items[0].as_ref().unwrap_err().contains("inconsistent"));

        let items: Vec<_> = Records::new(&[0u8; HEADER_SIZE][..]).collect();
        assert!(items[0].as_ref().unwrap_err().contains("magic"));
    }
}
