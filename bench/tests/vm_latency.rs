//! P7's rows, from the figures file the VM runner writes (see `tld_bench::vm_latency`).

use tld_bench::vm_latency::VmLatency;

#[test]
fn renders_the_rows_and_judges_the_goals() {
    let v = VmLatency::parse(
        "kernel linux-binary-7.3.4+deb13-cloud-amd64\nvcpus 4\naccel tcg\nhost_load 2.5\n\
         p7_idle_p50_us 90\np7_hinted_p50_us 100\np7_unhinted_p50_us 17000\n\
         p7_control_p50_us 19000\np7_vs_unhinted 170\np7_vs_control 190\np7_vs_idle 1.1\n\
         p7_hogs 8\np7_rounds 8\np7_disturbed_rounds 0\np7_samples_per_case 200\n\
         p7_tokio_ratio 2.5\np7_tokio_control_ratio 1.0\n",
    );
    assert!(v.met() && v.tokio_met());
    let rows = v.rows();
    assert_eq!(rows.lines().count(), 2, "{rows}");
    assert!(rows.contains("| P7 |") && rows.contains("17.0 ms") && rows.contains("| met |"));
    assert_eq!(v.json_members().len(), 2);

    let slow = VmLatency::parse("p7_vs_unhinted 19\np7_vs_control 30\np7_vs_idle 1\n");
    assert!(!slow.met());
    assert!(slow.rows().contains("**missed**") && !slow.rows().contains("tokio"));
}
