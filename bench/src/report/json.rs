//! The report's figures as JSON (`tld-bench.json`, shaped by [`crate::json`]): one object per
//! id, in the table's order.

use super::goals::*;
use super::measuring::*;
use super::Results;
use crate::bpf::Prog;
use crate::json::{document, Entry, Ordered};
use crate::registration;

impl G1 {
    /// G1's entry.
    fn json(&self) -> Entry {
        let (f, c) = self.added();
        Entry::new(
            self.fast.1,
            self.fast.0,
            self.fast.1 / self.fast.0,
            "ns per bpf_tld_init run with the guard's check, fast path (floor: without it); \
             extra: cached path, and what the check adds",
            format!("<= +{G1_GOAL_NS} ns on either path"),
            self.met(),
        )
        .with("added_ns", f)
        .with("cached_ours", self.cached.1)
        .with("cached_floor", self.cached.0)
        .with("cached_added_ns", c)
    }
}

/// The entries of P3a and P3b (fast and cached) of one build of the benchmark object.
fn p3_json(entries: &mut Vec<(String, Entry)>, p3: &P3, ids: [&str; 4]) {
    let fast = PathVsFloor::new(p3, FAST, PathGoals::FAST);
    let cached = PathVsFloor::new(p3, CACHED, PathGoals::CACHED);
    let m_floor = p3.slope(FLOOR);
    for (id, path) in [(ids[0], &fast), (ids[1], &cached)] {
        let entry = Entry::new(
            p3.ns(pair_prog(path.progs)) / 16.0,
            p3.ns(Prog::FloorX16) / 16.0,
            path.raw,
            "ns per pair, 16 pairs per run (init + 1 lookup + read; floor: 1 storage get + \
             read)",
            format!("<= {}x", path.goals.p3a_ratio),
            path.p3a_met,
        )
        .with("ours_net", p3.net(pair_prog(path.progs)) / 16.0)
        .with("floor_net", p3.net(Prog::FloorX16) / 16.0);
        entries.push((id.to_string(), entry));
    }
    for (id, path) in [(ids[2], &fast), (ids[3], &cached)] {
        let goal = match path.goals.p3b {
            MarginalGoal::Ratio(r) => format!(
                "<= {r}x marginal (or at most one timer tick, {RESOLUTION:.3} ns, above the \
                 floor where the floor is below the timer's resolution)"
            ),
            MarginalGoal::PlusNs(ns) => format!("<= +{ns} ns per further lookup"),
        };
        let entry = Entry::new(
            path.marginal,
            m_floor,
            path.marginal / m_floor,
            "ns per further lookup + read (floor: per further fixed-offset read)",
            goal,
            path.p3b_met != Some(false),
        )
        .with("extra_ns", path.extra);
        entries.push((id.to_string(), entry));
    }
}

