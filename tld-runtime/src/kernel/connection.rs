//! The connection to the kernel: which `tld_data_map` threads are registered in, how the runtime
//! gets one (`connect`, `connect_pinned`, auto-connect, the pin watcher), and moving every
//! thread from one map to the next.
//!
//! The watcher also follows the guard (`tld-guard`), where one runs: the guard counts, per
//! process, the updates by other processes that spoofed its threads' elements, in a map pinned
//! at `$TLD_GUARD_EVENTS` (else `/sys/fs/bpf/tld_guard_events`). When this process's count
//! grows, the watcher registers every thread again, which puts the threads' own pages back
//! (stamped by the guard as this process's), within [`GUARD_TICK`]. It does the same when a
//! guard's map appears at the pin or another replaces it (a restarted scheduler's guard draws a
//! new secret, so the old stamps no longer verify). Registrations check for the stamp only in
//! the map the guard says it guards (the entry of key 0 in its event map).
//!
//! A connection changes all at once or not at all. Moving to a new map registers every live
//! thread in it first; only if all of them are registered does the new map replace the old one,
//! whose elements are then deleted (best effort: page retirement keeps threads isolated even
//! from elements left behind). If any registration fails, the elements made in the new map are
//! deleted and nothing else changes.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::kernel::connection_state::{ConnState, PinIdentity};
use crate::kernel::tld_map::TldMap;
use crate::locks::{read, write};
use crate::runtime::Runtime;
use crate::status::MapSource;
use crate::threads::pool::Block;
use crate::threads::thread_state;
use crate::threads::thread_table::SlotId;

/// Where libbpf's `LIBBPF_PIN_BY_NAME` pins a map named `tld_data_map`.
pub const DEFAULT_PIN_PATH: &str = tld_wire::paths::DEFAULT_DATA_MAP_PIN;
/// Environment variable naming the pin path for auto-connect; empty switches auto-connect off.
pub const PIN_PATH_ENV: &str = tld_wire::paths::MAP_PATH_ENV;
/// Environment variable setting how often, in milliseconds, the watcher looks at the pin path;
/// 0 switches the watcher off. The default is 1000.
pub const WATCH_INTERVAL_ENV: &str = tld_wire::paths::WATCH_INTERVAL_ENV;
/// Environment variable naming the guard's event map pin; the default is
/// [`DEFAULT_GUARD_EVENTS`].
pub const GUARD_EVENTS_ENV: &str = tld_wire::paths::GUARD_EVENTS_ENV;
/// Where `tld-guard` pins its event map by default.
pub const DEFAULT_GUARD_EVENTS: &str = tld_wire::paths::DEFAULT_GUARD_EVENTS_PIN;
/// How often the watcher looks at the guard's events, when a guard's event map is pinned (or
/// at the watch interval, if that is shorter).
pub const GUARD_TICK: Duration = Duration::from_millis(100);

impl Runtime {
    /// Registers the calling thread, whose record is in `slot` with thread id `tid` and block
    /// `block`, with every map of the connection, connecting first through auto-connect if no
    /// main map is connected. While the watcher waits for a pin to appear, a new thread leaves
    /// the looking to it (`retry` false), which saves a syscall.
    ///
    /// The common case takes the connection's read lock twice, before and after the system
    /// calls, and no other lock: many threads register at once without waiting for each other.
    pub(crate) fn register(
        &'static self,
        slot: SlotId,
        tid: i32,
        block: Block,
        retry: bool,
    ) -> Result<(), Error> {
        let meta = self.published()?;
        // Why there is no main map, when there is none.
        let mut failure = None;
        let (maps, generation) = {
            let conn = read(&self.conn);
            if conn.map.is_none() {
                if !retry && conn.watching {
                    failure = Some(conn.failure.clone().unwrap_or(Error::AutoConnectDisabled));
                } else {
                    drop(conn);
                    let mut conn = write(&self.conn);
                    // Connecting registers every live thread, this one included; so did
                    // whoever connected since the read lock was let go.
                    if conn.map.is_some() {
                        return Ok(());
                    }
                    match self.auto_connect(&mut conn) {
                        Ok(()) => return Ok(()),
                        Err(e) => failure = Some(e),
                    }
                }
                let conn = read(&self.conn);
                (conn.maps().cloned().collect::<Vec<_>>(), conn.generation)
            } else {
                (conn.maps().cloned().collect::<Vec<_>>(), conn.generation)
            }
        };
        if maps.is_empty() {
            return Err(failure.unwrap_or(Error::AutoConnectDisabled));
        }
        thread_state::mark_exposed();
        let start = self.layout.plan.start;
        let mut first_error = None;
        for map in &maps {
            if let Err(e) = map.register(tid, block.addr() as u64, meta, start) {
                first_error.get_or_insert(e);
            }
        }
        let conn = read(&self.conn);
        // A change of the maps increments the generation under the write lock: unchanged, it
        // says that none came in between, and none can until the read lock is let go.
        if conn.generation == generation {
            if first_error.is_none() {
                self.threads.mark_registered(slot, generation);
            }
            drop(conn);
            if let Some(e) = &first_error {
                self.registration_errors.record(e);
            }
            return match (first_error, failure) {
                (Some(e), _) | (None, Some(e)) => Err(e),
                (None, None) => Ok(()),
            };
        }
        // The maps changed meanwhile, and the change registered this thread itself wherever it
        // now belongs: an element just made in a map that is no longer connected is stale.
        let stale: Vec<_> = maps
            .into_iter()
            .filter(|m| !conn.maps().any(|now| now.same_map(m)))
            .collect();
        drop(conn);
        for map in stale {
            let _ = map.unregister(tid);
        }
        Ok(())
    }

