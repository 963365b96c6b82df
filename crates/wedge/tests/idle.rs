//! No false alarms: with no scenario running, `wedge` finds nothing wedged
//! on this machine. A separate test binary, so that no scenario of the live
//! tests runs beside it.

mod common;

use common::{check, wedge};
use libtest_mimic::{Arguments, Trial};

fn idle_machine_is_not_wedged() -> Result<(), libtest_mimic::Failed> {
    let r = wedge(&["--json"]);
    let v = r.json();
    let wedged: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "critical")
        .collect();
    check(wedged.is_empty() && r.code == Some(0), || {
        format!(
            "false alarm on an idle machine (exit {:?}): {wedged:#?}",
            r.code
        )
    })
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    libtest_mimic::run(
        &args,
        vec![Trial::test(
            "idle_machine_is_not_wedged",
            idle_machine_is_not_wedged,
        )],
    )
    .exit();
}