impl Results<'_> {
    /// The figures as JSON: one object per id, `{"ours", "floor", "ratio", "unit", "goal",
    /// "met"}` plus a few fields of its own.
    pub(crate) fn json(&self) -> String {
        let Results {
            p1,
            p2,
            p3,
            p4,
            p6,
            p3_618,
            p6_618,
            g1,
            p5,
            ..
        } = *self;
        let page = registration::page_size() as f64;
        let memory = self.p5_memory();

        let mut entries = vec![
            (
                "P1".to_string(),
                Entry::new(
                    p1.cmp.a,
                    p1.cmp.b,
                    p1.cmp.ratio,
                    "ns per set",
                    "<= 1.3x",
                    p1.cmp.ratio <= 1.3,
                ),
            ),
            (
                "P2".to_string(),
                Entry::new(
                    p2.cmp.b,
                    p2.cmp.a,
                    p2.cmp.ratio,
                    "ns per set; floor: ns per bpf_map_update_elem; ratio: times faster",
                    ">= 500x faster",
                    p2.cmp.ratio >= 500.0,
                ),
            ),
        ];
        for (p3, ids) in [
            (p3, ["P3a", "P3a-cached", "P3b", "P3b-cached"]),
            (
                p3_618,
                ["P3a-618", "P3a-cached-618", "P3b-618", "P3b-cached-618"],
            ),
        ] {
            p3_json(&mut entries, p3, ids);
        }
        let p4_entry = Entry::new(
            p4.ours.mean,
            p4.bare.mean,
            p4.mean_ratio(),
            "µs per thread_init() on fresh threads under sustained churn (mean; ratio: mean \
             over the bare registration's mean)",
            format!(
                "mean <= {P4_MEAN_GOAL}x, p99 <= {P4_P99_GOAL}x, max <= 1 ms off the run queue, \
                 pool <= peak live threads + {P4_POOL_SLACK} pages"
            ),
            p4.met(),
        )
        .with("p50", p4.ours.p50)
        .with("p99", p4.ours.p99)
        .with("max", p4.ours.max)
        .with("mean", p4.ours.mean)
        .with("floor_p50", p4.bare.p50)
        .with("floor_p99", p4.bare.p99)
        .with("floor_max", p4.bare.max)
        .with("p99_ratio", p4.p99_ratio())
        .with("pool_pages", p4.pool_pages)
        .with("peak_live", p4.peak_live)
        .with("samples", p4.samples)
        .with("period_us", p4.period_us)
        .with(
            "max_off_run_queue",
            p4.off_run_queue_max.map_or(f64::NAN, |m| m.0),
        )
        .with(
            "floor_max_off_run_queue",
            p4.off_run_queue_max.map_or(f64::NAN, |m| m.1),
        );
        entries.push(("P4".to_string(), p4_entry));
        let p5_entry = Entry::new(
            memory.tld,
            memory.base,
            memory.extra / page,
            "resident bytes per live thread (ratio: extra bytes per thread, in pages)",
            "extra <= 1 page + a quarter page",
            memory.met,
        )
        .with("threads", p5.threads)
        .with("extra_bytes", memory.extra)
        .with("first_touch_median_us", p5.touch_median_us);
        entries.push(("P5".to_string(), p5_entry));
        let loads = Ordered(
            P6_LOADED
                .iter()
                .map(|p| (p.name().to_string(), p6.load_us[p]))
                .collect(),
        );
        let p6_entry = Entry::new(
            p6.fast_per_key,
            p6.floor_per_read,
            p6.fast_per_key / p6.floor_per_read,
            "verified instructions per additional key, fast path (floor: per additional \
             fixed-offset read)",
            format!("<= {P6_FAST_GOAL} fast path, <= {P6_CACHED_GOAL} cached path"),
            p6.met(),
        )
        .with("cached", p6.cached_per_key)
        .with("load_us", loads);
        entries.push(("P6".to_string(), p6_entry));
        entries.push(("G1".to_string(), g1.json()));
        let p6_618_entry = Entry::new(
            p6_618.fast_per_key,
            p6_618.floor_per_read,
            p6_618.fast_per_key / p6_618.floor_per_read,
            "verified instructions per additional key, fast path, with the 6.18 generation's \
             value (floor: per additional fixed-offset read)",
            format!("<= {P6_FAST_GOAL} fast path, <= {P6_CACHED_GOAL} cached path"),
            p6_618.met(),
        )
        .with("cached", p6_618.cached_per_key);
        entries.push(("P6-618".to_string(), p6_618_entry));

        let named = |members: Vec<(&'static str, Entry)>| {
            members
                .into_iter()
                .map(|(id, e)| (id.to_string(), e))
                .collect::<Vec<_>>()
        };
        entries.extend(named(self.scoped.json_members()));
        entries.extend(named(self.consistent.json_members()));
        entries.extend(named(self.libtld.json_members()));
        if let Some(vm) = &self.vm_guard {
            entries.extend(named(vm.json_members()));
        }
        if let Some(vm) = &self.vm {
            entries.extend(named(vm.json_members()));
        }
        document(entries)
    }
}