    fn auto_connect(&'static self, conn: &mut ConnState) -> Result<(), Error> {
        if conn.explicit {
            return Err(conn.failure.clone().unwrap_or(Error::AutoConnectDisabled));
        }
        let Some(path) = auto_connect_path() else {
            conn.failure = Some(Error::AutoConnectDisabled);
            return Err(Error::AutoConnectDisabled);
        };
        let result = self.connect_pin(conn, &path);
        if let Err(e) = &result {
            self.record_failure(conn, e.clone());
        }
        self.start_watcher(conn);
        result
    }

    /// Opens the map pinned at `path` and moves every thread to it. On failure nothing changes
    /// but `rejected_pin`.
    pub(crate) fn connect_pin(&self, conn: &mut ConnState, path: &Path) -> Result<(), Error> {
        let identity = pin_identity(path);
        let result = TldMap::open_pinned(path)
            .and_then(|map| self.install(conn, map, MapSource::Pinned(path.to_path_buf())));
        match &result {
            Ok(()) => {
                conn.pin_identity = identity;
                conn.rejected_pin = None;
            }
            Err(_) => conn.rejected_pin = identity,
        }
        result
    }

    /// Registers every live thread in `map` and, if all of them are, makes it the connected
    /// map and deletes their elements in the previous one. If any registration fails, deletes
    /// the elements made in `map` and leaves everything else as it was.
    pub(crate) fn install(
        &self,
        conn: &mut ConnState,
        map: TldMap,
        source: MapSource,
    ) -> Result<(), Error> {
        let meta = self.published()?;
        let start = self.layout.plan.start;
        let same_map = conn.map.as_ref().is_some_and(|old| old.same_map(&map));
        if conn.also.iter().any(|m| m.same_map(&map)) {
            return Err(Error::NotATldMap {
                reason: format!(
                    "map \"{}\" (id {}) is connected already as an additional map \
                     (connect_also)",
                    map.name(),
                    map.id()
                ),
            });
        }
        let old_generation = conn.generation;
        let generation = conn.generation + 1;
        map.set_guarded(GuardEvents::open().covers(map.id()));
        // Under the write lock no thread changes its record: every record is whole, and a
        // thread that registers after this is done finds the new generation.
        let threads = &self.threads;
        let mut done = Vec::with_capacity(threads.len());
        let mut failure = None;
        for (slot, record) in threads.iter() {
            threads.mark_exposed(slot);
            let mut registered = map.register(record.tid, record.block.addr() as u64, meta, start);
            // A thread not yet in the additional maps goes there too, so that a registered
            // thread is in every map of the connection.
            if registered.is_ok() && record.registered != old_generation {
                for also in &conn.also {
                    registered = also.register(record.tid, record.block.addr() as u64, meta, start);
                    if registered.is_err() {
                        break;
                    }
                }
            }
            match registered {
                Ok(()) => done.push((slot, record.tid)),
                // The thread is exiting; its record is about to go.
                Err(e) if e.errno() == Some(libc::ESRCH) => continue,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            // The first element made shows whether the kernel pins the pages at all.
            if done.len() == 1 && !same_map {
                if let Err(e) = map.check_pins(record.tid) {
                    failure = Some(e);
                    break;
                }
            }
        }
        if done.is_empty() && failure.is_none() && !same_map {
            failure = self.probe(&map, meta).err();
        }
        if let Some(e) = failure {
            // Registering again in the map already connected changed nothing worth undoing.
            if !same_map {
                for &(_, tid) in &done {
                    let _ = map.unregister(tid);
                }
            }
            return Err(e);
        }
        for &(slot, _) in &done {
            threads.mark_registered(slot, generation);
        }
        let old = conn.map.replace(Arc::new(map));
        conn.generation = generation;
        conn.source = Some(source);
        conn.failure = None;
        conn.last_error = None;
        if let Some(old) = old.filter(|_| !same_map && self.knobs.clean_old_maps) {
            for (_, record) in threads.iter() {
                let _ = old.unregister(record.tid);
            }
        }
        Ok(())
    }

    /// Registers every live thread in `map` as well, and keeps it among the connection's
    /// additional maps. All or nothing, as [`Runtime::install`]: on failure the elements made
    /// in `map` are deleted and nothing else changes.
    pub(crate) fn install_also(&self, conn: &mut ConnState, map: TldMap) -> Result<(), Error> {
        let meta = self.published()?;
        let start = self.layout.plan.start;
        if conn.maps().any(|m| m.same_map(&map)) {
            // Connected already: every registered thread is in it.
            return Ok(());
        }
        let old_generation = conn.generation;
        map.set_guarded(GuardEvents::open().covers(map.id()));
        // Before, a thread was in every map if it was registered, or if there were none.
        let none_before = !conn.has_maps();
        let threads = &self.threads;
        let mut done = Vec::with_capacity(threads.len());
        let mut failure = None;
        for (slot, record) in threads.iter() {
            threads.mark_exposed(slot);
            match map.register(record.tid, record.block.addr() as u64, meta, start) {
                Ok(()) => done.push((
                    slot,
                    record.tid,
                    none_before || record.registered == old_generation,
                )),
                Err(e) if e.errno() == Some(libc::ESRCH) => continue,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            if done.len() == 1 {
                if let Err(e) = map.check_pins(record.tid) {
                    failure = Some(e);
                    break;
                }
            }
        }
        if done.is_empty() && failure.is_none() {
            failure = self.probe(&map, meta).err();
        }
        if let Some(e) = failure {
            for &(_, tid, _) in &done {
                let _ = map.unregister(tid);
            }
            return Err(e);
        }
        conn.generation += 1;
        // A thread is registered when it is in every map: in this one now, and in the others
        // if it was before.
        for &(slot, _, in_every_map) in &done {
            if in_every_map {
                threads.mark_registered(slot, conn.generation);
            }
        }
        conn.also.push(Arc::new(map));
        Ok(())
    }

    /// Checks that `map` pins pages when no thread could show it: registers the calling thread
    /// with a spare block, looks the element up, and deletes it again.
    fn probe(&self, map: &TldMap, meta: u64) -> Result<(), Error> {
        let block = self
            .pool
            .take()
            .map_err(|e| Error::from_errno("mapping a page", e))?;
        // SAFETY: the block came from the pool, so nobody uses it, and it has `block_size`
        // bytes, as does the template.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.layout.template.as_ptr(),
                block.addr() as *mut u8,
                self.layout.block_size,
            )
        };
        let tid = crate::kernel::sys::gettid();
        let result = map
            .register(tid, block.addr() as u64, meta, self.layout.plan.start)
            .and_then(|()| map.check_pins(tid));
        let _ = map.unregister(tid);
        // SAFETY: the block is ours alone again: its element is gone (or stale), and it is
        // not in the pool.
        if unsafe { crate::threads::pool::retire(block.addr(), self.layout.block_size) } {
            self.pool.put(block);
        }
        result
    }

    /// Lets the map go, deleting the threads' elements in it (the map may live on in a
    /// loaded program), and records why.
    fn detach(&self, conn: &mut ConnState, reason: Error) {
        let old = conn.map.take();
        // Registrations under way in the old map are stale: see `register`. Threads that were
        // registered stay so in the additional maps, which are all that is left.
        conn.generation += 1;
        if !conn.also.is_empty() {
            for (slot, record) in self.threads.iter() {
                if record.registered == conn.generation - 1 {
                    self.threads.mark_registered(slot, conn.generation);
                }
            }
        }
        if let Some(old) = old.filter(|_| self.knobs.clean_old_maps) {
            for (_, record) in self.threads.iter() {
                let _ = old.unregister(record.tid);
            }
        }
        conn.source = None;
        conn.pin_identity = None;
        conn.failure = Some(reason);
        conn.last_error = None;
    }

    /// Records a failed attempt: as the reason the runtime is detached, or, while a map stays
    /// connected, as the last error.
    fn record_failure(&self, conn: &mut ConnState, e: Error) {
        if conn.map.is_some() {
            conn.last_error = Some(e);
        } else {
            conn.failure = Some(e);
        }
    }

    /// Runs an explicit `connect`: `open` makes the change; if it fails, only the record of why
    /// changes. Auto-connect stops once an explicit connect succeeds, or when nothing was
    /// connected.
    pub(crate) fn connect(
        &'static self,
        open: impl FnOnce(&mut ConnState) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut conn = write(&self.conn);
        let was_connected = conn.map.is_some();
        let result = self.published().and_then(|_| open(&mut conn));
        if result.is_ok() || !was_connected {
            conn.explicit = true;
        }
        if let Err(e) = &result {
            self.record_failure(&mut conn, e.clone());
        }
        self.start_watcher(&mut conn);
        result
    }

    /// Starts the thread that follows the pin path, if the connection has one to follow and
    /// the watcher is allowed ([`crate::set_watcher`], `TLD_WATCH_INTERVAL_MS`).
    pub(crate) fn start_watcher(&'static self, conn: &mut ConnState) {
        if conn.watching || !watcher_allowed() {
            return;
        }
        if self.watched_path(conn).is_none() && !(conn.has_maps() && guard_events_path().exists()) {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name(WATCHER_NAME.into())
            .stack_size(64 * 1024)
            .spawn(move || self.watch());
        conn.watching = spawned.is_ok();
    }

    /// Allows the watcher and starts it if there is something to follow, or stops it: the
    /// thread ends at its next wake (within the watch interval).
    pub(crate) fn set_watcher(&'static self, on: bool) {
        allow_watcher(on);
        if on {
            self.start_watcher(&mut write(&self.conn));
        }
    }

    /// The pin path the watcher follows: the one connected to, or auto-connect's.
    fn watched_path(&self, conn: &ConnState) -> Option<PathBuf> {
        match &conn.source {
            Some(MapSource::Pinned(path)) => Some(path.clone()),
            Some(MapSource::Fd) => None,
            None if conn.explicit => match &conn.failure {
                Some(Error::MapNotFound { path }) => Some(path.clone()),
                _ => None,
            },
            None => auto_connect_path(),
        }
    }

    /// The watcher's loop: a `stat` of the pin path when inotify reports a change in its
    /// directory, and once per interval in any case. A pin that appears is connected to, a pin
    /// that is replaced (a restarted scheduler) is moved to, and a pin that goes away is let go
    /// of. A pin that failed is not tried again until it changes. While a guard is pinned or a
    /// map is guarded, every [`GUARD_TICK`] it also looks at the guard's events for this
    /// process (a change of a map's contents makes no inotify event). It never touches a
    /// hint, so it has no page of its own. It ends when it has nothing left to follow, or when
    /// [`crate::set_watcher`] switches it off.
    fn watch(&'static self) {
        let Some(interval) = watch_interval() else {
            write(&self.conn).watching = false;
            return;
        };
        let mut guard = GuardEvents::default();
        let events = PinEvents::new();
        let mut last_look = Instant::now();
        let mut followed = self.followed_paths();
        events.watch(&followed);
        // A look right after the watch is set: a pin made before it sent no event to us.
        let mut first = true;
        loop {
            if !WATCHER_ALLOWED.load(Ordering::Relaxed) {
                let mut conn = write(&self.conn);
                // Checked again under the lock, which `set_watcher(true)` takes to start one.
                if !WATCHER_ALLOWED.load(Ordering::Relaxed) {
                    conn.watching = false;
                    return;
                }
            }
            let guarded = guard.fd.is_some()
                || read(&self.conn)
                    .maps()
                    .any(|m| m.guarded() || m.has_pending());
            let due = interval.saturating_sub(last_look.elapsed());
            let timeout = if guarded || guard.tried.is_none() {
                due.min(GUARD_TICK)
            } else {
                due
            };
            let changed = events.wait(timeout, &followed);
            let look = changed || first || last_look.elapsed() >= interval;
            first = false;
            self.follow_guard(&mut guard, look);
            if !look {
                continue;
            }
            last_look = Instant::now();
            // A directory mounted since the last look (bpffs) is another one to watch.
            followed = self.followed_paths();
            events.watch(&followed);
            // A look under the read lock; the write lock only when something changed.
            let (path, seen) = {
                let conn = read(&self.conn);
                (
                    self.watched_path(&conn),
                    (conn.pin_identity, conn.rejected_pin),
                )
            };
            let Some(path) = path else {
                let mut conn = write(&self.conn);
                if self.watched_path(&conn).is_none() && !(conn.has_maps() && guard.fd.is_some()) {
                    conn.watching = false;
                    return;
                }
                continue;
            };
            let now = pin_identity(&path);
            if now == seen.0 || (now.is_some() && now == seen.1) {
                continue;
            }
            let mut conn = write(&self.conn);
            if self.watched_path(&conn).as_ref() != Some(&path)
                || (conn.pin_identity, conn.rejected_pin) != seen
            {
                // Someone connected meanwhile: look again next time.
                continue;
            }
            match now {
                None => {
                    conn.rejected_pin = None;
                    self.detach(&mut conn, Error::MapNotFound { path });
                }
                Some(_) => {
                    if let Err(e) = self.connect_pin(&mut conn, &path) {
                        self.record_failure(&mut conn, e);
                    }
                }
            }
        }
    }

    /// The pins the watcher follows: the map's pin path, if any, and the guard's event map.
    fn followed_paths(&self) -> Vec<PathBuf> {
        let conn = read(&self.conn);
        self.watched_path(&conn)
            .into_iter()
            .chain(std::iter::once(guard_events_path()))
            .collect()
    }

    /// Looks at the guard's count of spoofed updates of this process's threads, and registers
    /// every thread again when it grew. With `reopen`, first opens the event map's pin again
    /// if it appeared or was replaced.
    ///
    /// A guard that appears, or is replaced (a restarted scheduler draws a new secret, so the
    /// stamps of the old one no longer verify), also has every thread registered again, and
    /// every map's registrations check for its stamp from then on.
    fn follow_guard(&self, guard: &mut GuardEvents, reopen: bool) {
        let first = guard.tried.is_none();
        if reopen || guard.fd.is_none() && first {
            match guard.refresh() {
                GuardChange::None => {}
                GuardChange::Gone => {
                    for map in read(&self.conn).maps() {
                        map.set_guarded(false);
                    }
                }
                GuardChange::New => {
                    let conn = write(&self.conn);
                    // At the first look, threads registered since connecting already saw
                    // this guard unless a map was connected before it appeared.
                    let stale = !first
                        || conn.maps().any(|m| {
                            m.generation().start_in_value() && !m.guarded() && guard.covers(m.id())
                        });
                    for map in conn.maps() {
                        map.set_guarded(guard.covers(map.id()));
                    }
                    if stale {
                        // Only where the new guard's stamps count: the map it guards.
                        for map in conn.maps().filter(|m| m.guarded()) {
                            let _ = self.register_in(map, |_| true);
                        }
                    }
                }
            }
        }
        self.verify_stamps(guard);
        let Some(spoofs) = guard.spoofs() else {
            return;
        };
        if spoofs <= guard.seen {
            self.audit(guard);
            return;
        }
        let now = Instant::now();
        guard.audit_until = Some(now + AUDIT_FOR);
        guard.audited = Some(now);
        // The threads whose elements carry the guard's mark of a spoofed one, found without
        // the lock (a lookup each), then registered again under it.
        write(&self.conn).guard_repairs += 1;
        let tids = self.thread_ids();
        let mut whole = true;
        for map in self.maps_where(TldMap::guarded) {
            let spoofed: Vec<i32> = tids.iter().copied().filter(|&t| map.spoofed(t)).collect();
            let Some(failed) = self.register_again(&map, &spoofed) else {
                continue;
            };
            // A registration that failed (the element's lock contended by the attacker's
            // updates, say) leaves the mark, and no new spoof may come to count: look again.
            whole &= failed.is_empty() && !spoofed.iter().any(|&t| map.spoofed(t));
        }
        // Until every mark is gone, the count is taken as unseen, and the next tick repairs
        // what is left.
        if whole {
            guard.seen = spoofs;
        }
    }

    /// While an attack goes on (a spoof seen in the last [`AUDIT_FOR`]), every
    /// [`AUDIT_EVERY`] looks at every thread's element in the guarded maps and registers again
    /// the threads whose elements carry no stamp, the mark of a spoofed one, or are gone:
    /// updates by another process for which the guard's program was skipped, or deletions,
    /// leave no count to follow.
    fn audit(&self, guard: &mut GuardEvents) {
        let Some(until) = guard.audit_until else {
            return;
        };
        let now = Instant::now();
        if now >= until {
            guard.audit_until = None;
            // The attack is over: every thread registers again once. A spoof for which the
            // guard's program was skipped, with stamp bytes copied from the victim's element,
            // looks right to user space (the page pointers are hidden from it), and only a new
            // registration replaces it.
            let tids = self.thread_ids();
            for map in self.maps_where(TldMap::guarded) {
                if let Some(failed) = self.register_again(&map, &tids) {
                    map.look_again(&failed);
                }
            }
            return;
        }
        if guard
            .audited
            .is_some_and(|at| now.duration_since(at) < AUDIT_EVERY)
        {
            return;
        }
        guard.audited = Some(now);
        let tids = self.thread_ids();
        for map in self.maps_where(TldMap::guarded) {
            let broken: Vec<i32> = tids
                .iter()
                .copied()
                .filter(|&t| map.needs_repair(t))
                .collect();
            if let Some(failed) = self.register_again(&map, &broken) {
                map.look_again(&failed);
            }
        }
    }

    /// Looks for the guard's stamp on the elements of the threads registered since the last
    /// look, and registers again those that lack it (the guard's program was skipped). The
    /// looks are made without the connection's lock; a thread registered again is looked at
    /// again next time.
    fn verify_stamps(&self, guard: &GuardEvents) {
        for map in self.maps_where(TldMap::has_pending) {
            let missing: Vec<i32> = map
                .take_pending()
                .into_iter()
                .filter(|&tid| map.guarded() && map.stamp_missing(tid))
                .collect();
            if missing.is_empty() {
                continue;
            }
            // Stamps missing in a row from a guard whose loader has exited: its pin outlived
            // it, and nothing stamps any more.
            if map.many_misses() && guard.maybe_gone() {
                map.set_guarded(false);
                continue;
            }
            if let Some(failed) = self.register_again(&map, &missing) {
                map.look_again(&failed);
            }
        }
    }

    /// The connected maps that `keep` selects, taken out from under the lock, so that their
    /// elements are looked at (a lookup each) without it.
    fn maps_where(&self, keep: impl Fn(&TldMap) -> bool) -> Vec<Arc<TldMap>> {
        read(&self.conn)
            .maps()
            .filter(|m| keep(m))
            .cloned()
            .collect()
    }

    /// The ids of the threads that have a block.
    fn thread_ids(&self) -> Vec<i32> {
        self.threads.iter().map(|(_, r)| r.tid).collect()
    }

    /// Registers again in `map`, under the connection's write lock, the threads in `tids`:
    /// those whose registration failed, or `None` if `map` is no longer connected (or there
    /// was nobody to register).
    fn register_again(&self, map: &Arc<TldMap>, tids: &[i32]) -> Option<Vec<i32>> {
        if tids.is_empty() {
            return None;
        }
        let conn = write(&self.conn);
        let connected = conn.maps().any(|m| Arc::ptr_eq(m, map));
        connected.then(|| self.register_in(map, |tid| tids.contains(&tid)))
    }

    /// Registers again in `map`, with their own pages, the threads for whose id `which` says
    /// so, and returns those whose registration failed (but for threads that are exiting).
    /// The caller holds the connection's write lock, under which every record is whole.
    fn register_in(&self, map: &TldMap, which: impl Fn(i32) -> bool) -> Vec<i32> {
        let mut failed = Vec::new();
        let Ok(meta) = self.published() else {
            return failed;
        };
        let start = self.layout.plan.start;
        // A thread that is exiting fails with ESRCH, and that is fine; any other failure is
        // recorded for `status()`.
        for (_, record) in self.threads.iter() {
            if which(record.tid) {
                match map.register(record.tid, record.block.addr() as u64, meta, start) {
                    Err(e) if e.errno() != Some(libc::ESRCH) => {
                        self.registration_errors.record(&e);
                        failed.push(record.tid);
                    }
                    _ => {}
                }
            }
        }
        failed
    }
}

/// The name of the watcher thread (as `/proc/self/task/*/comm` shows it).
pub(crate) const WATCHER_NAME: &str = "tld-watch";

/// Whether the watcher may run; [`crate::set_watcher`] sets it.
static WATCHER_ALLOWED: AtomicBool = AtomicBool::new(true);

/// Allows the watcher, or keeps it from running (a running one ends at its next wake).
pub(crate) fn allow_watcher(on: bool) {
    WATCHER_ALLOWED.store(on, Ordering::Relaxed);
}

/// Whether a watcher may run: [`crate::set_watcher`] has not switched it off, nor has
/// `TLD_WATCH_INTERVAL_MS=0`.
pub(crate) fn watcher_allowed() -> bool {
    WATCHER_ALLOWED.load(Ordering::Relaxed) && watch_interval().is_some()
}

/// What the watcher learns from inotify: that an entry appeared, went or moved in the
/// directory of a pin it follows. bpffs reports pins (`BPF_OBJ_PIN`), unpins (`unlink`) and
/// renames so; a change of a map's contents makes no event. Without inotify, the watcher only
/// polls.
struct PinEvents(Option<crate::kernel::sys::Inotify>);

impl PinEvents {
    fn new() -> PinEvents {
        PinEvents(crate::kernel::sys::Inotify::new().ok())
    }

    /// Watches the directories of `paths`. Again after a mount: the path then names another
    /// directory, which gets its own watch; the same directory keeps one.
    fn watch(&self, paths: &[PathBuf]) {
        let Some(inotify) = &self.0 else {
            return;
        };
        for dir in paths.iter().filter_map(|p| p.parent()) {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(dir) = std::ffi::CString::new(dir.as_os_str().as_bytes()) {
                // A directory that does not exist yet is found at a later look.
                let _ = inotify.watch_dir(&dir);
            }
        }
    }

    /// Waits up to `timeout`, and says whether an event may concern one of `paths`.
    fn wait(&self, timeout: Duration, paths: &[PathBuf]) -> bool {
        let Some(inotify) = &self.0 else {
            std::thread::sleep(timeout);
            return false;
        };
        inotify.wait(timeout).iter().any(|name| match name {
            Some(name) => paths
                .iter()
                .any(|p| p.file_name() == Some(name.as_os_str())),
            // Events were lost, or a watched directory went: look.
            None => true,
        })
    }
}

/// What a look at the guard's event pin found.
enum GuardChange {
    /// Nothing new.
    None,
    /// A guard's map that was not open before: a guard started, or another replaced it.
    New,
    /// The guard's map went away.
    Gone,
}

/// The guard's event map, as the watcher follows it.
#[derive(Default)]
struct GuardEvents {
    /// A read-only fd of the pinned map, while there is one.
    fd: Option<std::os::fd::OwnedFd>,
    /// The identity of the pin the fd came from, or of the path when it was last tried.
    tried: Option<Option<PinIdentity>>,
    /// The count of spoofed updates last seen in this map.
    seen: u64,
    /// The id of the map the guard guards, as it says (key 0 of its event map).
    map_id: Option<u32>,
    /// The thread group id of the process that loaded the guard, as it says (key 0 of its
    /// event map): the guard's programs stay attached while it lives.
    loader: Option<i32>,
    /// Until when every thread's element is audited ([`AUDIT_FOR`] after the last spoof seen).
    audit_until: Option<Instant>,
    /// When the last audit ran.
    audited: Option<Instant>,
}

/// How long after the last spoofed update seen the watcher audits every thread's element, and
/// then registers every thread again once. When the guard's program is skipped for an
/// attacker's update (the kernel skips a tracing program while another run of it holds the
/// CPU), nothing marks the element and no count moves: a look at each element finds it if it
/// is unstamped, and the final registration replaces it if its stamp bytes were copied.
const AUDIT_FOR: Duration = Duration::from_secs(5);

/// How often the watcher audits while an attack goes on: a lookup per thread each time.
const AUDIT_EVERY: Duration = Duration::from_secs(1);

impl GuardEvents {
    /// Opens the pin again if it appeared, went, or was replaced since the last look, and says
    /// which.
    fn refresh(&mut self) -> GuardChange {
        let path = guard_events_path();
        let now = pin_identity(&path);
        if self.tried == Some(now) {
            return GuardChange::None;
        }
        self.tried = Some(now);
        // Another guard's map (a restarted scheduler): its counts start again.
        self.seen = 0;
        let had = self.fd.is_some();
        let fresh = now.map_or_else(GuardEvents::default, |_| GuardEvents::open());
        self.fd = fresh.fd;
        self.map_id = fresh.map_id;
        match (had, self.fd.is_some()) {
            (_, true) => GuardChange::New,
            (true, false) => GuardChange::Gone,
            (false, false) => GuardChange::None,
        }
    }

    /// The guard's event map as pinned now (nothing if there is none), with the id of the map
    /// it guards.
    fn open() -> GuardEvents {
        let path = guard_events_path();
        let fd = std::ffi::CString::new(path.as_os_str().as_bytes())
            .ok()
            .and_then(|c| {
                crate::kernel::sys::obj_get_flags(&c, crate::kernel::sys::BPF_F_RDONLY).ok()
            });
        let mut events = GuardEvents {
            fd,
            ..GuardEvents::default()
        };
        // Key 0 (no process's id) names the guarded map, in its first word, and the loader.
        events.map_id = events
            .entry(0)
            .and_then(|v| u32::try_from(v.unwrap_or(0)).ok())
            .filter(|&id| id != 0);
        events.loader = events.loader_of_key0();
        events
    }

    /// The loader's thread group id in key 0's `last_writer` (0: a guard that does not say).
    fn loader_of_key0(&self) -> Option<i32> {
        use std::os::fd::AsFd;
        let fd = self.fd.as_ref()?;
        let mut value = [0u8; 24];
        crate::kernel::sys::map_lookup_int_key(fd.as_fd(), 0, value.len(), &mut value).ok()?;
        let pid = i32::from_ne_bytes(value[20..24].try_into().ok()?);
        (pid > 0).then_some(pid)
    }

    /// Whether the guard may be gone: it does not say who loaded it, or its loader has exited
    /// (its links, and with them its programs, ended with it).
    fn maybe_gone(&self) -> bool {
        self.loader
            .is_none_or(|pid| !crate::kernel::sys::process_exists(pid))
    }

    /// Whether registrations in map `id` should check for this guard's stamp: a guard is
    /// pinned, and guards that map (or does not say which map it guards).
    fn covers(&self, id: u32) -> bool {
        self.fd.is_some() && self.map_id.is_none_or(|guarded| guarded == id)
    }

    /// The first word of the event map's entry `key`: `Some(None)` when there is no such
    /// entry, `None` when the map is not open or cannot be read.
    fn entry(&self, key: i32) -> Option<Option<u64>> {
        use std::os::fd::AsFd;
        let fd = self.fd.as_ref()?;
        // struct tld_guard_event: u64 spoofed, u64 refused, s32 last_tid, s32 last_writer.
        let mut value = [0u8; 24];
        match crate::kernel::sys::map_lookup_int_key(fd.as_fd(), key, value.len(), &mut value) {
            Ok(()) => Some(Some(u64::from_ne_bytes(value[..8].try_into().ok()?))),
            Err(libc::ENOENT) => Some(None),
            Err(_) => None,
        }
    }

    /// This process's count of spoofed updates, if the map is open (0 if it has no entry).
    fn spoofs(&self) -> Option<u64> {
        self.entry(std::process::id() as i32)
            .map(|v| v.unwrap_or(0))
    }
}

/// Where the guard's event map is pinned: `$TLD_GUARD_EVENTS`, else the default.
fn guard_events_path() -> PathBuf {
    std::env::var_os(GUARD_EVENTS_ENV)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_GUARD_EVENTS), PathBuf::from)
}

/// The pin path auto-connect tries, or `None` when `TLD_MAP_PATH` is set and empty.
fn auto_connect_path() -> Option<PathBuf> {
    match std::env::var_os(PIN_PATH_ENV) {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => Some(PathBuf::from(DEFAULT_PIN_PATH)),
    }
}

/// How often the watcher looks, or `None` if it is off.
fn watch_interval() -> Option<Duration> {
    let ms = std::env::var(WATCH_INTERVAL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1000);
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// The identity of the pin at `path`, if there is one.
fn pin_identity(path: &Path) -> Option<PinIdentity> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}
